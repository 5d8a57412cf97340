/**
 * Issue 14, progress and status through the real CLI, with a real worker and writer:
 * - `enqueue --wait` of 8 documents piped to a file: a few state lines per document and a total
 *   line at most every 10 s (plus one at the end), nothing else;
 * - `status FILE` finds documents by file name (and part of a path), its total has the rate and
 *   elapsed time, and it says when a worker's engine is down;
 * - `status` whose reader has gone (`| head -1`) ends quietly: no EPIPE stack.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { BIN, runCli } from '../helpers/cli.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

let p: Pipeline;
let env: Record<string, string>;
let ids: string[] = [];

beforeAll(async () => {
  p = await startPipeline({ file: import.meta.filename, emulator: { speed: 4 } });
  env = { REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix, BLOB_DIR: p.config.blobDir, OUT_DIR: p.config.outDir };
}, 60_000);

afterAll(async () => {
  await p?.stop();
});

describe('enqueue --wait off a terminal', () => {
  it('8 documents: at most 8 state lines each, one total line per 10 s', async () => {
    const files = Array.from({ length: 8 }, (_, i) => {
      const f = join(p.dir, `quarterly-${i}.pdf`);
      writeFileSync(f, numberedPdf(3 + (i % 4), 20 + i));
      return f;
    });
    const started = Date.now();
    const r = await runCli(['enqueue', '--wait', ...files], env, { timeoutMs: 120_000 });
    const seconds = (Date.now() - started) / 1000;
    expect(r.code, r.stderr).toBe(0);
    ids = [...r.stdout.matchAll(/^(d[0-9a-f]{20})  enqueued/gm)].map((m) => m[1]!);
    expect(ids).toHaveLength(8);
    const lines = r.stderr.trim().split('\n');
    const states = lines.filter((l) => /^d[0-9a-f]{20}  (queued|running|written|failed) /.test(l));
    const totals = lines.filter((l) => l.startsWith('total: '));
    expect(states.length + totals.length, r.stderr).toBe(lines.length);
    for (const id of ids) {
      const mine = states.filter((l) => l.startsWith(id));
      expect(mine.length).toBeGreaterThanOrEqual(1);
      expect(mine.length).toBeLessThanOrEqual(8);
      expect(mine.at(-1)).toMatch(/ written +quarterly-\d  \d+\/\d+$/);
    }
    expect(totals.length).toBeLessThanOrEqual(Math.floor(seconds / 10) + 1);
    expect(totals.at(-1)).toMatch(/^total: \d+\/\d+ units, [\d.]+\/s, elapsed \d+s, 8\/8 documents written$/);
    // The final lines on stdout, as before.
    expect(r.stdout.match(/ written  .*quarterly-\d\.pdf: \d+\/\d+ done/g)).toHaveLength(8);
  }, 150_000);
});

describe('status', () => {
  it('finds documents by file name, by part of a path, and by id; the total has rate and elapsed time', async () => {
    const one = await runCli(['status', 'quarterly-3.pdf'], env);
    expect(one.code).toBe(0);
    const docLines = one.stdout.split('\n').filter((l) => /^d[0-9a-f]{20}  /.test(l));
    expect(docLines).toHaveLength(1);
    expect(docLines[0]).toMatch(/ written +quarterly-3 +\[#+\]/);
    expect(one.stdout).toMatch(/^total: 1 documents, \d+\/\d+ units \(0 failed\), \d+ tokens generated, [\d.]+ engine-s \(set GPU_HOURLY_USD for cost\), [\d.]+\/s, elapsed \d+s$/m);

    const some = await runCli(['status', 'quarterly-'], env);
    expect(some.stdout.split('\n').filter((l) => /^d[0-9a-f]{20}  /.test(l))).toHaveLength(8);
    const byId = await runCli(['status', ids[0]!.slice(0, 8)], env);
    expect(byId.stdout).toContain(ids[0]);
    const none = await runCli(['status', 'no-such-file.pdf'], env);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/^docbatch: DOC_NOT_FOUND: no document found for no-such-file\.pdf$/m);
    // Only the error: with a worker and a writer running, their lines are not printed as if they
    // were the status of the document asked for, and --json prints no report of 0 documents.
    expect(none.stdout).toBe('');
    const noneJson = await runCli(['status', '--json', 'no-such-file.pdf'], env);
    expect(noneJson.code).toBe(2);
    expect(noneJson.stderr).toMatch(/^docbatch: DOC_NOT_FOUND: no document found for no-such-file\.pdf$/m);
    expect(noneJson.stdout).toBe('');
  }, 60_000);

  it("says when a worker's engine is down", async () => {
    // The engine dies on the next page (vLLM's engine death) and stays away a while.
    p.engine.setFaults({ oomAtConcurrentImages: 0, oomMode: 'death', restartDelayMs: 10_000 });
    const pdf = join(p.dir, 'during-outage.pdf');
    writeFileSync(pdf, numberedPdf(2, 31));
    const [docId] = acceptedIds(await p.enqueue([pdf]));
    const down = async () => {
      const beat = await p.redis.hget(`${p.config.prefix}:workers`, p.config.workerName);
      return beat !== null && (JSON.parse(beat) as { engineDown: boolean }).engineDown;
    };
    for (let i = 0; i < 300 && !(await down()); i++) await new Promise((r) => setTimeout(r, 100));
    expect(await down()).toBe(true);
    const r = await runCli(['status'], env);
    p.engine.setFaults({ oomAtConcurrentImages: null });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^workers: 1, 1 not taking work$/m);
    expect(r.stdout).toMatch(new RegExp(`^worker ${p.config.workerName}: its engine http://127\\.0\\.0\\.1:\\d+ is down: its units wait for it`, 'm'));
    const json = await runCli(['status', '--json'], env);
    const workers = json.stdout.trim().split('\n').map((l) => JSON.parse(l) as { workers?: Array<{ engine_down: boolean }> }).find((o) => o.workers)!.workers!;
    expect(workers[0]!.engine_down).toBe(true);
    await p.wait([docId!], 90_000);
  }, 120_000);

  it('ends quietly when its reader has gone (status | head -1)', async () => {
    const child = spawn(BIN, ['status'], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    // The reader is gone before the first line: every write meets a closed pipe (EPIPE).
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(stderr).toBe('');
    expect(code).toBe(0);
  }, 30_000);
});
