/**
 * The optional second stage for chat exports: each conversation's chunk summaries are reduced to
 * one conversation summary (a unit added when the conversation's last chunk settles), written
 * after its chunks as a line with "chunk": "summary".
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { acceptedIds, parseEcho, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

let p: Pipeline | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
});

it('conversation summaries from chunk summaries, one line per conversation after its chunks', async () => {
  p = await startPipeline({ file: import.meta.filename, config: { chunkTokens: 300 } });
  const conv = (id: string, turns: number) =>
    JSON.stringify({
      id,
      title: `Talk ${id}`,
      messages: Array.from({ length: turns }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: `${id} message ${i}: ${'lorem ipsum dolor sit amet '.repeat(12)}` })),
    });
  const file = join(p.dir, 'talks.jsonl');
  writeFileSync(file, [conv('long', 12), conv('short', 1), conv('mid', 5)].join('\n'));
  const outcomes = await p.enqueue([file], { conversationSummary: true });
  const [docId] = acceptedIds(outcomes);
  await p.wait([docId!]);
  const lines = readFileSync(join(p.config.outDir, 'talks.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));

  // Each conversation: its chunks in order, then its summary line.
  const order = lines.map((l) => `${l.conversation_id}:${l.chunk}`);
  const long = lines.filter((l) => l.conversation_id === 'long' && l.chunk !== 'summary').length;
  const mid = lines.filter((l) => l.conversation_id === 'mid' && l.chunk !== 'summary').length;
  expect(long).toBeGreaterThan(2);
  expect(mid).toBeGreaterThan(1);
  expect(order).toEqual([
    ...Array.from({ length: long }, (_, i) => `long:${i}`),
    'long:summary',
    'short:0',
    'short:summary',
    ...Array.from({ length: mid }, (_, i) => `mid:${i}`),
    'mid:summary',
  ]);
  const summary = lines.find((l) => l.conversation_id === 'long' && l.chunk === 'summary');
  // The reduce request got the chunk summaries, in order, as its payload.
  expect(parseEcho(summary.summary).text?.first).toMatch(/^Part 1 of \d+:/);
  expect(summary).toMatchObject({ chunks: long, from_chunks: long, usage: { completion_tokens: expect.any(Number) } });
  expect(summary.message_ids.length).toBeGreaterThanOrEqual(12);
  // A single-chunk conversation's summary is its chunk's own (no second request).
  const short = lines.filter((l) => l.conversation_id === 'short');
  expect(short[1].summary).toBe(short[0].summary);
  const report = JSON.parse(readFileSync(join(p.config.outDir, 'talks.report.json'), 'utf8'));
  expect(report).toMatchObject({ units: long + 1 + mid + 2, completed: long + 1 + mid + 2, failed: [] });
}, 60_000);
