/**
 * JSONL, both ways. Reading: the lines of a JSONL file or byte stream, split at `\n` only,
 * streamed (never the whole text as one string: a file past V8's string limit reads line by
 * line). Not node:readline: it also ends a line at `\r` and at U+2028 / U+2029, which
 * JSON.stringify leaves unescaped inside strings, so a chat message or title holding one would
 * cut its sidecar line in two (and make it invalid JSON). A `\n` byte never occurs inside a
 * multi-byte UTF-8 character, so lines are cut on bytes and decoded whole. Writing: one value as
 * one line whose strings carry no raw U+2028, U+2029 or U+0085 (escaped as `\u2028`, the same
 * JSON), so readers that split lines at them (readline, Python's str.splitlines) still see one
 * line per record.
 */
import { createReadStream } from 'node:fs';

export function jsonLines(path: string): AsyncGenerator<string> {
  return splitLines(createReadStream(path) as AsyncIterable<Buffer>);
}

/**
 * The lines of a byte stream, split at `\n` only, without their `\n` (a last line without one
 * too). The stream's error is thrown where it happens; returning early destroys the stream.
 */
export async function* splitLines(chunks: AsyncIterable<Buffer>): AsyncGenerator<string> {
  let pending: Buffer[] = [];
  for await (const chunk of chunks) {
    let start = 0;
    for (let end = chunk.indexOf(0x0a); end !== -1; end = chunk.indexOf(0x0a, start)) {
      pending.push(chunk.subarray(start, end));
      yield Buffer.concat(pending).toString('utf8');
      pending = [];
      start = end + 1;
    }
    if (start < chunk.length) pending.push(chunk.subarray(start));
  }
  if (pending.length > 0) yield Buffer.concat(pending).toString('utf8');
}

/** `value` as one JSONL line, `\n` included, with U+2028, U+2029 and U+0085 escaped. */
export function jsonlLine(value: unknown): string {
  // Outside strings JSON has none of them: every match is inside a string, where \uXXXX means the same.
  return `${JSON.stringify(value).replace(/[\u2028\u2029\u0085]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`)}\n`;
}
