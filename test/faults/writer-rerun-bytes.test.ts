/**
 * Fault case 12 of ../shared/reference/reliability.md: a writer stopped mid-write (its outputs
 * on disk, the document not yet marked written) leaves no partial file, and the writer that
 * takes the job over writes the same bytes: X.md and X.report.json identical to the first
 * writer's, and no temporary file left.
 *
 * Real Redis, the emulator, a real worker, writers in this process (the first one stuck inside
 * its write after the outputs went to disk, then closed, as a SIGTERM'd or killed writer is).
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { silentLogger } from '../../src/observe/log.ts';
import { createWriter, type DocumentWriter } from '../../src/write/writer.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

let p: Pipeline | undefined;
const writers: DocumentWriter[] = [];
afterEach(async () => {
  await Promise.allSettled(writers.splice(0).map((w) => w.close()));
  await p?.stop();
  p = undefined;
});

it('a write taken over after its writer stopped mid-write gives the same bytes, and nothing partial', async () => {
  let entered = 0;
  const hang = async () => {
    entered++;
    await new Promise(() => undefined);
  };
  p = await startPipeline({ file: import.meta.filename, config: { lockDurationMs: 2000, stalledIntervalMs: 1000 }, writer: { beforeArchive: hang } });
  const pdf = join(p.dir, 'again.pdf');
  writeFileSync(pdf, numberedPdf(3, 5));
  const [docId] = acceptedIds(await p.enqueue([pdf]));
  for (let i = 0; i < 1200 && entered < 1; i++) await new Promise((r) => setTimeout(r, 50));
  expect(entered).toBe(1);
  const out = p.config.outDir;
  const first = { md: readFileSync(join(out, 'again.md')), report: readFileSync(join(out, 'again.report.json')), inode: statSync(join(out, 'again.md')).ino };
  const next = createWriter(p.config, silentLogger(), { reconcileIntervalMs: 1000 });
  writers.push(next);
  await next.start();
  await p.writer.close();
  const [done] = await p.wait([docId!], 90_000);
  expect(done!.record).toMatchObject({ state: 'written', done: 3, failed: 0 });
  expect(statSync(join(out, 'again.md')).ino, 'written again (a new file renamed over it)').not.toBe(first.inode);
  expect(readFileSync(join(out, 'again.md')).equals(first.md), 'X.md written again with the same bytes').toBe(true);
  expect(readFileSync(join(out, 'again.report.json'), 'utf8')).toBe(first.report.toString('utf8'));
  expect(readdirSync(out).filter((f) => f.includes('.tmp-'))).toEqual([]);
}, 150_000);
