/**
 * An engine that does not report token usage for some or all of its answers (no `usage`,
 * `"usage": null`): a real worker, writer and the emulator omitting usage. Those tokens are
 * unknown, not 0: X.jsonl lines say `"usage": null`, the record counts the units without usage,
 * the report and `status --json` give lower bounds with a `tokens_note` (null when nothing was
 * reported), `docbatch status` shows `≥N` and `?`, and the worker's metrics count them.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { WorkerMetrics } from '../../src/observe/metrics.ts';
import { runCli } from '../helpers/cli.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { parseMetrics, sumOf } from '../observe/fixtures.ts';

let p: Pipeline | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
});

type Usage = { prompt_tokens: number | null; completion_tokens: number | null } | null;
const jsonl = (path: string) => readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { usage: Usage; error?: unknown });
const report = (path: string) => JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
const sum = (lines: Array<{ usage: Usage }>, key: 'prompt_tokens' | 'completion_tokens') => lines.reduce((n, l) => n + (l.usage?.[key] ?? 0), 0);

it('tokens the engine did not report are unknown or a lower bound in every output, never 0', async () => {
  p = await startPipeline({ file: import.meta.filename, worker: false, emulator: { omitUsage: 'null', omitUsageShare: 0.5 } });
  const worker = await p.startWorker();
  const metrics = new WorkerMetrics({ processMetrics: false });
  metrics.attach(worker);

  // A chat export, about half its answers without usage ("usage": null).
  const chats = join(p.dir, 'chats.jsonl');
  writeFileSync(chats, `${Array.from({ length: 16 }, (_, i) => JSON.stringify({ id: `c${i}`, title: `T${i}`, messages: [{ role: 'user', content: `Question ${i}?` }, { role: 'assistant', content: `Answer ${i}.` }] })).join('\n')}\n`);
  const [chatId] = acceptedIds(await p.enqueue([chats]));
  const [chatDone] = await p.wait([chatId!]);
  expect(chatDone!.record).toMatchObject({ done: 16, failed: 0 });
  const lines = jsonl(join(p.config.outDir, 'chats.jsonl'));
  expect(lines).toHaveLength(16);
  const without = lines.filter((l) => l.usage === null).length;
  expect(without).toBeGreaterThan(0);
  expect(without).toBeLessThan(16);
  for (const l of lines.filter((x) => x.usage !== null)) expect(l.usage).toEqual({ prompt_tokens: expect.any(Number), completion_tokens: expect.any(Number) });
  const prompt = sum(lines, 'prompt_tokens');
  const completion = sum(lines, 'completion_tokens');
  expect(completion).toBeGreaterThan(0);
  expect(chatDone!.record).toMatchObject({ unitsWithoutUsage: without, promptTokens: prompt, completionTokens: completion });
  const chatReport = report(join(p.config.outDir, 'chats.report.json'));
  expect(chatReport).toMatchObject({ prompt_tokens: prompt, completion_tokens: completion, units_without_usage: without, tokens_note: expect.stringMatching(/lower bound/) });

  // Pages of a PDF under a JSON Schema task, no answer with usage (no `usage` key at all).
  p.engine.setFaults({ omitUsage: 'absent', omitUsageShare: 1 });
  const pdf = join(p.dir, 'pages.pdf');
  writeFileSync(pdf, numberedPdf(3));
  const schema = join(p.dir, 'title.json');
  writeFileSync(schema, JSON.stringify({ type: 'object', properties: { title: { type: 'string' } }, required: ['title'] }));
  const [pdfId] = acceptedIds(await p.enqueue([pdf], { task: { schema, unit: 'page' } }));
  const [pdfDone] = await p.wait([pdfId!]);
  expect(pdfDone!.record).toMatchObject({ done: 3, failed: 0, unitsWithoutUsage: 3, promptTokens: 0, completionTokens: 0 });
  expect(jsonl(join(p.config.outDir, 'pages.jsonl')).map((l) => l.usage)).toEqual([null, null, null]);
  expect(report(join(p.config.outDir, 'pages.report.json'))).toMatchObject({ prompt_tokens: null, completion_tokens: null, units_without_usage: 3, tokens_note: expect.stringMatching(/lower bound/) });

  // The worker's metrics leave the unknown out and count the units.
  const scrape = parseMetrics(await metrics.metrics());
  expect(sumOf(scrape, 'docbatch_units_without_usage_total')).toBe(without + 3);
  expect(sumOf(scrape, 'docbatch_completion_tokens_total')).toBe(completion);
  expect(sumOf(scrape, 'docbatch_prompt_tokens_total')).toBe(prompt);

  // docbatch status: ≥ for a lower bound, ? for none reported; JSON with the same keys as the report.
  const env = { REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix };
  const text = await runCli(['status'], env);
  expect(text.code, text.stderr).toBe(0);
  const lineOf = (id: string) => text.stdout.split('\n').find((l) => l.startsWith(id)) ?? '';
  expect(lineOf(chatId!)).toContain(` ≥${completion} tok `);
  expect(lineOf(pdfId!)).toContain(' ? tok ');
  expect(text.stdout).toContain(`, ≥${completion} tokens generated,`);
  const json = (await runCli(['status', '--json'], env)).stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(json.find((d) => d.docId === chatId)).toMatchObject({ prompt_tokens: prompt, completion_tokens: completion, units_without_usage: without, tokens_note: expect.any(String) });
  expect(json.find((d) => d.docId === pdfId)).toMatchObject({ prompt_tokens: null, completion_tokens: null, units_without_usage: 3, tokens_note: expect.any(String) });
  expect(json.at(-1)!.total).toMatchObject({ prompt_tokens: prompt, completion_tokens: completion, units_without_usage: without + 3, tokens_note: expect.any(String) });
}, 90_000);
