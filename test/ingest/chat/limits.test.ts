/**
 * Exports built to hurt the producer: one message so long that it becomes hundreds of thousands
 * of chunks (once a RangeError from `push(...array)` that ended the whole command).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { DocbatchError } from '../../../src/errors.ts';
import { detectFile } from '../../../src/ingest/detect.ts';
import { splitExport, type ChunkRecord, type SplitOptions } from '../../../src/ingest/chat/split.ts';
import { readSidecar, tempDir, writeBytes } from './fixtures.ts';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

let n = 0;
async function split(path: string, options: Partial<SplitOptions> = {}) {
  const kind = await detectFile(path);
  if (kind.kind !== 'chat') throw new Error(`not chat: ${JSON.stringify(kind)}`);
  const sidecar = join(tmp.dir, `s${++n}.jsonl`);
  const started = performance.now();
  const outcome = await splitExport(path, kind, sidecar, { file: 'x', budgetTokens: 3500, ...options }).then(
    (result) => ({ result, error: undefined }),
    (error: unknown) => ({ result: undefined, error: error as DocbatchError }),
  );
  return { ...outcome, sidecar, seconds: (performance.now() - started) / 1000 };
}

describe('one very long message', () => {
  it('becomes 200 000+ chunks without a RangeError (no spread of an unbounded array)', async () => {
    // Upper-case letters in one run cost about a token each: with a 64-token budget, a part holds
    // some 45 of them, so 9.5 M of them make over 200 000 parts (push(...parts) threw above ~125 000).
    const long = 'A'.repeat(9_500_000);
    const text = `A short first paragraph.\n\n${long}`;
    const line = JSON.stringify({ id: 'long', messages: [{ role: 'user', content: text }, { role: 'assistant', content: 'ok' }] });
    const path = writeBytes(tmp.dir, 'long.jsonl', `${line}\n`);
    const { result, error, sidecar } = await split(path, { budgetTokens: 64 });
    expect(error).toBeUndefined();
    expect(result!.chunks).toBeGreaterThan(200_000);
    const records = readSidecar(readFileSync(sidecar), result!.units) as unknown as ChunkRecord[];
    for (const r of records) expect(r.tokens).toBeLessThanOrEqual(64);
    // Nothing lost: the parts, without their headers, are the message.
    const parts = records.flatMap((r) => r.text.split('\n\n').filter((b) => b.startsWith('user (part ')).map((b) => b.replace(/^user \(part \d+\/\d+\): /, '')));
    expect(parts.join('').replace(/\s/g, '')).toBe(text.replace(/\s/g, ''));
    expect(records.at(-1)!.text).toContain('assistant: ok');
  }, 120_000);
});
