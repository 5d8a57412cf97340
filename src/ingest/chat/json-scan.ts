/**
 * Finding conversations in an export without holding the export: a byte-level scanner over a
 * top-level JSON array (ChatGPT and Claude `conversations.json`) and a line splitter (JSONL).
 * Each hands over the exact bytes of one conversation and its byte offset; decoding and
 * JSON.parse happen one conversation at a time (see element.ts). Only strings, escapes and
 * bracket depth are tracked here; full syntax is JSON.parse's job, on bounded input.
 */
import { InputError } from '../../errors.ts';

export interface ScanLimits {
  /** Deepest nesting accepted (the top-level array counts as 1). */
  maxDepth: number;
  /** Largest single conversation, in bytes. */
  maxElementBytes: number;
}

/** Receives one conversation: its bytes, the byte offset of its first byte, its 0-based index (or 1-based line). */
export type ElementHandler = (bytes: Buffer, offset: number, position: number) => void;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;
const NEWLINE = 0x0a;
const BOM = [0xef, 0xbb, 0xbf];

function isWhitespace(b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

function describeByte(b: number): string {
  return b >= 0x21 && b < 0x7f ? `'${String.fromCharCode(b)}'` : `byte 0x${b.toString(16).padStart(2, '0')}`;
}

/** Number of backslashes ending just before `end`, not looking before `from`. */
function backslashesBefore(buf: Buffer, end: number, from: number): number {
  let k = end - 1;
  while (k >= from && buf[k] === BACKSLASH) k--;
  return end - 1 - k;
}

const S = { START: 0, FIRST: 1, NEXT: 2, COMMA_OR_END: 3, ELEMENT: 4, DONE: 5 } as const;
type State = (typeof S)[keyof typeof S];

/** Scans `[ {...}, {...} ]` pushed in chunks of any size. */
export class JsonArrayScanner {
  readonly #file: string;
  readonly #limits: ScanLimits;
  readonly #onElement: ElementHandler;
  #state: State = S.START;
  #base = 0; // absolute offset of the current chunk
  #depth = 0;
  #inString = false;
  #escape = false;
  #pieces: Buffer[] = [];
  #pieceBytes = 0;
  #elementStart = 0;
  #index = 0;

  constructor(file: string, limits: ScanLimits, onElement: ElementHandler) {
    this.#file = file;
    this.#limits = limits;
    this.#onElement = onElement;
  }

  /** How many elements were handed over so far. */
  get count(): number {
    return this.#index;
  }

  push(buf: Buffer): void {
    const len = buf.length;
    let i = 0;
    while (i < len) {
      if (this.#state === S.ELEMENT) {
        const end = this.#scanElement(buf, i);
        if (end < 0) {
          this.#keep(buf.subarray(i));
          i = len;
        } else {
          this.#keep(buf.subarray(i, end + 1));
          this.#emit();
          i = end + 1;
        }
        continue;
      }
      const b = buf[i] as number;
      const at = this.#base + i;
      if (this.#state === S.START && at < 3 && b === BOM[at]) {
        i++;
        continue;
      }
      if (isWhitespace(b)) {
        i++;
        continue;
      }
      switch (this.#state) {
        case S.START:
          if (b !== OPEN_BRACKET) throw this.#badJson(at, `expected '[' to open the list of conversations, found ${describeByte(b)}`);
          this.#depth = 1;
          this.#state = S.FIRST;
          i++;
          break;
        case S.FIRST:
        case S.NEXT:
          if (b === CLOSE_BRACKET && this.#state === S.FIRST) {
            this.#state = S.DONE;
            i++;
            break;
          }
          if (b !== OPEN_BRACE) {
            if (b === CLOSE_BRACKET || b === COMMA) throw this.#badJson(at, `unexpected ${describeByte(b)} after ','`);
            throw new InputError('EXPORT_SCHEMA', `expected a conversation object, found ${describeByte(b)}`, {
              place: { file: this.#file, offset: at, conversation: `#${this.#index}` },
            });
          }
          this.#state = S.ELEMENT;
          this.#elementStart = at;
          this.#pieces = [];
          this.#pieceBytes = 0;
          break; // the element scan sees the '{' itself
        case S.COMMA_OR_END:
          if (b === COMMA) this.#state = S.NEXT;
          else if (b === CLOSE_BRACKET) this.#state = S.DONE;
          else throw this.#badJson(at, `expected ',' or ']' after conversation #${this.#index - 1}, found ${describeByte(b)}`);
          i++;
          break;
        case S.DONE:
          throw this.#badJson(at, `unexpected ${describeByte(b)} after the closing ']'`);
      }
    }
    this.#base += len;
  }

  /** Call at end of input. */
  end(): void {
    if (this.#state === S.DONE) return;
    const what =
      this.#state === S.START ? 'no JSON array' : this.#state === S.ELEMENT ? `conversation #${this.#index} is cut off` : "the closing ']' is missing";
    throw this.#badJson(this.#base, `unexpected end of input: ${what}`);
  }

  /** Returns the index of the byte that closes the element, or -1 if it goes on past this chunk. */
  #scanElement(buf: Buffer, from: number): number {
    const len = buf.length;
    let i = from;
    let depth = this.#depth;
    let inString = this.#inString;
    let escape = this.#escape;
    while (i < len) {
      if (inString) {
        if (escape) {
          escape = false;
          i++;
          continue;
        }
        const q = buf.indexOf(QUOTE, i);
        if (q === -1) {
          escape = (backslashesBefore(buf, len, i) & 1) === 1;
          i = len;
          break;
        }
        if ((backslashesBefore(buf, q, i) & 1) === 0) inString = false;
        i = q + 1;
        continue;
      }
      const b = buf[i] as number;
      if (b === QUOTE) inString = true;
      else if (b === OPEN_BRACE || b === OPEN_BRACKET) {
        if (++depth > this.#limits.maxDepth) {
          throw new InputError('EXPORT_TOO_DEEP', `nesting deeper than ${this.#limits.maxDepth} levels`, {
            place: { file: this.#file, offset: this.#base + i, conversation: `#${this.#index}` },
          });
        }
      } else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) {
        if (--depth === 1) {
          this.#depth = depth;
          this.#inString = false;
          this.#escape = false;
          return i;
        }
      }
      i++;
    }
    this.#depth = depth;
    this.#inString = inString;
    this.#escape = escape;
    return -1;
  }

  #keep(piece: Buffer): void {
    this.#pieceBytes += piece.length;
    if (this.#pieceBytes > this.#limits.maxElementBytes) {
      throw new InputError('EXPORT_TOO_LARGE', `conversation #${this.#index} is larger than ${this.#limits.maxElementBytes} bytes`, {
        place: { file: this.#file, offset: this.#elementStart, conversation: `#${this.#index}` },
      });
    }
    this.#pieces.push(piece);
  }

  #emit(): void {
    const bytes = this.#pieces.length === 1 ? (this.#pieces[0] as Buffer) : Buffer.concat(this.#pieces, this.#pieceBytes);
    this.#pieces = [];
    this.#pieceBytes = 0;
    this.#state = S.COMMA_OR_END;
    this.#onElement(bytes, this.#elementStart, this.#index++);
  }

  #badJson(offset: number, message: string): InputError {
    return new InputError('EXPORT_BAD_JSON', message, { place: { file: this.#file, offset } });
  }
}

/** Splits JSONL into lines (one conversation each); blank lines are skipped. */
export class JsonLinesScanner {
  readonly #file: string;
  readonly #limits: ScanLimits;
  readonly #onLine: ElementHandler;
  #base = 0;
  #pieces: Buffer[] = [];
  #pieceBytes = 0;
  #lineStart = 0;
  #line = 1;

  constructor(file: string, limits: ScanLimits, onLine: ElementHandler) {
    this.#file = file;
    this.#limits = limits;
    this.#onLine = onLine;
  }

  push(buf: Buffer): void {
    let i = 0;
    while (i < buf.length) {
      const nl = buf.indexOf(NEWLINE, i);
      const end = nl === -1 ? buf.length : nl;
      this.#keep(buf.subarray(i, end));
      if (nl === -1) break;
      this.#flush();
      i = nl + 1;
      this.#lineStart = this.#base + i;
    }
    this.#base += buf.length;
  }

  end(): void {
    this.#flush();
  }

  #keep(piece: Buffer): void {
    if (piece.length === 0) return;
    this.#pieceBytes += piece.length;
    if (this.#pieceBytes > this.#limits.maxElementBytes) {
      throw new InputError('EXPORT_TOO_LARGE', `line ${this.#line} is larger than ${this.#limits.maxElementBytes} bytes`, {
        place: { file: this.#file, line: this.#line, offset: this.#lineStart },
      });
    }
    this.#pieces.push(piece);
  }

  #flush(): void {
    const line = this.#line++;
    let bytes = this.#pieces.length === 1 ? (this.#pieces[0] as Buffer) : Buffer.concat(this.#pieces, this.#pieceBytes);
    let offset = this.#lineStart;
    this.#pieces = [];
    this.#pieceBytes = 0;
    if (offset === 0 && bytes[0] === BOM[0] && bytes[1] === BOM[1] && bytes[2] === BOM[2]) {
      bytes = bytes.subarray(3);
      offset = 3;
    }
    let k = 0;
    while (k < bytes.length && isWhitespace(bytes[k] as number)) k++;
    if (k === bytes.length) return;
    const depthAt = findDepthViolation(bytes, this.#limits.maxDepth);
    if (depthAt >= 0) {
      throw new InputError('EXPORT_TOO_DEEP', `nesting deeper than ${this.#limits.maxDepth} levels`, {
        place: { file: this.#file, line, offset: offset + depthAt },
      });
    }
    this.#onLine(bytes, offset, line);
  }
}

/** Index of the first bracket that nests deeper than `max` (strings skipped), or -1. */
export function findDepthViolation(buf: Buffer, max: number): number {
  let depth = 0;
  let i = 0;
  while (i < buf.length) {
    const b = buf[i] as number;
    if (b === QUOTE) {
      let j = i + 1;
      for (;;) {
        const q = buf.indexOf(QUOTE, j);
        if (q === -1) return -1; // unterminated: JSON.parse reports it
        j = q + 1;
        if ((backslashesBefore(buf, q, i + 1) & 1) === 0) break;
      }
      i = j;
      continue;
    }
    if (b === OPEN_BRACE || b === OPEN_BRACKET) {
      if (++depth > max) return i;
    } else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) depth--;
    i++;
  }
  return -1;
}
