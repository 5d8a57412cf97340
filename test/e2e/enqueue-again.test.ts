/**
 * Enqueueing written documents again (src/ingest/enqueue.ts) when the producer cannot look at
 * the outputs as files: OUT_DIR on a real S3-protocol server (s3rver), and a writer's folder on a
 * disk the producer does not see. The real `docbatch enqueue` says `done` (nothing sent, nothing
 * written, no failure reopened) while the outputs are there or cannot be checked from here; once
 * an output is really missing it writes the document again from its archive without running its
 * failed units again.
 */
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { runCli } from '../helpers/cli.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { startS3Server, useS3Env, type S3Server } from '../helpers/s3.ts';

let s3: S3Server;
let restoreEnv: () => void;
let scratch: string;
let p: Pipeline | undefined;

beforeAll(async () => {
  s3 = await startS3Server(['out']);
  restoreEnv = useS3Env(s3.env);
  scratch = await mkdtemp(join(tmpdir(), 'docbatch-again-'));
});

afterEach(async () => {
  await p?.stop();
  p = undefined;
});

afterAll(async () => {
  restoreEnv?.();
  await s3?.close();
  await rm(scratch, { recursive: true, force: true });
});

interface Outcome {
  docId: string;
  outcome: string;
}

/** `docbatch enqueue FILE --json` as a producer with its own environment; its one run's outcome. */
async function enqueueAgain(p: Pipeline, file: string, env: Record<string, string>): Promise<Outcome> {
  const run = await runCli(['enqueue', file, '--json'], { REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix, BLOB_DIR: p.config.blobDir, LOG_FORMAT: 'json', ...env }, { timeoutMs: 60_000 });
  expect(run.stderr).not.toMatch(/docbatch:/);
  expect(run.code).toBe(0);
  return JSON.parse(run.stdout.trim().split('\n').pop()!) as Outcome;
}

describe('enqueueing written documents again', () => {
  it('OUT_DIR on S3: done while the outputs are there; an output deleted: written again, its failed page not sent again', async () => {
    p = await startPipeline({ file: import.meta.filename, config: { outDir: 's3://out/run', s3ForcePathStyle: true, cacheDir: join(scratch, 'cache') } });
    p.engine.setFaults({ reject: { matchText: ['Page 2 of 3'] } });
    const pdf = join(p.dir, 'paper.pdf');
    await writeFile(pdf, numberedPdf(3));
    const [docId] = acceptedIds(await p.enqueue([pdf]));
    const [first] = await p.wait([docId!]);
    expect(first!.record).toMatchObject({ state: 'written', done: 2, failed: 1 });
    expect(first!.record.files).toContain('s3://out/run/paper.md');
    const sent = p.engine.stats().requests;
    const env = { ...s3.env, OUT_DIR: 's3://out/run' };

    // The same file again: done. Nothing resent, nothing rewritten, the failure not reopened.
    expect(await enqueueAgain(p, pdf, env)).toEqual(expect.objectContaining({ docId, outcome: 'done' }));
    const after = (await p.store.get(docId!))!;
    expect(after).toMatchObject({ state: 'written', done: 2, failed: 1, writtenAt: first!.record.writtenAt });
    expect(await p.redis.zscore(p.store.activeKey, docId!)).toBeNull();

    // An output deleted: written again from the archive; the failed page stays failed (the engine
    // still rejects it, so sending it again would show as one more request).
    await s3.client.send(new DeleteObjectCommand({ Bucket: 'out', Key: 'run/paper.md' }));
    expect(await enqueueAgain(p, pdf, env)).toEqual(expect.objectContaining({ docId, outcome: 'rewrite' }));
    for (let i = 0; i < 400 && (await p.store.get(docId!))!.writtenAt === first!.record.writtenAt; i++) await new Promise((r) => setTimeout(r, 25));
    const [rewritten] = await p.wait([docId!]);
    expect(rewritten!.record).toMatchObject({ state: 'written', done: 2, failed: 1 });
    expect(rewritten!.record.writtenAt).not.toBe(first!.record.writtenAt);
    expect((await s3.get('out', 'run/paper.md'))?.toString()).toMatch(/<!-- page 2 failed: BAD_REQUEST: /);
    expect(p.engine.stats().requests).toBe(sent);
  }, 120_000);

  it("outputs on a disk the producer does not see: done, not written again", async () => {
    const writerOut = join(scratch, 'writer-out');
    p = await startPipeline({ file: import.meta.filename, config: { outDir: writerOut } });
    const pdf = join(p.dir, 'memo.pdf');
    await writeFile(pdf, numberedPdf(2));
    const [docId] = acceptedIds(await p.enqueue([pdf]));
    const [first] = await p.wait([docId!]);
    expect(first!.record.files).toContain(join(writerOut, 'memo.md'));
    const sent = p.engine.stats().requests;
    // The writer's disk is elsewhere: its paths do not exist on the producer's machine.
    await rename(writerOut, join(scratch, 'on-the-writer-machine'));

    expect(await enqueueAgain(p, pdf, { OUT_DIR: join(scratch, 'producer-out') })).toEqual(expect.objectContaining({ docId, outcome: 'done' }));
    // No rewrite was scheduled: the record stays written and no output appeared anywhere here.
    expect(await p.store.get(docId!)).toMatchObject({ state: 'written', writtenAt: first!.record.writtenAt });
    expect(await p.redis.zscore(p.store.activeKey, docId!)).toBeNull();
    expect(existsSync(writerOut)).toBe(false);
    expect(p.engine.stats().requests).toBe(sent);
  }, 120_000);
});
