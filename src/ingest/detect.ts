/**
 * What a file is, from its bytes, never its name: a PDF, an image (PNG, JPEG, TIFF, WebP), a chat export (ChatGPT or Claude
 * `conversations.json`, either bare or inside the export .zip; or generic JSONL), empty, or
 * unknown with a reason. JSON formats are told apart by the keys of the first conversation,
 * read from a prefix of the file: the whole file is validated later, by splitExport. The bytes
 * come from a file (`detectFile`) or from anywhere that can give a prefix (`detectFrom`: an
 * object in S3 is read by ranged GETs).
 */
import { open, stat } from 'node:fs/promises';
import { InputError } from '../errors.ts';
import type { ChatFormat } from './chat/types.ts';
import { findConversationsEntry, openZipEntry, type ZipEntryRecord } from './chat/zip.ts';

export type { ChatFormat } from './chat/types.ts';

export type ImageFormat = 'png' | 'jpeg' | 'tiff' | 'webp';

export type FileKind =
  | { kind: 'pdf' }
  | { kind: 'image'; format: ImageFormat }
  /** In a .zip: the entry's name, and its directory record (the split opens it without walking the directory again). */
  | { kind: 'chat'; format: ChatFormat; zipEntry?: string; zipRecord?: ZipEntryRecord }
  | { kind: 'empty' }
  | { kind: 'unknown'; reason: string };

/** Prefix sizes tried in turn until the first conversation's keys decide the format. */
const PREFIXES = [64 * 1024, 1024 * 1024, 16 * 1024 * 1024];

const PDF_MAGIC = Buffer.from('%PDF-');
const CHATGPT_KEYS = ['mapping', 'current_node'];
/**
 * A Claude conversation has `chat_messages`; `uuid` alone is every object of a Claude export
 * (users.json and projects.json beside conversations.json have it too).
 */
const CLAUDE_KEYS = ['chat_messages'];
/** A header with its version, as a PDF reader finds it after junk (pdf.js: in the first 1024 bytes). */
const PDF_HEADER = /%PDF-\d\.\d/;
/** An indirect object (`12 0 obj`): what a PDF's body is made of, and text about PDFs rarely has. */
const PDF_OBJECT = /\d+\s+\d+\s+obj\b/;

/** Junk, then a PDF: a versioned header in the first 1024 bytes with an object after it. */
function pdfAfterJunk(head: Buffer): boolean {
  const text = head.toString('latin1');
  const at = PDF_HEADER.exec(text.slice(0, 1024));
  return at !== null && PDF_OBJECT.test(text.slice(at.index));
}

/**
 * Throws InputError FILE_UNREADABLE (missing, a directory, no permission), ZIP_CORRUPT,
 * ZIP_ENCRYPTED or ZIP_NO_CONVERSATIONS; every other outcome is a FileKind.
 */
export async function detectFile(path: string): Promise<FileKind> {
  let size: number;
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new Error('not a regular file');
    size = st.size;
  } catch (err) {
    throw new InputError('FILE_UNREADABLE', `cannot read the file: ${(err as Error).message}`, { cause: err, place: { file: path } });
  }
  return detectFrom({ size, readPrefix: (length) => readPrefix(path, length), zip: () => detectZip(path) });
}

/** Bytes to detect from, wherever they are (a file, an object in S3). */
export interface DetectSource {
  size: number;
  /** The first `length` bytes (fewer at the end). */
  readPrefix(length: number): Promise<Buffer>;
  /** A .zip by its signature: find and classify its conversations entry (needs the whole archive). */
  zip(): Promise<FileKind>;
}

