/**
 * Ollama past its context, acted out by the emulator (`truncatePrompts`, as `--like ollama`): a
 * prompt longer than num_ctx is cut to it and answered with a 200, `usage.prompt_tokens` = the
 * context; /v1/models names no context, /api/ps does. A real worker over real HTTP must not
 * write the answer about a part of the page: it renders the page smaller, and the smaller page
 * fits.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

let p: Pipeline;
beforeAll(async () => {
  // A page of the test PDF at 1288 px is about 1800 prompt tokens here, at 1024 px well under 1400.
  p = await startPipeline({ file: import.meta.filename, emulator: { truncatePrompts: true, maxModelLen: 1400 }, config: { attempts: 1 } });
});
afterAll(async () => {
  await p?.stop();
});

describe('Ollama cutting a prompt over num_ctx without an error', () => {
  it('every page is rendered smaller and written from an answer to the whole page', async () => {
    const before = p.engine.stats().requests;
    const file = join(p.dir, 'cut.pdf');
    writeFileSync(file, numberedPdf(2, 21));
    const ids = acceptedIds(await p.enqueue([file]));
    const [done] = await p.wait(ids, 60_000);
    expect(done!.record).toMatchObject({ state: 'written', done: 2, failed: 0 });
    // Each page twice: cut at 1288 px (its answer not taken), whole at 1024.
    expect(p.engine.stats().requests - before).toBe(4);
  }, 60_000);
});
