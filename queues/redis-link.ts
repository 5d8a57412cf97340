/**
 * What a Redis connection problem means to a person, and when to say it.
 *
 * - `redisProblem(err, url)`: an ioredis or BullMQ connection error as one DocbatchError with a
 *   stable code and what to do (REDIS_UNREACHABLE: refused, unknown host, no answer, not Redis;
 *   REDIS_AUTH_FAILED: the credentials in REDIS_URL refused). The URL is shown with its password
 *   masked. null for errors that are not about the connection.
 * - `probeRedis(url)`: one connection, no retries, a time limit: resolves when Redis answers PING
 *   and takes the database the URL names, throws the problem otherwise (a database it does not
 *   have: CONFIG_INVALID). Every verb calls it before it starts, so a wrong REDIS_URL is one
 *   line, never an ioredis dump or a process that hangs.
 * - `redisFullProblem(err, url)`: Redis refusing writes at its maxmemory as REDIS_FULL (not a
 *   connection problem: Redis answers, and frees memory as documents are written).
 * - `RedisLink`: the up/down state of a long-running process's connections. Connection errors
 *   arrive by the dozen while Redis is away (every reconnect attempt of every connection); the
 *   link turns them into one `down` when the first arrives and one `up` once no error came for
 *   `quietMs` and a PING answers. Workers log those two, nothing per error.
 */
import { EventEmitter } from 'node:events';
import { Redis } from 'ioredis';
import { redactUrl, redisDatabaseOf } from '../src/config.ts';
import { ConfigError, DocbatchError } from '../src/errors.ts';

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'ECONNABORTED', 'EHOSTDOWN', 'ENETDOWN']);
const CONNECTION_MESSAGES = /Connection is closed|Command timed out|Reached the max retries per request|Stream isn't writeable|connect ETIMEDOUT|Unknown RESP type|Protocol error|WRONGPASS|NOAUTH|NOPERM|invalid password|ERR AUTH|ERR Client sent AUTH/i;

/** True for errors that say the connection to Redis failed (not a command's own error). */
export function isRedisConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as NodeJS.ErrnoException).code;
  if (code !== undefined && NETWORK_CODES.has(code)) return true;
  if (err.name === 'MaxRetriesPerRequestError') return true;
  return CONNECTION_MESSAGES.test(err.message);
}

/** True when Redis refused a command because it reached `maxmemory` (policy noeviction). */
export function isRedisFull(err: unknown): boolean {
  return err instanceof Error && /^OOM command not allowed/i.test(err.message);
}

/**
 * Redis refusing for a while, not for good: the connection failed, it is full (maxmemory), loading
 * its data after a restart (LOADING), busy with a script (BUSY), a replica after a failover
 * (READONLY), unable to persist (MISCONF), or a cluster between states (TRYAGAIN, CLUSTERDOWN,
 * MASTERDOWN). What asked may ask again; a permanent refusal (NOPERM, WRONGTYPE, a script error)
 * is false.
 */
export function isRedisTransient(err: unknown): boolean {
  if (isRedisConnectionError(err) && !/WRONGPASS|NOAUTH|NOPERM|invalid password/i.test((err as Error).message)) return true;
  return isRedisFull(err) || (err instanceof Error && /^(?:LOADING|BUSY|READONLY|MISCONF|TRYAGAIN|CLUSTERDOWN|MASTERDOWN)\b/.test(err.message));
}

/** REDIS_FULL, with what to do, for an error `isRedisFull` recognises; null otherwise. */
export function redisFullProblem(err: unknown, url?: string): DocbatchError | null {
  if (!isRedisFull(err)) return null;
  const at = url !== undefined ? ` at ${where(url).address}` : '';
  const check = url !== undefined ? ` (REDIS_URL is ${where(url).shown})` : '';
  return new DocbatchError('REDIS_FULL', `Redis${at} is full: it refuses writes at its maxmemory (policy noeviction). Raise maxmemory, or let the writer finish documents (written ones leave Redis) and run \`docbatch gc\`${check}`, { cause: err });
}

