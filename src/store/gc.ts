/**
 * The collector (`docbatch gc`, and the writer every hour): what retention leaves behind.
 *
 * Written documents' records expire by themselves (EXPIRE, RETENTION_DAYS after writing) and
 * their results left Redis when they were written. This removes what points at expired records
 * (the document index, output names, feeding rounds, worker heartbeats gone quiet), the results
 * archives of expired documents, blobs no live document uses (older than the retention and not
 * pinned by a producer: src/store/blob-pins.ts), and temporary files of crashed producers. Safe
 * to run at any time and from any machine, while producers enqueue. The store is walked through
 * the BlobStore interface, so a folder and an s3:// store (list + delete) are collected alike.
 *
 * Two steps: `snapshot` reads the document index (which documents are live, which blobs they
 * use, which ids expired), `sweep` removes what the snapshot says nobody uses, each removal
 * checked again when it is made (a document registered since keeps all it needs). `collect` is
 * both.
 */
import type { Logger } from '../observe/log.ts';
import { BlobPins } from './blob-pins.ts';
import type { BlobStore } from './blobs.ts';
import type { DocStore } from './docs.ts';
import type { Feeder } from './feed.ts';
import type { DocMeta } from './types.ts';

export interface GcReport {
  /** Ids in the document index whose record had expired. */
  documents: number;
  names: number;
  feedEntries: number;
  heartbeats: number;
  archives: number;
  blobs: number;
  blobBytes: number;
  temporaries: number;
}

export interface GcOptions {
  /** Blobs unused this long (by mtime) and temporaries older than a day go. */
  retentionMs: number;
  dryRun?: boolean;
  now?: number;
}

export interface GcParts {
  store: DocStore;
  blobs: BlobStore;
  feeder: Feeder;
  log: Logger;
}

/** What the document index said when gc read it. */
export interface GcSnapshot {
  /** Documents whose record existed. */
  live: Set<string>;
  /** Blobs those records name (input, chunk index, task). */
  liveBlobs: Set<string>;
  /** Ids in the index whose record had expired. */
  gone: string[];
}

export async function collect(parts: GcParts, options: GcOptions): Promise<GcReport> {
  return sweep(parts, await snapshot(parts.store), options);
}

/** Step 1: the live documents and the blobs they use, and the ids whose record expired. */
export async function snapshot(store: DocStore): Promise<GcSnapshot> {
  const redis = store.redis;
  const out: GcSnapshot = { live: new Set(), liveBlobs: new Set(), gone: [] };
  let cursor = '0';
  do {
    const [next, flat] = await redis.zscan(store.docsKey, cursor, 'COUNT', 1000);
    cursor = next;
    const ids = flat.filter((_, i) => i % 2 === 0);
    if (ids.length === 0) continue;
    const pipeline = redis.pipeline();
    for (const id of ids) pipeline.hget(store.docKey(id), 'meta');
    const metas = (await pipeline.exec()) ?? [];
    ids.forEach((id, i) => {
      const raw = metas[i]?.[1] as string | null;
      if (!raw) {
        out.gone.push(id);
        return;
      }
      out.live.add(id);
      const meta = JSON.parse(raw) as DocMeta;
      out.liveBlobs.add(meta.blob);
      if (meta.index) out.liveBlobs.add(meta.index);
      if (meta.task?.blob) out.liveBlobs.add(meta.task.blob);
    });
  } while (cursor !== '0');
  return out;
}

/**
 * KEYS: docs zset, active zset. ARGV: prefix, ids. Drops from both the ids that still have no
 * record (a producer may have registered one since gc read the index). Returns how many.
 */
const FORGET_DOCS_LUA = `
local n = 0
for i = 2, #ARGV do
  if redis.call('EXISTS', ARGV[1] .. ':doc:' .. ARGV[i]) == 0 then
    redis.call('ZREM', KEYS[1], ARGV[i])
    redis.call('ZREM', KEYS[2], ARGV[i])
    n = n + 1
  end
end
return n`;

/**
 * KEYS: names hash. ARGV: prefix, then field, doc id pairs. Deletes a field only if it still
 * names that document and the document has neither a record nor a claim in progress. Returns how many.
 */
const FORGET_NAMES_LUA = `
local n = 0
for i = 2, #ARGV, 2 do
  local doc = ARGV[1] .. ':doc:' .. ARGV[i + 1]
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] and redis.call('EXISTS', doc, doc .. ':claim') == 0 then
    redis.call('HDEL', KEYS[1], ARGV[i])
    n = n + 1
  end
end
return n`;

/** KEYS: a round or backlog zset. ARGV: prefix, ids. Removes the ids that still have no record. */
const LEAVE_ROUND_LUA = `
local n = 0
for i = 2, #ARGV do
  if redis.call('EXISTS', ARGV[1] .. ':doc:' .. ARGV[i]) == 0 then
    n = n + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return n`;

