/**
 * Shape checks for parsed export JSON that name the offending field by its path
 * (`mapping.n2.message.content.parts`). Hand-written rather than zod: only the fields docbatch
 * reads are checked (an export carries dozens it ignores, and abandoned branches are never
 * rendered, so their content is not checked), and this runs on every node of a 200 MB export.
 */
import { cutText } from '../../printable.ts';

/** A field with the wrong shape. split.ts turns it into EXPORT_SCHEMA with the conversation named. */
export class FieldError extends Error {
  readonly field: string;

  constructor(field: string, message: string) {
    super(message);
    this.name = 'FieldError';
    this.field = field;
  }
}

export type JsonObject = Record<string, unknown>;

/** `an array`, `a string`, `null` ... for messages. */
export function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'nothing (the field is missing)';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  return `a ${typeof v}`;
}

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function expectObject(v: unknown, field: string): JsonObject {
  if (!isObject(v)) throw new FieldError(field, `expected an object, found ${kindOf(v)}`);
  return v;
}

export function expectArray(v: unknown, field: string): unknown[] {
  if (!Array.isArray(v)) throw new FieldError(field, `expected an array, found ${kindOf(v)}`);
  return v;
}

export function expectString(v: unknown, field: string): string {
  if (typeof v !== 'string') throw new FieldError(field, `expected a string, found ${kindOf(v)}`);
  return v;
}

/**
 * The most characters of a conversation's id and title, and of a message's id and role label (its
 * role, author name, recipient). Each is repeated: the id and title in every chunk record of the
 * conversation, the message's id and label in every part of a message split across chunks. An
 * 8 MB JSONL line with a 2 MB title wrote an 861 MB sidecar; a 20,000-character role stopped the
 * whole enqueue with a RangeError. Real ones are tens of characters; longer ones are refused.
 */
export const MAX_ID_CHARS = 1024;
export const MAX_TITLE_CHARS = 4096;
export const MAX_ROLE_CHARS = 256;

/** `v` when it has at most `max` characters; a FieldError naming its length otherwise. */
export function bounded<T extends string | undefined>(v: T, field: string, max: number): T {
  if (v !== undefined && v.length > max) {
    throw new FieldError(field, `expected at most ${max} characters, found ${v.length} (it is repeated in every chunk it belongs to)`);
  }
  return v;
}

/** A string, or undefined when the field is missing or null. */
export function optionalString(v: unknown, field: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  return expectString(v, field);
}

/** A finite number, or null when missing or null. */
export function optionalNumber(v: unknown, field: string): number | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new FieldError(field, `expected a number, found ${kindOf(v)}`);
  return v;
}

/** A date and time without a zone (`2024-05-01T12:34:56.123456`, or with a space), as Python's isoformat() writes a naive datetime. */
const NAIVE_DATE_TIME = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)$/;

/**
 * An ISO date string (or a number of seconds) as seconds since the epoch; null when absent or
 * unreadable. A date and time without a zone is UTC (Date.parse would read it in the producer's
 * local zone: the same export would give another sidecar on another machine).
 */
export function optionalTime(v: unknown): number | null {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string') {
    const naive = NAIVE_DATE_TIME.exec(v.trim());
    const ms = Date.parse(naive ? `${naive[1]}T${naive[2]}Z` : v);
    return Number.isNaN(ms) ? null : ms / 1000;
  }
  return null;
}

/** A path segment: `.key` for plain keys, `["key"]` for keys that would be ambiguous. */
export function key(parent: string, k: string): string {
  // A key is quoted when it would be ambiguous, and cut when long (an error message names it).
  const seg = /^[\w-]+$/.test(k) && k.length <= 80 ? k : JSON.stringify(cutText(k, 81));
  return parent ? `${parent}.${seg}` : seg;
}
