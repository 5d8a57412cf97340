/**
 * A write that fails and is tried again (WRITE_ATTEMPTS, about 17 minutes of backoff) is said by
 * `docbatch status` while it is: the document has every unit answered and is not written, and
 * the user sees why (`write_retrying` in --json, a `write failing` line in the text), not a
 * document that looks merely slow. Once the cause is gone it is written and the line goes.
 * A real worker and writer; OUT_DIR's folder for the document is immutable at first
 * (`chattr +i`: EPERM even for root, which is tried again; skipped where chattr is refused).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { runCli } from '../helpers/cli.ts';
import { readProgress } from '../../src/observe/progress.ts';
import { unservedWatch } from '../../src/observe/workers.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

/** Whether `chattr +i` works here (root on ext4/xfs; not on tmpfs or overlay). */
function canChattr(): boolean {
  const dir = mkdtempSync(join(tmpdir(), 'docbatch-chattr-'));
  try {
    execFileSync('chattr', ['+i', dir], { stdio: 'ignore' });
    execFileSync('chattr', ['-i', dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const immutable: string[] = [];
const unlock = (dir: string) => execFileSync('chattr', ['-i', dir], { stdio: 'ignore' });

let p: Pipeline | undefined;
afterEach(async () => {
  for (const dir of immutable.splice(0)) unlock(dir);
  await p?.stop();
  p = undefined;
});

it.skipIf(!canChattr())('status and --wait say a write that failed and is being tried again, with its code', async () => {
  p = await startPipeline({ file: import.meta.filename, config: { imageSize: 256, writeAttempts: 20 } });
  const env = { REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix };
  const blocked = join(p.config.outDir, 'blocked');
  mkdirSync(blocked, { recursive: true });
  execFileSync('chattr', ['+i', blocked]);
  immutable.push(blocked);
  const pdf = join(p.dir, 'slow.pdf');
  writeFileSync(pdf, numberedPdf(2, 20));
  const [docId] = acceptedIds(await p.enqueue([pdf], { out: 'blocked' }));
  // Every unit answered, the write failed at least once and waits to be tried again.
  const deadline = Date.now() + 40_000;
  let doc: Record<string, unknown> = {};
  while (Date.now() < deadline) {
    doc = JSON.parse((await runCli(['status', docId!, '--json'], env)).stdout.split('\n')[0]!) as Record<string, unknown>;
    // From the 4th attempt on it waits 4 s or more: the reads below land while it waits.
    if (((doc.write_retrying as { attempts_made?: number } | null)?.attempts_made ?? 0) >= 4) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  expect(doc).toMatchObject({ state: 'complete', done: 2, write_error: null, write_retrying: { code: 'WRITE_FAILED', message: expect.stringMatching(/EPERM/), attempts: 20 } });
  expect((doc.write_retrying as { attempts_made: number }).attempts_made).toBeGreaterThanOrEqual(4);
  const line = new RegExp(`${docId}  write failing: WRITE_FAILED: .*(EPERM).* \\(attempt \\d+ of 20; tried again\\)`);
  const text = await runCli(['status', docId!], env);
  expect(text.stdout).toMatch(line);
  // enqueue --wait and retry --wait say it too (their notes, after their grace period).
  const notes = await unservedWatch(p.redis, p.config.prefix, { graceMs: 0 })(await readProgress(p.store, [docId!]));
  expect(notes).toEqual([expect.stringMatching(line)]);

  unlock(immutable.pop()!);
  const [done] = await p.wait([docId!], 60_000);
  expect(done!.record.state).toBe('written');
  const after = JSON.parse((await runCli(['status', docId!, '--json'], env)).stdout.split('\n')[0]!) as Record<string, unknown>;
  expect(after.write_retrying).toBeNull();
  expect((await runCli(['status', docId!], env)).stdout).not.toContain('write failing');
}, 90_000);