export async function detectFrom(source: DetectSource): Promise<FileKind> {
  const { size } = source;
  if (size === 0) return { kind: 'empty' };

  const head = await source.readPrefix(Math.min(size, PREFIXES[0] as number));
  if (head.subarray(0, PDF_MAGIC.length).equals(PDF_MAGIC)) return { kind: 'pdf' };
  const image = imageFormatOf(head);
  if (image) return { kind: 'image', format: image };
  if (head[0] === 0x50 && head[1] === 0x4b && (head[2] === 0x03 || head[2] === 0x05) && (head[3] === 0x04 || head[3] === 0x06)) {
    return source.zip();
  }
  // A PDF may have junk before its header (pdf.js looks in the first 1024 bytes), but a JSON
  // export may also quote "%PDF-" early, and so may a README or a script: text that starts like
  // JSON is read as JSON, and elsewhere the header must have its version and an object after it.
  const first = head[skipWhitespace(head, head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf ? 3 : 0)];
  if (first !== 0x5b && first !== 0x7b && pdfAfterJunk(head)) return { kind: 'pdf' };
  for (let k = 0; ; k++) {
    const limit = PREFIXES[k] as number;
    const prefix = k === 0 ? head : await source.readPrefix(Math.min(size, limit));
    const found = classifyJson(prefix, prefix.length >= size);
    if (found !== 'more') return found;
    if (k === PREFIXES.length - 1) return { kind: 'unknown', reason: `the first conversation's keys are not within the first ${limit} bytes` };
  }
}

