/**
 * The writer archives a document's results into BLOB_DIR after writing its outputs into OUT_DIR.
 * BLOB_DIR full there (ENOSPC on a real tmpfs, root only) failed the write with a bare "ENOSPC:
 * no space left on device, write": the operator looks at OUT_DIR, which has room. Now the
 * document's WRITE_FAILED says the blob store (BLOB_DIR, the folder) is full and what to do, and
 * `docbatch retry` writes it once there is room.
 */
import { readdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { tmpfs } from '../helpers/tmpfs.ts';
import { runCli } from '../helpers/cli.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

const disk = tmpfs(join(tmpdir(), `docbatch-archive-full-${process.pid}`));
const mnt = disk.path;

let p: Pipeline | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
  disk.unmount();
});

it.skipIf(!disk.canMount)("BLOB_DIR full when the results are archived: the document's WRITE_FAILED names the blob store and what to do; retry writes it once there is room", async () => {
  expect(disk.mount('1m')).toBe(true);
  const blobs = join(mnt, 'blobs');
  p = await startPipeline({ file: import.meta.filename, config: { blobDir: blobs, writeAttempts: 1 } });
  const pdf = join(p.dir, 'a.pdf');
  writeFileSync(pdf, numberedPdf(2));
  const outcomes = await p.enqueue([pdf]);
  // The input is in; now nothing more fits there.
  writeFileSync(join(mnt, 'filler'), Buffer.alloc(statfsSync(mnt).bavail * statfsSync(mnt).bsize));
  const [d] = await p.wait(acceptedIds(outcomes), 60_000);
  expect(d!.record.state).toBe('failed');
  expect(d!.record.writeError).toMatchObject({ code: 'WRITE_FAILED', message: expect.stringMatching(new RegExp(`^cannot write into the blob store BLOB_DIR ${blobs}: ENOSPC: .*is full .*make room there`)) });
  expect(readdirSync(join(blobs, 'named', 'results'), { recursive: true }).filter((f) => String(f).includes('.tmp-'))).toEqual([]);

  rmSync(join(mnt, 'filler'));
  const env = { REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix, BLOB_DIR: blobs, OUT_DIR: p.config.outDir };
  const retry = await runCli(['retry', acceptedIds(outcomes)[0]!, '--wait'], env, { timeoutMs: 60_000 });
  expect(retry.code, retry.stdout + retry.stderr).toBe(0);
  expect(readdirSync(p.config.outDir).sort()).toEqual(['a.md', 'a.report.json']);
}, 120_000);
