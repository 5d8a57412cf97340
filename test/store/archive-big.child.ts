/**
 * Run by archive-big.test.ts in a child process whose heap is capped far below the archive it
 * makes (`--max-old-space-size`): fills a generation's results in Redis, archives them into the
 * blob store, drops them from Redis, restores them from the archive and looks up the last unit
 * in it. Prints one JSON line with what it saw. Code that builds one string (or one Buffer turned
 * into one string) the size of the archive dies here of heap exhaustion, as it dies of V8's
 * string limit (~512 MiB) on a real document of some 300,000 chunks.
 *
 * Environment: REDIS_URL, PREFIX, BLOB_DIR (a folder or s3://), UNITS, RESULT_BYTES; for s3://
 * the AWS_* / S3_* variables of the test's s3rver.
 */
import { Redis } from 'ioredis';
import { archiveKey, archivedResult, archiveResults, restoreArchived } from '../../src/store/archive.ts';
import { DocStore } from '../../src/store/docs.ts';
import { openBlobStore, s3ClientFor } from '../../src/store/storage.ts';
import type { UnitResult } from '../../src/store/types.ts';

const env = process.env;
const units = Number(env.UNITS);
const resultBytes = Number(env.RESULT_BYTES);
const docId = 'dbig';
const gen = 1;

/** Unit `u`'s result: its text unique to it, about `resultBytes` long. */
function resultOf(u: number): UnitResult {
  const tag = `unit ${u} `;
  return { ok: true, text: tag.repeat(Math.ceil(resultBytes / tag.length)).slice(0, resultBytes), promptTokens: 1, completionTokens: u, engineMs: 1, latencyMs: 1, model: 'm', finishReason: 'stop' };
}

const redis = new Redis(env.REDIS_URL!, { maxRetriesPerRequest: 1 });
const store = new DocStore(redis, env.PREFIX!);
const settings = { blobDir: env.BLOB_DIR!, cacheDir: env.CACHE_DIR!, cacheMaxBytes: 1 << 30, s3ForcePathStyle: true, s3MaxAttempts: 3, s3PartSizeMb: 5 };
const s3 = env.BLOB_DIR!.startsWith('s3://') ? s3ClientFor(settings) : null;
const blobs = openBlobStore(settings, () => s3!);
let peakHeap = 0;
const sample = setInterval(() => (peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed)), 20);
try {
  await blobs.markStore();
  await redis.hset(store.docKey(docId), { gen, reopens: 0, state: 'written' });
  for (let start = 0; start < units; start += 500) {
    const batch: Record<string, string> = {};
    for (let u = start; u < Math.min(units, start + 500); u++) batch[String(u)] = JSON.stringify(resultOf(u));
    await redis.hset(store.unitsKey(docId, gen), batch);
  }
  const archived = await archiveResults(store, blobs, docId, gen, units);
  await redis.del(store.unitsKey(docId, gen));
  const restored = await restoreArchived(store, blobs, docId, gen);
  const inRedis = await redis.hlen(store.unitsKey(docId, gen));
  const spot = [0, Math.floor(units / 2), units - 1];
  const sameAsWritten = (await redis.hmget(store.unitsKey(docId, gen), ...spot.map(String))).every((raw, i) => raw === JSON.stringify(resultOf(spot[i]!)));
  const last = await archivedResult(blobs, docId, gen, units - 1);
  const missing = await archivedResult(blobs, docId, gen, units + 5);
  peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
  process.stdout.write(
    `${JSON.stringify({ archived, restored, inRedis, sameAsWritten, lastFound: JSON.stringify(last) === JSON.stringify(resultOf(units - 1)), missing, key: archiveKey(docId, gen), peakHeapMb: Math.round(peakHeap / 2 ** 20) })}\n`,
  );
} finally {
  clearInterval(sample);
  redis.disconnect();
  s3?.destroy();
}
