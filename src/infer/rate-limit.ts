/**
 * Requests-per-minute and tokens-per-minute limits of one engine (a paid or shared endpoint),
 * shared by every worker that sends to it, through Redis. A sliding window: in any 60 seconds
 * no more than `rpm` requests and `tpm` tokens (prompt + max_tokens, counted when the request
 * leaves, as OpenAI-style endpoints reserve them) are sent, so an endpoint that counts in fixed
 * minutes never sees more than its limit. A 429 with Retry-After from the endpoint holds every
 * worker of that endpoint for as long as it says (`holdFor`). The window is counted a little
 * longer than the endpoint's (2%, at least 50 ms): a request sent just as an old one leaves our
 * window must not reach the endpoint before that one left its own.
 *
 *   {p}:rate:{engine}        zset   sends of the last minute: member "time:nonce:tokens", score time
 *   {p}:rate:{engine}:hold   string set while the endpoint asked everyone to wait (PX)
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { DocbatchError } from '../errors.ts';

/**
 * KEYS: the send log, the hold key. ARGV: rpm (0 = none), tpm (0 = none), tokens, nonce, window ms.
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
  return math.max(1, tonumber(sends[2]) + window - now)
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
      if used - freed + tokens <= tpm then return math.max(1, tonumber(sends[i + 1]) + window - now) end
    end
    return window
  end
end
redis.call('ZADD', KEYS[1], now, now .. ':' .. ARGV[4] .. ':' .. tokens)
redis.call('PEXPIRE', KEYS[1], window * 2)
return 0
`;

interface LimitingRedis extends Redis {
  docbatchRateAcquire(log: string, hold: string, ...args: Array<string | number>): Promise<number>;
}

export interface RateLimits {
  /** Requests per window; undefined: none. */
  rpm?: number;
  /** Tokens (prompt + max_tokens) per window; undefined: none. */
  tpm?: number;
  /** The window the limits count in. @defaultValue 60_000 (endpoints count per minute) */
  windowMs?: number;
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
    if (!('docbatchRateAcquire' in redis)) redis.defineCommand('docbatchRateAcquire', { numberOfKeys: 2, lua: ACQUIRE_LUA });
  }

  get active(): boolean {
    return this.limits.rpm !== undefined || this.limits.tpm !== undefined;
  }

  /** Waits until a request of `tokens` may leave, and records it. */
  async acquire(tokens: number, signal: AbortSignal): Promise<void> {
    const { rpm, tpm } = this.limits;
    if (tpm !== undefined && tokens > tpm) {
      throw new DocbatchError('BAD_REQUEST', `one request needs ${tokens} tokens (prompt + max_tokens), more than ENGINE_TPM ${tpm} allows in a minute`);
    }
    for (;;) {
      const window = this.limits.windowMs ?? 60_000;
      const margin = Math.max(50, Math.round(window * 0.02));
      const wait = await this.redis.docbatchRateAcquire(this.key, `${this.key}:hold`, rpm ?? 0, tpm ?? 0, Math.max(0, Math.round(tokens)), randomBytes(4).toString('hex'), window + margin);
      if (wait === 0) return;
      await sleep(Math.min(wait, 5000) + Math.random() * 50, signal);
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

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new DocbatchError('ABORTED', 'aborted while waiting for the rate limit', { cause: signal.reason }));
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new DocbatchError('ABORTED', 'aborted while waiting for the rate limit', { cause: signal.reason }));
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
