/**
 * Requests-per-minute and tokens-per-minute limits of one engine (a paid or shared endpoint),
 * shared by every worker that sends to it, through Redis. A sliding window: in any 60 seconds
 * no more than `rpm` requests and `tpm` tokens (prompt + max_tokens, counted when the request
 * leaves, as OpenAI-style endpoints reserve them) are sent, so an endpoint that counts in fixed
 * minutes never sees more than its limit. A 429 with Retry-After from the endpoint holds every
 * worker of that endpoint for as long as it says (`holdFor`).
 *
 * The endpoint counts a request when it arrives, which we cannot see: between our count and its
 * arrival lie the send and the network. So a request counts from the moment it is let through
 * until its answer came back (its time is then moved to the answer's), and it leaves our window
 * only a window after that: a request let through later cannot reach the endpoint within one
 * window of an earlier one's arrival, whatever the delays (a busy machine, a slow network).
 *
 * Units of one worker wait for the limiter in one line, first come first served: one loop asks
 * Redis for the units at the front, and Redis lets through the longest run of them that fits,
 * in order (a small request never overtakes a big one, and a burst of room is used in one round
 * trip). The worker asks before it takes a slot at the engine's gate, so a unit waiting here
 * holds no slot (`waiting` counts them: `docbatch_worker_rate_waiting`). A pass the unit never
 * used (the engine went down before the request left) is given back (`cancel`): it counts for
 * nothing. While Redis refuses for a while (away, full, loading, a replica after a failover:
 * isRedisTransient) the line waits and asks again every second (a unit in it uses no attempt,
 * and nothing is blamed on the endpoint); any other Redis failure fails the units in line with
 * INTERNAL, as Redis failures elsewhere in the worker do.
 *
 *   {p}:rate:{engine}        zset   sends of the last window: member "nonce:tokens", score the answer's
 *                                   time (while in flight: the latest it could come back)
 *   {p}:rate:{engine}:hold   string set while the endpoint asked everyone to wait (PX)
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { isRedisTransient } from '../../queues/redis-link.ts';
import { DocbatchError } from '../errors.ts';

/**
 * KEYS: the send log, the hold key. ARGV: rpm (0 = none), tpm (0 = none), window ms, the longest a
 * request may take (its provisional time is now + that, until FINISH sets it), then a nonce and
 * the tokens of each request in line, oldest first. Records the longest run of them from the
 * first that fits. A request whose entry is there already was recorded by an earlier run of this
 * call (its reply lost; ioredis sends unanswered commands again on reconnect, and the line asks
 * again with the same nonces after a Redis error): it is let through again, not counted twice
 * (its own entry would hold it back until the entry left the window: the request timeout plus
 * the window, 11 minutes by default). Returns {how many were recorded, the milliseconds to wait
 * before asking for the next (0 when all were)}.
 */
const ACQUIRE_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local hold = redis.call('PTTL', KEYS[2])
if hold > 0 then return {0, hold} end
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local longest = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local sends = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local count = #sends / 2
local used = 0
for i = 1, #sends, 2 do
  used = used + tonumber(string.match(sends[i], ':(%d+)$') or '0')
end
local recorded = 0
local wait = 0
for j = 5, #ARGV, 2 do
  local tokens = tonumber(ARGV[j + 1])
  if redis.call('ZSCORE', KEYS[1], ARGV[j] .. ':' .. tokens) then
    -- recorded by an earlier run of this very call (its reply lost, ioredis sent it again on
    -- reconnect): counted in count and used already, and let through
    recorded = recorded + 1
  else
    if rpm > 0 and count >= rpm then
      -- wait until the oldest send leaves the window (one recorded just now leaves a window from now at the soonest)
      local oldest = #sends > 0 and tonumber(sends[2]) or now
      wait = math.max(1, math.min(oldest + window - now, 1000))
      break
    end
    if tpm > 0 and used + tokens > tpm and count > 0 then
      -- wait until enough of the oldest sends leave the window
      wait = 1000
      local freed = 0
      for i = 1, #sends, 2 do
        freed = freed + tonumber(string.match(sends[i], ':(%d+)$') or '0')
        if used - freed + tokens <= tpm then
          wait = math.max(1, math.min(tonumber(sends[i + 1]) + window - now, 1000))
          break
        end
      end
      break
    end
    redis.call('ZADD', KEYS[1], now + longest, ARGV[j] .. ':' .. tokens)
    count = count + 1
    used = used + tokens
    recorded = recorded + 1
  end