/**
 * Steps 2 to 7: removes what `snap` says no live document uses. The snapshot only proposes: each
 * removal is checked again at the moment it is made, in one script (or, for the blob store, the
 * record is looked up right before the delete, and blobs go through BlobPins), so a document
 * registered since the snapshot, or being registered, keeps everything it needs.
 */
export async function sweep(parts: GcParts, snap: GcSnapshot, options: GcOptions): Promise<GcReport> {
  const { store, blobs, feeder, log } = parts;
  const now = options.now ?? Date.now();
  const dry = options.dryRun === true;
  const report: GcReport = { documents: 0, names: 0, feedEntries: 0, heartbeats: 0, archives: 0, blobs: 0, blobBytes: 0, temporaries: 0 };
  const redis = store.redis;
  const { live, liveBlobs } = snap;
  const pins = new BlobPins(redis, store.prefix);

  // The document index: drop ids whose record expired.
  for (let i = 0; i < snap.gone.length; i += 1000) {
    const gone = snap.gone.slice(i, i + 1000);
    if (dry) report.documents += gone.length;
    else report.documents += Number(await redis.eval(FORGET_DOCS_LUA, 2, store.docsKey, store.activeKey, store.prefix, ...gone));
  }

  // Output names of documents that are gone.
  let cursor = '0';
  do {
    const [next, flat] = await redis.hscan(store.namesKey, cursor, 'COUNT', 1000);
    cursor = next;
    const dead: string[] = [];
    for (let i = 0; i < flat.length; i += 2) if (!live.has(flat[i + 1]!)) dead.push(flat[i]!, flat[i + 1]!);
    if (dead.length > 0) {
      if (dry) report.names += dead.length / 2;
      else report.names += Number(await redis.eval(FORGET_NAMES_LUA, 1, store.namesKey, store.prefix, ...dead));
    }
  } while (cursor !== '0');

  // Feeding rounds holding documents that are gone.
  for (const queue of await store.queues()) {
    for (const key of [feeder.feedKey(queue), feeder.backlogKey(queue)]) {
      const members = await redis.zrange(key, '0', '-1');
      const dead = members.filter((id) => !live.has(id));
      for (let i = 0; i < dead.length; i += 1000) {
        const slice = dead.slice(i, i + 1000);
        if (dry) report.feedEntries += slice.length;
        else report.feedEntries += Number(await redis.eval(LEAVE_ROUND_LUA, 1, key, store.prefix, ...slice));
      }
    }
  }

  // Heartbeats of workers and writers silent for an hour.
  for (const heartbeatsKey of [`${store.prefix}:workers`, `${store.prefix}:writers`]) {
    const beats = await redis.hgetall(heartbeatsKey);
    const quiet = Object.entries(beats).filter(([, v]) => now - ((JSON.parse(v) as { at?: number }).at ?? 0) > 3_600_000).map(([k]) => k);
    if (quiet.length > 0) {
      report.heartbeats += quiet.length;
      if (!dry) await redis.hdel(heartbeatsKey, ...quiet);
    }
  }

  // Results archives of documents that are gone (`results/<docId>/<gen>.jsonl`), each checked
  // again right before it goes: a record registered since has its archive written only once all
  // its units have run, long after this one request.
  const deadArchives = new Set<string>();
  for await (const key of blobs.namedKeys('results/')) {
    const id = key.split('/')[1];
    if (id === undefined || live.has(id)) continue;
    if (dry) {
      deadArchives.add(id);
      continue;
    }
    if ((await redis.exists(store.docKey(id))) === 1) continue;
    await blobs.deleteNamed(key);
    deadArchives.add(id);
  }
  report.archives = deadArchives.size;

  // Blobs no live document uses, unused for the retention, and not pinned by a producer (which
  // pins before it looks a blob up, and waits while gc deletes one); temporaries older than a day.
  const unused: Array<{ sha256: string; size: number }> = [];
  for await (const blob of blobs.blobs()) {
    if (liveBlobs.has(blob.sha256) || now - blob.modifiedMs < options.retentionMs) continue;
    unused.push(blob);
  }
  for (const blob of unused) {
    if (!dry && !(await pins.deleteDoomed(blob.sha256, () => blobs.deleteBlob(blob.sha256)))) continue;
    report.blobs++;
    report.blobBytes += blob.size;
  }
  if (!dry) await pins.prune();
  report.temporaries = await blobs.sweepTemporaries(86_400_000, { now, dryRun: dry });
  log.info({ ...report, dryRun: dry }, 'collected what retention left behind');
  return report;
}