function where(url: string): { shown: string; address: string } {
  const shown = redactUrl(url);
  try {
    const u = new URL(url);
    return { shown, address: `${u.hostname || '127.0.0.1'}:${u.port || '6379'}` };
  } catch {
    return { shown, address: shown };
  }
}

/**
 * The connection problem `err` as a person should read it, or null when `err` is not one.
 * `timeoutMs` is the connect time limit the caller used (for "no answer within"). `running`:
 * the connection worked before (a long-running process's link), so a dropped connection is
 * Redis stopping or the network, not a wrong port or a missing TLS.
 */
export function redisProblem(err: unknown, url: string, timeoutMs?: number, running = false): DocbatchError | null {
  if (err instanceof DocbatchError) return err.code === 'REDIS_UNREACHABLE' || err.code === 'REDIS_AUTH_FAILED' ? err : null;
  if (!isRedisConnectionError(err)) return null;
  const e = err as NodeJS.ErrnoException;
  const { shown, address } = where(url);
  const host = address.replace(/:\d+$/, '');
  const check = `REDIS_URL is ${shown}`;
  const unreachable = (what: string) => new DocbatchError('REDIS_UNREACHABLE', `${what} (${check})`, { cause: err });
  if (/WRONGPASS|invalid password|invalid username-password/i.test(e.message)) {
    return new DocbatchError('REDIS_AUTH_FAILED', `Redis at ${address} refused the user or password in REDIS_URL: correct them (redis://user:password@host:port, or REDIS_URL_FILE) (${check})`, { cause: err });
  }
  if (/NOAUTH/i.test(e.message)) {
    return new DocbatchError('REDIS_AUTH_FAILED', `Redis at ${address} requires a password and REDIS_URL has none: put it in the URL (redis://:password@host:port, or an ACL user: redis://user:password@host:port) (${check})`, { cause: err });
  }
  if (/NOPERM/i.test(e.message)) {
    return new DocbatchError('REDIS_AUTH_FAILED', `the Redis user in REDIS_URL lacks a permission docbatch needs (${e.message.slice(0, 120)}): grant it the commands and keys of DOCBATCH_PREFIX (docs/operations.md, Security) (${check})`, { cause: err });
  }
  switch (e.code) {
    case 'ECONNREFUSED':
      return unreachable(`nothing listens at ${address} (connection refused): start Redis there, or set REDIS_URL to where it runs`);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return unreachable(`the host ${host} is not known (DNS lookup failed): check the host name in REDIS_URL`);
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EHOSTDOWN':
    case 'ENETDOWN':
      return unreachable(`no route to ${host} (${e.code}): check the address in REDIS_URL and the network`);
    case 'ECONNRESET':
    case 'EPIPE':
      if (running) return unreachable(`${address} closed the connection (${e.code}): Redis stopped or restarted, or the network to it dropped`);
      return unreachable(`${address} closed the connection (${e.code}): is it Redis, and does it want TLS (rediss://) or plain redis://?`);
    default:
  }
  if (e.code === 'ETIMEDOUT' || /ETIMEDOUT|Command timed out/.test(e.message)) {
    const limit = timeoutMs !== undefined ? ` within ${Math.round(timeoutMs / 1000)} s` : '';
    return unreachable(`no answer from ${address}${limit}: a wrong address, a firewall, or rediss:// (TLS) to a Redis without TLS`);
  }
  if (/Unknown RESP type|Protocol error/i.test(e.message)) {
    return unreachable(`what answers at ${address} is not Redis (it does not speak Redis's protocol): check the port in REDIS_URL`);
  }
  return unreachable(`Redis at ${address} does not answer (${e.message.slice(0, 160)}): check that it runs and REDIS_URL`);
}

/**
 * Connects once (no reconnects), sends PING, disconnects. Resolves when Redis answered; throws
 * the connection problem (REDIS_UNREACHABLE, REDIS_AUTH_FAILED) otherwise, within about
 * `timeoutMs`.
 */