/** PNG, JPEG, TIFF (both byte orders, BigTIFF) and WebP by their signatures. */
export function imageFormatOf(head: Buffer): ImageFormat | null {
  if (head.length >= 8 && head.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return 'png';
  if (head.length >= 3 && head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return 'jpeg';
  if (head.length >= 4 && ((head[0] === 0x49 && head[1] === 0x49 && (head[2] === 0x2a || head[2] === 0x2b) && head[3] === 0x00) || (head[0] === 0x4d && head[1] === 0x4d && head[2] === 0x00 && (head[3] === 0x2a || head[3] === 0x2b)))) return 'tiff';
  if (head.length >= 12 && head.subarray(0, 4).toString('latin1') === 'RIFF' && head.subarray(8, 12).toString('latin1') === 'WEBP') return 'webp';
  return null;
}

/** A .zip export at `path` (named `file` in messages): its conversations entry, classified. */
export async function detectZip(path: string, file = path): Promise<FileKind> {
  const record = await findConversationsEntry(path, file);
  const entry = record.fileName;
  const { stream, close } = await openZipEntry(path, record, file);
  const pieces: Buffer[] = [];
  let bytes = 0;
  let eof = true;
  let found: FileKind | 'more' = 'more';
  try {
    let k = 0;
    for await (const piece of stream as AsyncIterable<Buffer>) {
      pieces.push(piece);
      bytes += piece.length;
      if (bytes < (PREFIXES[k] as number)) continue;
      found = classifyJson(Buffer.concat(pieces), false);
      if (found !== 'more' || ++k === PREFIXES.length) {
        eof = false;
        break;
      }
    }
  } catch {
    eof = false; // a damaged entry: splitExport reports it as ZIP_CORRUPT with the cause
  } finally {
    stream.destroy();
    close();
  }
  if (found === 'more') found = classifyJson(Buffer.concat(pieces), eof);
  if (found === 'more') return { kind: 'unknown', reason: `${entry} in the zip: the first conversation's keys were not found` };
  const inZip = { zipEntry: entry, zipRecord: record };
  if (found.kind === 'chat') return { ...found, ...inZip };
  if (found.kind === 'empty') return { kind: 'chat', format: 'chatgpt', ...inZip }; // splitExport says EXPORT_EMPTY
  // A .zip with a conversations.json is an export by its entry's name: JSON that is damaged (cut
  // off, not UTF-8, not JSON at all) or of the wrong shape is said by splitExport, with the entry
  // and the byte offset or the field (EXPORT_BAD_JSON, EXPORT_BAD_UTF8, EXPORT_SCHEMA), not as
  // "not a known chat export". Only a shape with its own advice (JSONL given as an array) stays.
  if (found.kind === 'unknown' && !/give it as JSONL|UTF-16/.test(found.reason)) return { kind: 'chat', format: 'chatgpt', ...inZip };
  return found.kind === 'unknown' ? { kind: 'unknown', reason: `${entry} in the zip: ${found.reason}` } : found;
}

async function readPrefix(path: string, length: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buf, 0, length, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

function skipWhitespace(buf: Buffer, i: number): number {
  while (i < buf.length) {
    const b = buf[i];
    if (b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09) break;
    i++;
  }
  return i;
}

/** The kind of a JSON export from a prefix of it; 'more' when the prefix does not decide. */
export function classifyJson(buf: Buffer, eof: boolean): FileKind | 'more' {
  if ((buf[0] === 0xff && buf[1] === 0xfe) || (buf[0] === 0xfe && buf[1] === 0xff)) {
    return { kind: 'unknown', reason: 'UTF-16 text; chat exports must be UTF-8' };
  }
  let i = buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf ? 3 : 0;
  i = skipWhitespace(buf, i);
  if (i >= buf.length) return eof ? { kind: 'empty' } : 'more';
  if (buf[i] === 0x5b) {
    // '[': the first element decides.
    const j = skipWhitespace(buf, i + 1);
    if (j >= buf.length) return eof ? { kind: 'unknown', reason: "JSON cut off after '['" } : 'more';
    if (buf[j] === 0x5d) return { kind: 'chat', format: 'chatgpt' }; // [] : splitExport says EXPORT_EMPTY
    if (buf[j] !== 0x7b) return { kind: 'unknown', reason: 'a JSON array whose first element is not an object' };
    const { keys, complete } = topLevelKeys(buf, j);
    if (keys.some((k) => CHATGPT_KEYS.includes(k))) return { kind: 'chat', format: 'chatgpt' };
    if (keys.some((k) => CLAUDE_KEYS.includes(k))) return { kind: 'chat', format: 'claude' };
    if (!complete && !eof) return 'more';
    if (keys.includes('messages')) {
      return { kind: 'unknown', reason: 'a JSON array of {messages} objects; give it as JSONL (one conversation a line)' };
    }
    return { kind: 'unknown', reason: `a JSON array whose first element has none of the keys ${[...CHATGPT_KEYS, ...CLAUDE_KEYS].join(', ')}` };
  }
  if (buf[i] === 0x7b) {
    // '{': JSONL when the first line is a conversation with messages.
    const { keys, complete } = topLevelKeys(buf, i);
    if (keys.includes('messages')) return { kind: 'chat', format: 'jsonl' };
    if (!complete && !eof) return 'more';
    if (keys.some((k) => CHATGPT_KEYS.includes(k) || CLAUDE_KEYS.includes(k))) {
      return { kind: 'unknown', reason: 'a single conversation object; exports are a JSON array of conversations' };
    }
    return { kind: 'unknown', reason: 'a JSON object without "messages" (not a JSONL conversation)' };
  }
  return { kind: 'unknown', reason: 'not a PDF, a .zip or JSON' };
}

/** Keys of the object starting at `start` (its top level only) found within `buf`. */
function topLevelKeys(buf: Buffer, start: number): { keys: string[]; complete: boolean } {
  const keys: string[] = [];
  let depth = 0;
  let expectKey = false;
  let i = start;
  while (i < buf.length) {
    const b = buf[i] as number;
    if (b === 0x22) {
      let j = i + 1;
      while (j < buf.length && buf[j] !== 0x22) j += buf[j] === 0x5c ? 2 : 1;
      if (j >= buf.length) break;
      if (depth === 1 && expectKey) {
        try {
          keys.push(JSON.parse(buf.toString('utf8', i, j + 1)) as string);
        } catch {
          // not a valid key: splitExport reports the JSON error
        }
        expectKey = false;
      }
      i = j + 1;
      continue;
    }
    if (b === 0x7b || b === 0x5b) {
      depth++;
      if (depth === 1) expectKey = true;
    } else if (b === 0x7d || b === 0x5d) {
      if (--depth === 0) return { keys, complete: true };
    } else if (b === 0x2c && depth === 1) expectKey = true;
    i++;
  }
  return { keys, complete: false };
}