end
if recorded > 0 then redis.call('PEXPIRE', KEYS[1], window * 2 + longest) end
return {recorded, wait}
`;

/**
 * KEYS: the send log. ARGV: the member, the log's time to live (ms). The request's answer is
 * back: its time becomes now. Added again if the log dropped it: a pass held at the gate longer
 * than the request timeout plus the window left the log before its request was even sent.
 */
const FINISH_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
`;

interface LimitingRedis extends Redis {
  docbatchRateAcquire(log: string, hold: string, ...args: Array<string | number>): Promise<[number, number]>;
  docbatchRateFinish(log: string, member: string, ttlMs: number): Promise<number>;
  docbatchRateLower(log: string, member: string, lowered: string): Promise<number>;
}

/**
 * An entry of the log ("nonce:tokens") replaced by one of fewer tokens, at the same time; gone
 * entries stay gone. The lowered entry there already is this very call run again (its reply lost,
 * ioredis sent it again on reconnect): done.
 */
const LOWER_LUA = `
if redis.call('ZSCORE', KEYS[1], ARGV[2]) then return 1 end
local at = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not at then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], at, ARGV[2])
return 1
`;

/** A request let through by the limiter: say when it is done with, one way or the other. */
export interface RatePass {
  /** The request's answer (or failure) is back: it counts from now until a window has passed. */
  finish(): Promise<void>;
  /** The request never left (the engine went down while it waited at the gate): it counts for nothing. */
  cancel(): Promise<void>;
  /**
   * The request will carry fewer tokens than it reserved (the model's output cap was learnt while
   * it waited at the gate): its entry counts `tokens` from now on. Only ever lowers.
   */
  lower(tokens: number): Promise<void>;
}

/** A unit in this worker's line for the limiter. */
interface InLine {
  nonce: string;
  tokens: number;
  signal: AbortSignal;
  onAbort: () => void;
  resolve: (pass: RatePass) => void;
  reject: (err: unknown) => void;
}

/** Requests of the line asked for in one round trip. */
const ASK_AT_ONCE = 64;
/** How often the line asks again while Redis is full or away. */
const REDIS_RETRY_MS = 1000;

export interface RateLimits {
  /** Requests per window; undefined: none. */
  rpm?: number;
  /** Tokens (prompt + max_tokens) per window; undefined: none. */
  tpm?: number;
  /** The window the limits count in. @defaultValue 60_000 (endpoints count per minute) */
  windowMs?: number;
  /** The longest a request may take (the request timeout). @defaultValue 600_000 */
  requestTimeoutMs?: number;
}

export class EngineRateLimiter {
  private readonly redis: LimitingRedis;
  private readonly key: string;
  private readonly limits: RateLimits;
  /** This worker's units waiting for the limiter, oldest first. */
  private readonly line: InLine[] = [];
  /** The loop asking Redis for the line runs (one at a time). */
  private asking = false;
  /** Ends the loop's wait early (the line emptied while it waited). */
  private wake: (() => void) | null = null;

  /** `engine` names the endpoint (its URL without credentials): workers sending to it share one budget. */
  constructor(redis: Redis, prefix: string, engine: string, limits: RateLimits) {
    this.redis = redis as LimitingRedis;
    this.key = `${prefix}:rate:${createHash('sha256').update(engine).digest('hex').slice(0, 16)}`;
    this.limits = limits;
    if (!('docbatchRateAcquire' in redis)) {
      redis.defineCommand('docbatchRateAcquire', { numberOfKeys: 2, lua: ACQUIRE_LUA });
      redis.defineCommand('docbatchRateFinish', { numberOfKeys: 1, lua: FINISH_LUA });
      redis.defineCommand('docbatchRateLower', { numberOfKeys: 1, lua: LOWER_LUA });
    }
  }

  get active(): boolean {
    return this.limits.rpm !== undefined || this.limits.tpm !== undefined;
  }

  /** Units of this worker waiting for the limiter (in its line, not yet let through). */
  get waiting(): number {
    return this.line.length;
  }

