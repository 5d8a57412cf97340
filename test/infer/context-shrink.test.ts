/**
 * A page whose prompt alone does not fit the model's context (a vision model served with a short
 * --max-model-len: a 1288 px page is ~1.5k image tokens) is rendered smaller, as after an out of
 * memory alone (1024, 768, 512 px), instead of failing CONTEXT_TOO_LONG at once; a prompt that
 * fits at no size fails CONTEXT_TOO_LONG saying the sizes tried. Real worker, writer, Redis and
 * the engine emulator (which counts a token per 28x28 pixels and refuses as vLLM does).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

let p: Pipeline | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
});
afterAll(async () => {
  await p?.stop();
});

async function run(maxModelLen: number, name: string): Promise<{ record: Record<string, unknown>; report: Record<string, unknown> }> {
  p = await startPipeline({ file: import.meta.filename, emulator: { maxModelLen, kvCacheTokens: 65_536 }, config: { attempts: 1, engineStartTimeoutMs: 5_000 } });
  const file = join(p.dir, `${name}.pdf`);
  writeFileSync(file, numberedPdf(2, 21));
  const [docId] = acceptedIds(await p.enqueue([file]));
  const [done] = await p.wait([docId!], 60_000);
  const report = JSON.parse(readFileSync(join(p.config.outDir, `${name}.report.json`), 'utf8')) as Record<string, unknown>;
  return { record: done!.record as unknown as Record<string, unknown>, report };
}

describe('a page whose prompt does not fit the context at the render size', () => {
  it('is rendered smaller until it fits, and written', async () => {
    const { record, report } = await run(1400, 'short-context');
    expect(record).toMatchObject({ state: 'written', done: 2, failed: 0 });
    expect(JSON.stringify(report)).not.toMatch(/CONTEXT_TOO_LONG/);
    // Sent at 1288 px, refused; then at 1024 px, answered: two chat requests a page.
    expect(p!.engine.stats().errors.context_length).toBe(2);
  }, 60_000);

  it('one that fits at no size fails CONTEXT_TOO_LONG once every smaller size was tried', async () => {
    const { record, report } = await run(300, 'tiny-context');
    expect(record).toMatchObject({ state: 'written', done: 0, failed: 2 });
    expect(report.failures_by_code).toEqual({ CONTEXT_TOO_LONG: 2 });
    // 1288, 1024, 768 and 512 px: four refusals a page, then no more.
    expect(p!.engine.stats().errors.context_length).toBe(8);
  }, 60_000);
});
