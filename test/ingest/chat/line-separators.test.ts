/**
 * Chat text holding U+2028 / U+2029 (LINE and PARAGRAPH SEPARATOR, found in text pasted from PDFs
 * and word processors) and U+0085 (NEXT LINE): JSON.stringify leaves them raw, and line readers
 * (Node's readline, Python's splitlines) end a line there. The sidecar is one JSON record a
 * line: through the real pipeline (Redis, worker, emulator engine, writer) every chunk must come
 * out whole.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { acceptedIds, startPipeline, type Pipeline } from '../../helpers/pipeline.ts';
import { ChatgptTree } from './fixtures.ts';

let p: Pipeline | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
});

it('a message with U+2028, U+2029 and U+0085 is written whole: one output line per chunk, its text intact', async () => {
  p = await startPipeline({ file: import.meta.filename });
  const t = new ChatgptTree();
  const ids = t.chain(t.rootId, ['pasted from a PDF:\u2028first line\u2028second line\u2029next paragraph', 'old\u0085mainframe text', 'thanks']);
  const file = join(p.dir, 'conversations.json');
  writeFileSync(file, JSON.stringify([t.build({ id: 'sep', title: 'Line\u2028separators', current_node: ids.at(-1)! })]));
  const outcomes = await p.enqueue([file]);
  const [docId] = acceptedIds(outcomes);
  await p.wait([docId!]);
  const lines = readFileSync(join(p.config.outDir, 'conversations.jsonl'), 'utf8').split('\n').filter((l) => l !== '');
  expect(lines).toHaveLength(1);
  const line = JSON.parse(lines[0]!) as { conversation_id: string; title: string; message_ids: string[]; summary: string | null };
  expect(line).toMatchObject({ conversation_id: 'sep', title: 'Line\u2028separators', message_ids: ids });
  expect(line.summary).toEqual(expect.any(String));
  const report = JSON.parse(readFileSync(join(p.config.outDir, 'conversations.report.json'), 'utf8')) as { failed: unknown[] };
  expect(report.failed).toEqual([]);
}, 60_000);
