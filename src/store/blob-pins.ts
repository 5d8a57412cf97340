/**
 * What keeps gc and producers off each other's blobs. A producer stores a blob (or finds it
 * already stored: content-addressed, never rewritten) some time before it registers the record
 * that names it; gc deletes blobs no record names. Between the two, only Redis knows:
 *
 *   {p}:blob-pins        zset    blob sha256 → when a producer last stored or found it (Redis
 *                                TIME, ms); gc leaves a blob pinned within PIN_MS alone
 *   {p}:blob-gc:{sha}    string  gc is deleting this blob (its token), for at most DOOM_MS
 *
 * A producer pins BEFORE it looks the blob up, and waits while gc is deleting it (then finds it
 * gone and stores it again). gc dooms a blob in one script that first checks the pin, then
 * deletes it and lifts the doom. So for any record that exists when gc dooms a blob, either gc's
 * snapshot of the index saw the record (its blobs are not candidates), or its producer pinned the
 * blob before registering it (gc skips it); and a producer that pins after the doom waits for
 * the delete. Pins older than PIN_MS are pruned by gc.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { BlobGuard } from './blobs.ts';

/** How long a producer's pin keeps a blob from gc (time to register the record that names it). */
export const PIN_MS = 24 * 3_600_000;
/**
 * How long a doom lasts unless gc renews it (every third of it, while the delete runs): a
 * producer waits at most this long after a gc that died mid-delete. (It was ten minutes, not
 * renewed: a gc killed between dooming and deleting held up every producer of that content that
 * long, saying nothing.)
 */
export const DOOM_MS = 15_000;

const NOW = `local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/** KEYS pins, doom key; ARGV sha. Pins (now), returns the doom's PTTL (-2: none). */
const PIN_LUA = `${NOW}
redis.call('ZADD', KEYS[1], now, ARGV[1])
return redis.call('PTTL', KEYS[2])`;

/** KEYS pins, doom key; ARGV sha, pin ms, doom ms, token. 1: doomed; 0: pinned, left alone. */
const DOOM_LUA = `${NOW}
local pinned = redis.call('ZSCORE', KEYS[1], ARGV[1])
if pinned and tonumber(pinned) > now - tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[3])
return 1`;

/** KEYS doom key; ARGV token, doom ms. Extends gc's own doom; 0 when it is gone. */
const RENEW_LUA = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`;

/** KEYS doom key; ARGV token. */
const RELEASE_LUA = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/** KEYS pins; ARGV pin ms. Removes pins older than that; returns how many. */
const PRUNE_LUA = `${NOW}
return redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - tonumber(ARGV[1])))`;

interface PinningRedis extends Redis {
  docbatchBlobPin(pins: string, doom: string, sha256: string): Promise<number>;
  docbatchBlobDoom(pins: string, doom: string, sha256: string, pinMs: number, doomMs: number, token: string): Promise<number>;
  docbatchBlobRelease(doom: string, token: string): Promise<number>;
  docbatchBlobRenew(doom: string, token: string, doomMs: number): Promise<number>;
  docbatchBlobPrune(pins: string, pinMs: number): Promise<number>;
}

export interface BlobPinsOptions {
  /** @defaultValue PIN_MS */
  pinMs?: number;
  /** @defaultValue DOOM_MS */
  doomMs?: number;
  /** How often a producer looks whether gc is done deleting a blob. @defaultValue 100 */
  pollMs?: number;
}

export class BlobPins implements BlobGuard {
  private readonly redis: PinningRedis;
  private readonly prefix: string;
  private readonly pinMs: number;
  private readonly doomMs: number;
  private readonly pollMs: number;
  private readonly token = randomBytes(8).toString('hex');

  constructor(redis: Redis, prefix: string, options: BlobPinsOptions = {}) {
    this.redis = redis as PinningRedis;
    this.prefix = prefix;
    this.pinMs = options.pinMs ?? PIN_MS;
    this.doomMs = options.doomMs ?? DOOM_MS;
    this.pollMs = options.pollMs ?? 100;
    if (!('docbatchBlobPin' in redis)) {
      redis.defineCommand('docbatchBlobPin', { numberOfKeys: 2, lua: PIN_LUA });
      redis.defineCommand('docbatchBlobDoom', { numberOfKeys: 2, lua: DOOM_LUA });
      redis.defineCommand('docbatchBlobRelease', { numberOfKeys: 1, lua: RELEASE_LUA });
      redis.defineCommand('docbatchBlobRenew', { numberOfKeys: 1, lua: RENEW_LUA });
      redis.defineCommand('docbatchBlobPrune', { numberOfKeys: 1, lua: PRUNE_LUA });
    }
  }

  get pinsKey(): string {
    return `${this.prefix}:blob-pins`;
  }
  doomKey(sha256: string): string {
    return `${this.prefix}:blob-gc:${sha256}`;
  }

  /** Producers: before looking a blob up or storing it. Returns once gc is not deleting it. */
  async pin(sha256: string): Promise<void> {
    let ttl = await this.redis.docbatchBlobPin(this.pinsKey, this.doomKey(sha256), sha256);
    const deadline = Date.now() + this.doomMs + this.pollMs;
    while (ttl !== -2 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, ttl > 0 ? Math.min(ttl, this.pollMs) : this.pollMs));
      ttl = await this.redis.pttl(this.doomKey(sha256));
    }
  }

  /** gc: marks a blob as being deleted, unless a producer pinned it. True: delete it, then `release`. */
  async doom(sha256: string): Promise<boolean> {
    return (await this.redis.docbatchBlobDoom(this.pinsKey, this.doomKey(sha256), sha256, this.pinMs, this.doomMs, this.token)) === 1;
  }

  /**
   * gc: dooms the blob (unless a producer pinned it) and runs `remove` while the doom is renewed,
   * then lifts it. False when pinned (nothing run).
   */
  async deleteDoomed(sha256: string, remove: () => Promise<void>): Promise<boolean> {
    if (!(await this.doom(sha256))) return false;
    const renew = setInterval(() => void this.redis.docbatchBlobRenew(this.doomKey(sha256), this.token, this.doomMs).catch(() => 0), Math.max(10, Math.floor(this.doomMs / 3)));
    renew.unref();
    try {
      await remove();
    } finally {
      clearInterval(renew);
      await this.release(sha256);
    }
    return true;
  }

  /** gc: the blob is deleted (or the delete failed); producers waiting on it go on. */
  async release(sha256: string): Promise<void> {
    await this.redis.docbatchBlobRelease(this.doomKey(sha256), this.token);
  }

  /** gc: forgets pins older than the pin time. Returns how many. */
  prune(): Promise<number> {
    return this.redis.docbatchBlobPrune(this.pinsKey, this.pinMs);
  }
}
