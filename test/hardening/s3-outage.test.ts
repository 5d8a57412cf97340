/**
 * An object store that stops answering mid-run (BLOB_DIR on s3://, behind a proxy that answers
 * every request 503 SlowDown for a while): once the SDK's retries are spent the worker's reads
 * fail with BLOB_STORE_UNAVAILABLE, an environment fault: the worker hands its units back with no
 * attempt used, stops taking work and reports why; when the store answers again it resumes, and
 * the export is written whole with no unit failed.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { flakyProxy, startS3Server, useS3Env, type FlakyProxy, type S3Server } from '../helpers/s3.ts';
import { until } from '../helpers/until.ts';

/** A JSONL export of 30 conversations, one chunk each. */
const EXPORT_LINES = Array.from({ length: 30 }, (_, i) =>
  JSON.stringify({ id: `c${i}`, title: `Conversation ${i}`, messages: [{ role: 'user', content: `Question ${i}: what happened in chapter ${i}?` }, { role: 'assistant', content: `In chapter ${i} the story moves on. `.repeat(5) }] }),
).join('\n');

let s3: S3Server;
let proxy: FlakyProxy;
let p: Pipeline | undefined;
let dir: string;
let restoreEnv: () => void;

beforeAll(async () => {
  s3 = await startS3Server(['store']);
  proxy = await flakyProxy(s3.endpoint);
  restoreEnv = useS3Env({ ...s3.env, AWS_ENDPOINT_URL: proxy.endpoint });
  dir = await mkdtemp(join(tmpdir(), 'docbatch-s3outage-'));
});

afterAll(async () => {
  proxy?.outage(null);
  await p?.stop();
  restoreEnv?.();
  await proxy?.close();
  await s3?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('the object store goes away mid-run', () => {
  it('the worker hands its units back and waits; when the store is back every chunk is done, none failed', async () => {
    p = await startPipeline({
      file: import.meta.filename,
      emulator: { speed: 2 },
      config: { blobDir: 's3://store/blobs', outDir: join(dir, 'out'), cacheDir: join(dir, 'cache'), s3ForcePathStyle: true, s3MaxAttempts: 2, batchSize: 2, initialInFlight: 2, maxInFlight: 2 },
    });
    const file = join(dir, 'chats.jsonl');
    await writeFile(file, `${EXPORT_LINES}\n`);
    const ids = acceptedIds(await p.enqueue([file]));
    const units = (await p.store.get(ids[0]!))!.units;
    expect(units).toBe(30);
    await until('a few chunks done', async () => ((await p!.store.get(ids[0]!))?.done ?? 0) >= 3);

    proxy.outage({ status: 503, code: 'SlowDown' });
    await until('the worker to stop for its store', () => p!.worker!.unhealthy !== null);
    expect(p.worker!.unhealthy?.code).toBe('BLOB_STORE_UNAVAILABLE');
    expect(p.worker!.pauseReasons).toContain('environment');
    const during = (await p.store.get(ids[0]!))!;
    expect(during.failed).toBe(0);

    proxy.outage(null);
    const [done] = await p.wait(ids, 120_000);
    expect(done!.record).toMatchObject({ state: 'written', done: units, failed: 0 });
    expect(p.worker!.unhealthy).toBeNull();
    expect(proxy.stats().faulted).toBeGreaterThan(0);
  }, 180_000);
});
