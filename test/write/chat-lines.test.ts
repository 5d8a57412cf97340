/**
 * A chat export whose messages or titles hold U+2028 / U+2029 (line and paragraph separators,
 * common in text pasted from word processors): JSON.stringify leaves them raw in the sidecar,
 * and the writer read the sidecar with node:readline, which ends a line at them too. The line
 * cut in two was invalid JSON: every write attempt failed, and the document ended WRITE_FAILED
 * with all its answers in hand. The writer now splits the sidecar at `\n` only (src/jsonl.ts),
 * and escapes those separators in the JSONL it writes, for readers that split at them too.
 */
import { createReadStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { jsonLines } from '../../src/jsonl.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

let p: Pipeline | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
});

it('messages and titles holding U+2028 / U+2029 are written like any other', async () => {
  p = await startPipeline({ file: import.meta.filename, config: { writeAttempts: 2 } });
  const chat = join(p.dir, 'pasted.jsonl');
  const conversations = [
    { id: 'c1', title: 'Minutes\u2028draft', messages: [{ role: 'user', content: 'First line\u2028second line\u2029next paragraph' }, { role: 'assistant', content: 'Noted.\r\nDone.' }] },
    { id: 'c2', title: 'Plain', messages: [{ role: 'user', content: 'nothing odd here' }, { role: 'assistant', content: 'fine' }] },
  ];
  writeFileSync(chat, `${conversations.map((c) => JSON.stringify(c)).join('\n')}\n`);
  const ids = acceptedIds(await p.enqueue([chat]));
  const [done] = await p.wait(ids);
  expect(done!.record).toMatchObject({ state: 'written', done: 2, failed: 0, writeError: null });
  const lines = readFileSync(join(p.config.outDir, 'pasted.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(lines.map((l) => [l.conversation_id, l.title])).toEqual([
    ['c1', 'Minutes\u2028draft'],
    ['c2', 'Plain'],
  ]);
  expect(lines.every((l) => typeof l.summary === 'string')).toBe(true);

  // X.jsonl itself: one record a line for readers that also end lines at U+2028 (node:readline,
  // Python's str.splitlines): the separators are escaped inside its strings.
  const read: string[] = [];
  for await (const line of createInterface({ input: createReadStream(join(p.config.outDir, 'pasted.jsonl')), crlfDelay: Infinity })) read.push(line);
  expect(read).toHaveLength(2);
  expect((JSON.parse(read[0]!) as { title: string }).title).toBe('Minutes\u2028draft');
}, 60_000);

it('jsonLines splits at \\n only, across read chunks and inside multi-byte characters', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'docbatch-lines-'));
  try {
    const file = join(dir, 'x.jsonl');
    // Lines longer than a read chunk (64 KiB), multi-byte characters on every boundary, \r and U+2028 inside.
    const lines = [`a\u2028b\rc${'é文'.repeat(40_000)}`, '', 'last without newline \u2029'];
    writeFileSync(file, lines.join('\n'));
    const got: string[] = [];
    for await (const line of jsonLines(file)) got.push(line);
    expect(got).toEqual(lines);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
