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
 *   {p}:rate:{engine}        zset   sends of the last window: member "nonce:tokens", score the answer's
 *                                   time (while in flight: the latest it could come back)
 *   {p}:rate:{engine}:hold   string set while the endpoint asked everyone to wait (PX)
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { DocbatchError } from '../errors.ts';
import { sleep } from '../timeouts.ts';

/**
 * KEYS: the send log, the hold key. ARGV: rpm (0 = none), tpm (0 = none), tokens, nonce, window ms,
 * the longest a request may take (its provisional time is now + that, until FINISH sets it).
 * Returns 0 when the send is recorded (go), else the milliseconds to wait before asking again.
 */
const ACQUIRE_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local hold = redis.call('PTTL', KEYS[2])
if hold > 0 then return hold end
local window = tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
local tokens = tonumber(ARGV[3])
local sends = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local count = #sends / 2
if rpm > 0 and count >= rpm then
  -- wait until the oldest send leaves the window
  return math.max(1, math.min(tonumber(sends[2]) + window - now, 1000))
end
if tpm > 0 then
  local used = 0
  for i = 1, #sends, 2 do
    used = used + tonumber(string.match(sends[i], ':(%d+)$') or '0')
  end
  if used + tokens > tpm and count > 0 then
    -- wait until enough of the oldest sends leave the window
    local freed = 0
    for i = 1, #sends, 2 do
      freed = freed + tonumber(string.match(sends[i], ':(%d+)$') or '0')
      if used - freed + tokens <= tpm then return math.max(1, math.min(tonumber(sends[i + 1]) + window - now, 1000)) end
    end
    return 1000
  end
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[6]), ARGV[4] .. ':' .. tokens)
redis.call('PEXPIRE', KEYS[1], window * 2 + tonumber(ARGV[6]))
return 0
`;

/** KEYS: the send log. ARGV: the member. The request's answer is back: its time becomes now. */
const FINISH_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], 'XX', now, ARGV[1])
return 1
`;

interface LimitingRedis extends Redis {
  docbatchRateAcquire(log: string, hold: string, ...args: Array<string | number>): Promise<number>;
  docbatchRateFinish(log: string, member: string): Promise<number>;
}

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

  /** `engine` names the endpoint (its URL without credentials): workers sending to it share one budget. */
  constructor(redis: Redis, prefix: string, engine: string, limits: RateLimits) {
    this.redis = redis as LimitingRedis;
    this.key = `${prefix}:rate:${createHash('sha256').update(engine).digest('hex').slice(0, 16)}`;
    this.limits = limits;
    if (!('docbatchRateAcquire' in redis)) {
      redis.defineCommand('docbatchRateAcquire', { numberOfKeys: 2, lua: ACQUIRE_LUA });
      redis.defineCommand('docbatchRateFinish', { numberOfKeys: 1, lua: FINISH_LUA });
    }
  }

  get active(): boolean {
    return this.limits.rpm !== undefined || this.limits.tpm !== undefined;
  }

  /**
   * Waits until a request of `tokens` may leave, and records it. Call the returned function when
   * its answer (or failure) is back.
   */
  async acquire(tokens: number, signal: AbortSignal): Promise<() => Promise<void>> {
    const { rpm, tpm } = this.limits;
    if (tpm !== undefined && tokens > tpm) {
      throw new DocbatchError('BAD_REQUEST', `one request needs ${tokens} tokens (prompt + max_tokens), more than ENGINE_TPM ${tpm} allows in a minute`);
    }
    const tokenCount = Math.max(0, Math.round(tokens));
    const member = `${randomBytes(6).toString('hex')}:${tokenCount}`;
    for (;;) {
      const wait = await this.redis.docbatchRateAcquire(this.key, `${this.key}:hold`, rpm ?? 0, tpm ?? 0, tokenCount, member.split(':')[0]!, this.limits.windowMs ?? 60_000, this.limits.requestTimeoutMs ?? 600_000);
      if (wait === 0) return () => this.redis.docbatchRateFinish(this.key, member).then(() => undefined, () => undefined);
      await sleep(Math.min(wait, 5000) + Math.random() * 50, signal, 'waiting for the rate limit');
    }
  }

  /** The endpoint said wait (429 Retry-After): every worker of it waits that long. */
  async holdFor(ms: number): Promise<void> {
    if (ms <= 0) return;
    const hold = `${this.key}:hold`;
    // Never shorten a longer hold another worker was given.
    if ((await this.redis.pttl(hold)) < ms) await this.redis.set(hold, '1', 'PX', Math.ceil(ms));
  }
}

