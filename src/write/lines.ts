/**
 * The lines of a JSONL file, split at `\n` only, streamed. Not node:readline: it also ends a line
 * at `\r` and at U+2028 / U+2029, which JSON.stringify leaves unescaped inside strings, so a chat
 * message or title holding one would cut its sidecar line in two (and make it invalid JSON).
 * A `\n` byte never occurs inside a multi-byte UTF-8 character, so lines are cut on bytes and
 * decoded whole.
 */
import { createReadStream } from 'node:fs';

export async function* jsonLines(path: string): AsyncGenerator<string> {
  let pending: Buffer[] = [];
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
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
