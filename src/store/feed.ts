/**
 * The fair feeder: documents wait per infer queue, and their units enter BullMQ's wait list only
 * as workers need them. Each feed takes units round-robin across the documents of the round
 * (`{p}:feed:{queue}`, at most FEED_DOCUMENTS of them, highest priority class first, a few units
 * per document per turn); the others wait in the backlog (`{p}:feed:{queue}:backlog`, oldest first
 * within a class) and enter as documents of the round are fully fed. So documents enqueued
 * together progress together, `enqueue --priority` goes first (a document of a higher class enters
 * the round at once), and the answers held in Redis are bounded by the documents of the round, not
 * by everything queued. Redis holds a cursor per waiting document, not a job per waiting unit;
 * the wait list stays near FEED_DEPTH, so what waits is counted by `backlog()` (what the GPU
 * pool's autoscaler reads, through the dashboard: src/observe/backlog.ts).
 *
 * Anyone may feed (a producer after enqueueing, every worker as its queue runs low, the writer on
 * its timer); a lock per queue keeps feeds one at a time. It lives FEED_LOCK_MS and is renewed
 * while its feed runs, so a feeder killed holding it stops that queue's feeding for seconds (it
 * was 30 s). Should a feeder stall past it and a second one feed meanwhile, no harm follows: a
 * feed's taking of units is one Lua step, so the two take different units, and job ids deduplicate;
 * the wait list only fills past FEED_DEPTH for a moment. A feeder that dies between taking
 * units and adding their jobs leaves those units unqueued: the reconciler sees a document that
 * stopped with units that have neither a result nor a job, and puts it back in the round
 * (settled units are skipped; a unit whose job still exists is deduplicated by its job id).
 * Cost: O(units fed × log documents waiting) per feed, whatever the number of documents.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { JobsOptions } from 'bullmq';
import { unitJobId, type UnitJobData, type UnitJobName } from '../../queues/contracts.ts';
import type { TypedQueue } from '../../queues/connect.ts';
import { waitListKey } from '../../queues/routes.ts';
import { FEED_ADD_LUA, FEED_COUNT_LUA, FEED_LUA } from './scripts.ts';

interface FeedingRedis extends Redis {
  docbatchFeed(feedKey: string, turnKey: string, backlogKey: string, ...args: Array<string | number>): Promise<string[]>;
  docbatchFeedAdd(feedKey: string, turnKey: string, docKey: string, backlogKey: string, ...args: Array<string | number>): Promise<number>;
  docbatchFeedCount(key: string, prefix: string, after: string, count: number): Promise<[number, number, string]>;
  docbatchFeedRelease(lockKey: string, token: string): Promise<number>;
  docbatchFeedRenew(lockKey: string, token: string, ttlMs: number): Promise<number>;
}

/** What a queue holds that no worker has taken yet (Feeder.backlog). */
export interface QueueBacklog {
  /** Jobs in BullMQ's wait list. */
  jobs: number;
  /** Units of documents in the round and its backlog not yet made jobs (settled ones left out). */
  unfed: number;
  /** Documents in the round and its backlog. */
  documents: number;
  /** `unfed` stopped counting at the cap: there are at least this many. */
  capped: boolean;
}

export interface FeederOptions {
  /** Units one document gives per turn. @defaultValue 4 */
  slice?: number;
  /** Units looked at per feed (settled ones are skipped). @defaultValue 20_000 */
  maxScan?: number;
  /** Documents fed round-robin at once per queue (FEED_DOCUMENTS); the rest wait in the backlog. @defaultValue 64 */
  documents?: number;
}

/** Feeder.backlog stops counting here: a pool of 100 pods at 1,000 units each. */
export const BACKLOG_CAP_UNITS = 100_000;

/** How long the feed lock of a queue lives unless its holder renews it (every third of it). */
export const FEED_LOCK_MS = 5000;

