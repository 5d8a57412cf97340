/**
 * What one engine sequence answers, and what the emulator remembers of its answers.
 *
 * An answer is free text (reply.ts), JSON for structured output (extract.ts), or one of the
 * `choice` strings. Then the first-sight flaws: the first time a content (messages and images,
 * not sampling parameters) is answered, a share of contents chosen by their hash is answered
 * cut off, looping, or as broken JSON (answer-options.ts); the same content later is answered
 * well. Contents count as seen once answered (200) while any flaw share is above 0.
 *
 * The book counts what was delivered (flaws, structured answers, fields read, altered and made
 * up) and keeps a ledger of the last answers with a flaw or fields, for tests to check exactly.
 */
import { createHash } from 'node:crypto';
import type { FlawKind } from './answer-options.ts';
import { buildValue, type ExtractContext, type FieldRecord } from './extract.ts';
import { breakJson, cutoffText, loopText, truncateToTokens } from './flaws.ts';
import { LabelIndex } from './labels.ts';
import type { Faults } from './options.ts';
import type { PreparedPrompt } from './prompt.ts';
import { replyText } from './reply.ts';
import { pickChoice, writeJson, type OutputFormat } from './structured.ts';
import { countText } from './tokens.ts';

export interface AnswerPlan {
  content: string;
  /** Tokens generated (usage.completion_tokens). */
  outputTokens: number;
  finish: 'stop' | 'length';
  flaw: FlawKind | null;
  /** JSON was asked for (json_schema, structured_outputs.json or json_object). */
  json: boolean;
  /** The scalar fields of a JSON answer. */
  fields: FieldRecord[] | null;
  /** First 32 hex digits of the content hash. */
  contentKey: string;
  /** Remember the content as seen once delivered (a flaw share was above 0). */
  trackSeen: boolean;
}

export interface AnswerInput {
  model: string;
  prompt: PreparedPrompt;
  /** max_tokens after defaults. */
  budget: number;
  /** How long the free-text reply would be (before max_tokens). */
  natural: number;
  /** The free-text reply's header lines. */
  header: string;
  format: OutputFormat | null;
  faults: Faults;
}

/** Counters of delivered answers, across engine restarts. */
export interface AnswerCounts {
  /** Sequences answered (200) with JSON, flawed or not. */
  jsonAnswers: number;
  /** Scalar fields of the complete, unflawed JSON answers: read from the text, altered among those, made up (or null) for want of a label. */
  fields: { extracted: number; altered: number; filled: number };
  /** Answers delivered with a first-sight flaw. */
  flaws: Record<FlawKind, number>;
}

/** One delivered answer that had a flaw or fields. */
export interface AnswerRecord {
  /** The response id (`chatcmpl-...`) and the choice index in it. */
  id: string;
  index: number;
  /** First 16 hex digits of the content hash (the same content has the same one). */
  content: string;
  flaw: FlawKind | null;
  finishReason: 'stop' | 'length';
  /** The fields of a complete, unflawed JSON answer. */
  fields?: FieldRecord[];
}

/** The ledger keeps this many of the latest answers. */
export const ANSWER_LOG_LIMIT = 10_000;

function bits32(...parts: string[]): number {
  return createHash('sha256').update(parts.join('\u0000')).digest().readUInt32BE(0);
}

export class AnswerBook {
  private readonly seen = new Set<string>();
  private readonly log: AnswerRecord[] = [];
  private readonly counts: AnswerCounts = { jsonAnswers: 0, fields: { extracted: 0, altered: 0, filled: 0 }, flaws: { cutoff: 0, loop: 0, invalidJson: 0 } };

