/**
 * Under the `conversation` unit, X.jsonl has one line per conversation; a long one is answered
 * from its chunks' summaries, which are units of their own that the engine answered (and the
 * report counts) but that get no line. The conversation's line carries their usage too, so
 * the lines' usage adds up to the report's totals: what a conversation cost is on its line.
 * A real worker and writer with the emulator.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

const EXAMPLES = join(import.meta.dirname, '..', '..', 'examples');

let p: Pipeline | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
});

it("a conversation's line carries the usage of the chunk summaries it was made from", async () => {
  p = await startPipeline({ file: import.meta.filename, config: { chunkTokens: 300 } });
  const conv = (id: string, turns: number) =>
    JSON.stringify({ id, title: `Talk ${id}`, messages: Array.from({ length: turns }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: `${id} message ${i}: ${'we weigh Redis against Postgres for the queue '.repeat(8)}` })) });
  const file = join(p.dir, 'talks.jsonl');
  writeFileSync(file, [conv('long', 10), conv('short', 1)].join('\n'));
  const [docId] = acceptedIds(await p.enqueue([file], { task: { task: join(EXAMPLES, 'conversation-summary.yaml') } }));
  const [done] = await p.wait([docId!], 120_000);
  expect(done!.record.failed).toBe(0);
  const lines = readFileSync(join(p.config.outDir, 'talks.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { chunks: number; usage: { prompt_tokens: number; completion_tokens: number } });
  expect(lines.map((l) => l.chunks > 1)).toEqual([true, false]);
  const report = JSON.parse(readFileSync(join(p.config.outDir, 'talks.report.json'), 'utf8')) as { prompt_tokens: number; completion_tokens: number; units_without_usage: number };
  expect(report.units_without_usage).toBe(0);
  const sum = (key: 'prompt_tokens' | 'completion_tokens') => lines.reduce((n, l) => n + l.usage[key], 0);
  expect({ prompt_tokens: sum('prompt_tokens'), completion_tokens: sum('completion_tokens') }).toEqual({ prompt_tokens: report.prompt_tokens, completion_tokens: report.completion_tokens });
}, 150_000);
