/**
 * OUT_DIR fills up in the middle of a write (ENOSPC on a small tmpfs): no partial output and no
 * temporary file is left, the write is tried again (WRITE_ATTEMPTS) and then marked failed
 * (WRITE_FAILED, saying the disk is full), and `docbatch retry` writes it whole once there is
 * room. Needs `mount -t tmpfs` (root); skipped where that is refused.
 */
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { tmpfs } from '../helpers/tmpfs.ts';
import { runCli } from '../helpers/cli.ts';
import { acceptedIds, parsePages, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

const disk = tmpfs(join(tmpdir(), `docbatch-disk-full-${process.pid}`));
const mnt = disk.path;

let p: Pipeline | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
  disk.unmount();
});

it.skipIf(!disk.canMount)('a write cut off by a full disk leaves nothing partial; retry writes it whole once there is room', async () => {
  expect(disk.mount('96k')).toBe(true);
  p = await startPipeline({ file: import.meta.filename, emulator: { speed: 50, outputTokensMin: 200, outputTokensMax: 300 }, config: { outDir: mnt, writeAttempts: 2 } });
  // About 26 kB left: the 40 pages' Markdown (~40 kB) does not fit.
  writeFileSync(join(mnt, 'filler'), Buffer.alloc(70 * 1024));
  const pdf = join(p.dir, 'big.pdf');
  writeFileSync(pdf, numberedPdf(40));
  const [docId] = acceptedIds(await p.enqueue([pdf]));
  const [d] = await p.wait([docId!], 60_000);
  expect(d!.record).toMatchObject({ state: 'failed', writeError: { code: 'WRITE_FAILED', message: expect.stringMatching(/ENOSPC/) } });
  expect(readdirSync(mnt)).toEqual(['filler']);
  rmSync(join(mnt, 'filler'));
  const env = { REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix, BLOB_DIR: p.config.blobDir, OUT_DIR: p.config.outDir };
  const retry = await runCli(['retry', docId!, '--wait'], env, { timeoutMs: 60_000 });
  expect(retry.code, retry.stdout + retry.stderr).toBe(0);
  expect(readdirSync(mnt).sort()).toEqual(['big.md', 'big.report.json']);
  const pages = parsePages(readFileSync(join(mnt, 'big.md'), 'utf8'));
  expect([...pages.keys()]).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
  for (const [n, page] of pages) expect(page.body, `page ${n}`).toContain(`Page ${n} of 40`);
}, 120_000);