  plan(input: AnswerInput): AnswerPlan {
    const { prompt, budget, format, faults } = input;
    const contentKey = prompt.seed.toString('hex', 0, 16);
    const trackSeen = faults.cutoff + faults.loop + faults.invalidJson > 0;
    const flaw = this.flawFor(contentKey, faults, format?.kind === 'json');
    const bits = bits32('flaw-text', contentKey);
    const base = { flaw, contentKey, trackSeen, json: format?.kind === 'json', fields: null };

    if (format?.kind === 'json') {
      const { value, fields } = buildValue(format.schema, this.extractContext(input, contentKey));
      const { text, lastString } = writeJson(value);
      const plan = { ...base, fields };
      // Astray from inside the last string value (or where the closing bracket would be).
      const start = lastString ? text.slice(0, lastString.end) : text.slice(0, -1);
      if (flaw === 'cutoff') return { ...plan, content: cutoffText(start, budget, bits), outputTokens: budget, finish: 'length' };
      if (flaw === 'loop') return { ...plan, content: loopText(start, budget, bits), outputTokens: budget, finish: 'length' };
      return { ...plan, ...capped(flaw === 'invalidJson' ? breakJson(text, bits) : text, budget) };
    }
    if (format?.kind === 'choice') {
      const choice = pickChoice(format.choices, prompt.texts, bits);
      if (flaw === 'cutoff') return { ...base, content: cutoffText(choice, budget, bits), outputTokens: budget, finish: 'length' };
      if (flaw === 'loop') return { ...base, content: loopText(choice, budget, bits), outputTokens: budget, finish: 'length' };
      return { ...base, ...capped(choice, budget) };
    }
    const seed = prompt.seed;
    if (flaw === 'cutoff') return { ...base, content: replyText(input.header, seed, budget), outputTokens: budget, finish: 'length' };
    if (flaw === 'loop') return { ...base, content: loopText(`${input.header}\n`, budget, bits), outputTokens: budget, finish: 'length' };
    const outputTokens = Math.min(input.natural, budget);
    return { ...base, content: replyText(input.header, seed, outputTokens), outputTokens, finish: input.natural > budget ? 'length' : 'stop' };
  }

  /** The answer reached its client (200). */
  delivered(plan: AnswerPlan, id: string, index: number): void {
    if (plan.trackSeen) this.seen.add(plan.contentKey);
    if (plan.flaw) this.counts.flaws[plan.flaw]++;
    if (plan.json) this.counts.jsonAnswers++;
    const complete = plan.fields !== null && plan.flaw === null && plan.finish === 'stop';
    if (complete) {
      for (const f of plan.fields ?? []) {
        if (f.source === 'filler') this.counts.fields.filled++;
        else {
          this.counts.fields.extracted++;
          if (f.altered) this.counts.fields.altered++;
        }
      }
    }
    if (plan.flaw === null && plan.fields === null) return;
    this.log.push({ id, index, content: plan.contentKey.slice(0, 16), flaw: plan.flaw, finishReason: plan.finish, ...(complete ? { fields: plan.fields ?? [] } : {}) });
    if (this.log.length > ANSWER_LOG_LIMIT) this.log.splice(0, this.log.length - ANSWER_LOG_LIMIT);
  }

  stats(): AnswerCounts {
    return { jsonAnswers: this.counts.jsonAnswers, fields: { ...this.counts.fields }, flaws: { ...this.counts.flaws } };
  }

  /** The latest answers that had a flaw or fields, oldest first. */
  records(): AnswerRecord[] {
    return this.log.map((r) => ({ ...r }));
  }

  private flawFor(contentKey: string, faults: Faults, json: boolean): FlawKind | null {
    const { cutoff, loop, invalidJson } = faults;
    if (cutoff + loop + invalidJson === 0 || this.seen.has(contentKey)) return null;
    const u = bits32('flaw', contentKey) / 2 ** 32;
    if (u < cutoff) return 'cutoff';
    if (u < cutoff + loop) return 'loop';
    if (u < cutoff + loop + invalidJson && json) return 'invalidJson';
    return null;
  }

  private extractContext(input: AnswerInput, contentKey: string): ExtractContext {
    const share = input.faults.alterFields;
    return {
      labels: new LabelIndex(input.prompt.texts),
      fillBits: (path) => bits32('fill', contentKey, path),
      alterBits: (path) => {
        if (share === 0) return undefined;
        const u = bits32('alter', input.model, contentKey, path) / 2 ** 32;
        return u < share ? bits32('alter-how', input.model, contentKey, path) : undefined;
      },
    };
  }
}

/** A complete answer, or its first `budget` tokens when it is longer (finish "length"). */
function capped(text: string, budget: number): { content: string; outputTokens: number; finish: 'stop' | 'length' } {
  const tokens = countText(text);
  if (tokens <= budget) return { content: text, outputTokens: Math.max(1, tokens), finish: 'stop' };
  return { content: truncateToTokens(text, budget), outputTokens: budget, finish: 'length' };
}
