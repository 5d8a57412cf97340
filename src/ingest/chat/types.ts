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

  add(reason: string, n = 1): void {
    this.counts[reason] = (this.counts[reason] ?? 0) + n;
  }
}

/** Turns one parsed conversation (JSON value) into a Conversation; throws FieldError on a bad shape. */
export type ConversationReader = (value: unknown, skips: SkipCounter, position: number) => Conversation;