  /**
   * Waits, in this worker's line, until a request of `tokens` may leave, and records it. The
   * returned pass says when the request is done with.
   */
  acquire(tokens: number, signal: AbortSignal): Promise<RatePass> {
    const { tpm } = this.limits;
    if (tpm !== undefined && tokens > tpm) {
      return Promise.reject(new DocbatchError('BAD_REQUEST', `one request needs ${tokens} tokens (prompt + max_tokens), more than ENGINE_TPM ${tpm} allows in a minute`));
    }
    const aborted = () => new DocbatchError('ABORTED', 'aborted while waiting for the rate limit', { cause: signal.reason });
    if (signal.aborted) return Promise.reject(aborted());
    return new Promise<RatePass>((resolve, reject) => {
      const me: InLine = {
        nonce: randomBytes(6).toString('hex'),
        tokens: Math.max(0, Math.round(tokens)),
        signal,
        resolve,
        reject,
        onAbort: () => {
          this.leave(me);
          reject(aborted());
        },
      };
      signal.addEventListener('abort', me.onAbort, { once: true });
      this.line.push(me);
      if (!this.asking) void this.ask();
    });
  }

  /** Asks Redis for the front of the line until the line is empty. */
  private async ask(): Promise<void> {
    this.asking = true;
    try {
      while (this.line.length > 0) {
        const front = this.line.slice(0, ASK_AT_ONCE);
        const { rpm, tpm, windowMs, requestTimeoutMs } = this.limits;
        let recorded: number;
        let wait: number;
        try {
          [recorded, wait] = await this.redis.docbatchRateAcquire(this.key, `${this.key}:hold`, rpm ?? 0, tpm ?? 0, windowMs ?? 60_000, requestTimeoutMs ?? 600_000, ...front.flatMap((u) => [u.nonce, u.tokens]));
        } catch (err) {
          if (isRedisTransient(err)) {
            // Redis trouble (away, full, loading, a replica after a failover), not the endpoint's
            // nor the unit's: the line waits for Redis as a held answer does (hold.ts), and asks
            // again; a unit leaves it only by its signal (lock lost, shutdown), using no attempt.
            await this.nap(REDIS_RETRY_MS);
            continue;
          }
          // Each unit would have met the same failure asking alone: they all hear it.
          const failure = new DocbatchError('INTERNAL', `the rate limiter (ENGINE_RPM/ENGINE_TPM) could not ask Redis: ${(err as Error).message}`, { cause: err });
          for (const u of this.line.splice(0)) {
            u.signal.removeEventListener('abort', u.onAbort);
            u.reject(failure);
          }
          return;
        }
        for (const u of front.slice(0, recorded)) {
          const member = `${u.nonce}:${u.tokens}`;
          if (!this.line.includes(u)) {
            // It stopped waiting while Redis let it through: its entry counts for nothing.
            await this.redis.zrem(this.key, member).catch(() => undefined);
            continue;
          }
          this.leave(u);
          u.signal.removeEventListener('abort', u.onAbort);
          u.resolve(this.pass(u.nonce, u.tokens));
        }
        if (wait > 0 && this.line.length > 0) await this.nap(Math.min(wait, 5000));
      }
    } finally {
      this.asking = false;
    }
  }

  private leave(u: InLine): void {
    const at = this.line.indexOf(u);
    if (at >= 0) this.line.splice(at, 1);
    if (this.line.length === 0) this.wake?.();
  }

  /** Waits `ms`, or less if the line empties meanwhile. */
  private nap(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }

  /** The pass of a request the log holds as `nonce:tokens`. */
  private pass(nonce: string, reserved: number): RatePass {
    let tokens = reserved;
    let member = `${nonce}:${tokens}`;
    let done = false;
    const once = (op: () => Promise<unknown>) => async () => {
      if (done) return;
      done = true;
      await op().then(
        () => undefined,
        () => undefined,
      );
    };
    return {
      finish: once(() => this.redis.docbatchRateFinish(this.key, member, (this.limits.windowMs ?? 60_000) * 2 + (this.limits.requestTimeoutMs ?? 600_000))),
      cancel: once(() => this.redis.zrem(this.key, member)),
      lower: async (wanted: number) => {
        const lowered = Math.max(0, Math.round(wanted));
        if (done || lowered >= tokens) return;
        const next = `${nonce}:${lowered}`;
        // Best effort: a Redis that does not answer leaves the larger entry, which errs on the safe side.
        if ((await this.redis.docbatchRateLower(this.key, member, next).catch(() => 0)) === 1) {
          member = next;
          tokens = lowered;
        }
      },
    };
  }

  /** The endpoint said wait (429 Retry-After): every worker of it waits that long. */
  async holdFor(ms: number): Promise<void> {
    if (ms <= 0) return;
    const hold = `${this.key}:hold`;
    // Never shorten a longer hold another worker was given.
    if ((await this.redis.pttl(hold)) < ms) await this.redis.set(hold, '1', 'PX', Math.ceil(ms));
  }
}

