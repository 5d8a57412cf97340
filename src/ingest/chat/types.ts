import { cutText } from '../../printable.ts';

/** The shapes every export reader produces: a conversation as shown, as a list of visible messages. */

/** The export formats docbatch reads. */
export type ChatFormat = 'chatgpt' | 'claude' | 'jsonl';

/** One visible message, already rendered to plain text (images as placeholders, code as text). */
export interface ChatMessage {
  /** The message's id in the export (or its position, when the format has no ids). */
  id: string;
  /** Who speaks, as shown in the transcript: `user`, `assistant`, `system`, `tool (python)`, `assistant → python`. */
  role: string;
  /** Non-empty text. */
  text: string;
}

export interface Conversation {
  id: string;
  title: string;
  /** Seconds since the epoch, or null when the export has none. */
  createTime: number | null;
  /** The shown branch only, in order. May be empty (then the conversation produces no chunk). */
  messages: ChatMessage[];
}

/**
 * Counts of what was left out (or decided by a fallback rule), by reason, e.g.
 * `content_type:thoughts`, `hidden`, `empty`, `fallback:current_node_missing`.
 */
export class SkipCounter {
  readonly counts: Record<string, number> = {};
  #kinds = 0;

  add(reason: string, n = 1): void {
    // A reason carries a type named by the export (`content_type:<type>`): it goes into the
    // document's record in Redis and its report, so the names are cut and their number bounded.
    // An export naming 100,000 types of 1000 characters made a 102 MB record.
    let key = cutText(reason, MAX_REASON_CHARS);
    if (!Object.hasOwn(this.counts, key)) {
      if (this.#kinds >= MAX_REASONS) key = OTHER_REASONS;
      else if (key !== OTHER_REASONS) this.#kinds++;
    }
    this.counts[key] = (this.counts[key] ?? 0) + n;
  }
}

/** Longest skip reason kept, in characters, and most distinct ones; the rest count under OTHER_REASONS. */
export const MAX_REASON_CHARS = 100;
export const MAX_REASONS = 100;
export const OTHER_REASONS = 'other (more kinds than listed)';

/** Turns one parsed conversation (JSON value) into a Conversation; throws FieldError on a bad shape. */
export type ConversationReader = (value: unknown, skips: SkipCounter, position: number) => Conversation;