export async function probeRedis(url: string, timeoutMs = 5000): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: timeoutMs, retryStrategy: () => null, enableOfflineQueue: false, commandTimeout: timeoutMs });
  // ioredis rejects connect() with "Connection is closed."; the reason is in the error events.
  // What the server said (not Redis's protocol, a refused password) tells more than the broken
  // pipe that may come first.
  let reason: Error | null = null;
  redis.on('error', (err: Error) => {
    if (reason === null || /Unknown RESP type|Protocol error|WRONGPASS|NOAUTH|NOPERM/i.test(err.message)) reason = err;
  });
  try {
    try {
      await redis.connect();
      await redis.ping();
    } catch (err) {
      const problem = redisProblem(reason ?? err, url, timeoutMs) ?? redisProblem(err, url, timeoutMs);
      throw problem ?? new DocbatchError('REDIS_UNREACHABLE', `Redis at ${where(url).address} does not answer (${(err as Error).message}) (REDIS_URL is ${where(url).shown})`, { cause: err });
    }
    // ioredis selects the URL's database as it connects and, refused, only emits an error: every
    // command then ran in database 0, another installation's perhaps.
    const db = redisDatabaseOf(url);
    if (db !== null && db !== 0) {
      const refused = await redis.select(db).then(
        () => null,
        (err: unknown) => err as Error,
      );
      if (refused) {
        throw new ConfigError(`REDIS_URL names database ${db}, which Redis at ${where(url).address} refuses (${refused.message.slice(0, 120)}): it has fewer (its \`databases\` setting, 16 by default); use one it has (REDIS_URL is ${where(url).shown})`, { cause: refused });
      }
    }
  } finally {
    redis.disconnect();
  }
}

export interface RedisLinkOptions {
  /** The URL, for messages (shown with its password masked). */
  url: string;
  /** Answers when Redis is back (a PING on one of the process's connections). */
  ping: () => Promise<unknown>;
  /** Redis counts as back once no connection error came for this long and a PING answers. @defaultValue 3000 */
  quietMs?: number;
  /** How often to look while down. @defaultValue 1000 */
  checkMs?: number;
}

export interface RedisLinkEvents {
  /** The first connection error after the link was up, as a person should read it. */
  down: [problem: DocbatchError];
  /** Redis answers again, after `downMs` away. */
  up: [downMs: number];
}

/**
 * The link of one process to Redis: up or down, changing once per outage whatever the number of
 * connections and reconnect attempts. Feed it every connection error (`noteError`; other errors
 * are ignored) and attach it to connections with `watch`.
 */
export class RedisLink extends EventEmitter<RedisLinkEvents> {
  private readonly options: Required<RedisLinkOptions>;
  private downSince: number | null = null;
  private lastErrorAt = 0;
  private timer: NodeJS.Timeout | null = null;
  private checking = false;
  private closed = false;

  constructor(options: RedisLinkOptions) {
    super();
    this.options = { quietMs: 3000, checkMs: 1000, ...options };
  }

  get isDown(): boolean {
    return this.downSince !== null;
  }

  /** Listens to a connection's errors (connection errors only count). */
  watch(redis: Redis): this {
    redis.on('error', (err: Error) => this.noteError(err));
    return this;
  }

  /** Returns true when `err` was a connection error (and so was taken into account). */
  noteError(err: unknown): boolean {
    if (!isRedisConnectionError(err)) return false;
    this.lastErrorAt = Date.now();
    if (this.downSince !== null || this.closed) return true;
    this.downSince = this.lastErrorAt;
    this.emit('down', redisProblem(err, this.options.url, undefined, true)!);
    this.timer = setInterval(() => void this.check(), this.options.checkMs);
    this.timer.unref();
    return true;
  }

  private async check(): Promise<void> {
    if (this.checking || this.downSince === null) return;
    if (Date.now() - this.lastErrorAt < this.options.quietMs) return;
    this.checking = true;
    try {
      await this.options.ping();
      if (Date.now() - this.lastErrorAt < this.options.quietMs || this.downSince === null) return;
      const downMs = Date.now() - this.downSince;
      this.downSince = null;
      this.stopTimer();
      if (!this.closed) this.emit('up', downMs);
    } catch {
      // Still away; the next check tries again.
    } finally {
      this.checking = false;
    }
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Stops looking (the process is stopping); emits nothing more. */
  close(): void {
    this.closed = true;
    this.stopTimer();
  }
}