const RELEASE_LUA = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;
const RENEW_LUA = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`;

export class Feeder {
  private readonly redis: FeedingRedis;
  private readonly prefix: string;
  private readonly queue: (name: string) => TypedQueue<'infer'>;
  private readonly slice: number;
  private readonly maxScan: number;
  private readonly documents: number;

  constructor(redis: Redis, prefix: string, queue: (name: string) => TypedQueue<'infer'>, options: FeederOptions = {}) {
    this.redis = redis as FeedingRedis;
    this.prefix = prefix;
    this.queue = queue;
    this.slice = options.slice ?? 4;
    this.maxScan = options.maxScan ?? 20_000;
    this.documents = options.documents ?? 64;
    if (!('docbatchFeed' in redis)) {
      redis.defineCommand('docbatchFeed', { numberOfKeys: 3, lua: FEED_LUA });
      redis.defineCommand('docbatchFeedAdd', { numberOfKeys: 4, lua: FEED_ADD_LUA });
      redis.defineCommand('docbatchFeedRelease', { numberOfKeys: 1, lua: RELEASE_LUA });
      redis.defineCommand('docbatchFeedCount', { numberOfKeys: 1, lua: FEED_COUNT_LUA });
      redis.defineCommand('docbatchFeedRenew', { numberOfKeys: 1, lua: RENEW_LUA });
    }
  }

  /** The round: documents being fed. */
  feedKey(queue: string): string {
    return `${this.prefix}:feed:${queue}`;
  }
  /** Documents waiting to enter the round. */
  backlogKey(queue: string): string {
    return `${this.prefix}:feed:${queue}:backlog`;
  }
  private turnKey(queue: string): string {
    return `${this.prefix}:feed:${queue}:turn`;
  }

  /** Puts a document in its queue's round (again: `restart` looks at every unit from the first). */
  async add(docId: string, queue: string, restart: boolean): Promise<void> {
    await this.redis.docbatchFeedAdd(this.feedKey(queue), this.turnKey(queue), `${this.prefix}:doc:${docId}`, this.backlogKey(queue), docId, restart ? 1 : 0);
  }

  /** Documents with units still to feed in a queue (the round and its backlog). */
  async waitingDocs(queue: string): Promise<number> {
    const [round, backlog] = await Promise.all([this.redis.zcard(this.feedKey(queue)), this.redis.zcard(this.backlogKey(queue))]);
    return round + backlog;
  }

  /** Whether a document still has units to feed (in its queue's round or backlog). */
  async inRound(docId: string, queue: string): Promise<boolean> {
    const [round, backlog] = await Promise.all([this.redis.zscore(this.feedKey(queue), docId), this.redis.zscore(this.backlogKey(queue), docId)]);
    return round !== null || backlog !== null;
  }

  /** Jobs in BullMQ's wait list of a queue. */
  waiting(queue: string): Promise<number> {
    return this.redis.llen(waitListKey(this.prefix, queue));
  }

  /**
   * Units waiting in a queue: BullMQ's wait list (at most about FEED_DEPTH) and the units not yet
   * fed. What an autoscaler must see: the wait list alone never shows more than FEED_DEPTH.
   * Counted 500 documents per script call (no long stop of Redis), paged by score, stopping once
   * `capUnits` are counted (an autoscaler needs no more than its target times its most pods). The
   * round and the backlog are read one after the other: a document moving from one to the other
   * meanwhile may count twice or not at all. A gauge, not a ledger.
   */
  async backlog(queue: string, capUnits = BACKLOG_CAP_UNITS): Promise<QueueBacklog> {
    const chunk = 500;
    let unfed = 0;
    let documents = 0;
    let capped = false;
    for (const key of [this.feedKey(queue), this.backlogKey(queue)]) {
      let after = '';
      while (!capped) {
        const [units, seen, last] = await this.redis.docbatchFeedCount(key, this.prefix, after, chunk);
        unfed += units;
        documents += seen;
        capped = unfed >= capUnits;
        if (seen < chunk) break;
        after = last;
      }
    }
    return { jobs: await this.waiting(queue), unfed, documents, capped };
  }

  /** Fills the queue's wait list up to `depth` jobs. Returns the units added (0 when another feeder holds the lock). */
  async topUp(queue: string, depth: number): Promise<number> {
    const want = depth - (await this.waiting(queue));
    return want > 0 ? this.feed(queue, want) : 0;
  }

  /** Moves up to `want` units of the queue's round into BullMQ. */
  async feed(queue: string, want: number): Promise<number> {
    const lockKey = `${this.feedKey(queue)}:lock`;
    const token = randomBytes(8).toString('hex');
    if ((await this.redis.set(lockKey, token, 'PX', FEED_LOCK_MS, 'NX')) !== 'OK') return 0;
    // A renewal that finds the lock gone (this process stalled past it) changes nothing: see above.
    const renew = setInterval(() => void this.redis.docbatchFeedRenew(lockKey, token, FEED_LOCK_MS).catch(() => 0), FEED_LOCK_MS / 3);
    renew.unref();
    try {
      let added = 0;
      while (added < want) {
        const batch = Math.min(1000, want - added);
        const taken = await this.redis.docbatchFeed(this.feedKey(queue), this.turnKey(queue), this.backlogKey(queue), this.prefix, batch, this.slice, this.maxScan, this.documents);
        if (taken.length === 0) break;
        const jobs = taken.map((entry) => {
          const [docId, gen, unit, name] = entry.split('|') as [string, string, string, string];
          const data: UnitJobData = { docId, gen: Number(gen), unit: Number(unit) };
          return { name: name as UnitJobName, data, opts: { jobId: unitJobId(docId, data.gen, data.unit) } satisfies JobsOptions };
        });
        await this.queue(queue).addBulk(jobs);
        added += jobs.length;
        if (taken.length < batch) break;
      }
      return added;
    } finally {
      clearInterval(renew);
      await this.redis.docbatchFeedRelease(lockKey, token).catch(() => 0);
    }
  }
}
