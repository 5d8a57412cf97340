/**
 * One HTTP exchange with an OpenAI-compatible server, over a pool of kept-alive connections. The
 * client (client.ts) says which route to ask and what its answer means; this module only
 * carries the request and brings back the answer whole.
 *
 * What it promises:
 * - an exchange that outlives its `timeoutMs`, or whose caller aborts, has its connection
 *   closed: vLLM has no server-side timeout and only frees the slot when the client goes away;
 * - bodies are always read to the end (or the socket destroyed), so connections are reused;
 * - a request that got no (complete) answer fails with an `EngineError` (classify.ts's transport
 *   rules); an answer, whatever its status, is returned for the caller to judge.
 */
import { Pool } from 'undici';
import { BodyDecodeError, decodeBody } from './body.ts';
import { classifyTransportError, EngineError } from './classify.ts';
import { jsonBody } from './data-url.ts';

/** An answer read whole: its status, headers and body as text. */
export interface Answer {
  /** The URL asked (named in errors about the URL itself). */
  url: string;
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  latencyMs: number;
}

export interface SendOptions {
  body?: unknown;
  timeoutMs: number;
  signal: AbortSignal | undefined;
  headers?: Record<string, string>;
}

export interface EngineHttpOptions {
  origin: string;
  /** Path prefix before `/v1`, `/health`, ... ('' for a server at the root). */
  prefix: string;
  /** Sent as `Authorization: Bearer <apiKey>`. */
  apiKey: string | undefined;
  /** Connection cap of the undici pool. */
  connections: number;
  /** Establishing a TCP/TLS connection. */
  connectTimeoutMs: number;
  /** A larger response body fails with ENGINE_ERROR instead of filling memory. */
  maxResponseBytes: number;
}

export class EngineHttp {
  private readonly options: EngineHttpOptions;
  private readonly pool: Pool;
  private closing: Promise<void> | undefined;

  constructor(options: EngineHttpOptions) {
    this.options = options;
    this.pool = new Pool(options.origin, {
      connections: options.connections,
      connectTimeout: options.connectTimeoutMs,
      maxResponseSize: options.maxResponseBytes,
      allowH2: false,
    });
  }

  /**
   * One request, its body read to the end. The whole exchange is bounded by `timeoutMs`: on
   * expiry (or the caller's abort) undici destroys the socket, which is how vLLM learns that the
   * client gave up.
   */
  async send(method: 'GET' | 'POST', path: string, options: SendOptions): Promise<Answer> {
    const { signal, timeoutMs } = options;
    if (signal?.aborted) throw new EngineError('ABORTED', 'request to the engine was aborted before it was sent', { cause: signal.reason });
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new Error(`no complete answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const onAbort = () => controller.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    const headers: Record<string, string> = { accept: 'application/json', ...options.headers };
    if (this.options.apiKey !== undefined) headers.authorization = `Bearer ${this.options.apiKey}`;
    let body: string | Buffer | undefined;
    if (options.body !== undefined) {
      body = jsonBody(options.body);
      headers['content-type'] = 'application/json';
    }
    const started = performance.now();
    try {
      const res = await this.pool.request({
        path: this.options.prefix + path,
        method,
        headers,
        body: body ?? null,
        signal: controller.signal,
        // Our own timer bounds the request; undici's (300 s by default) must not fire first.
        headersTimeout: timeoutMs + 1_000,
        bodyTimeout: timeoutMs + 1_000,
      });
      const bytes = Buffer.from(await res.body.arrayBuffer());
      let text: string;
      try {
        text = decodeBody(bytes, res.headers['content-encoding'], this.options.maxResponseBytes);
      } catch (err) {
        // An error answer's status says what it is (a 429 stays a rate limit) whatever its body.
        if (!(err instanceof BodyDecodeError) || res.statusCode < 300) throw err;
        text = `(body not readable: ${err.message})`;
      }
      return { url: `${this.options.origin}${this.options.prefix}${path}`, status: res.statusCode, headers: res.headers, text, latencyMs: Math.round(performance.now() - started) };
    } catch (err) {
      if (err instanceof BodyDecodeError) throw new EngineError('ENGINE_ERROR', `${method} ${path}: ${err.message}`, { cause: err });
      if (timedOut) {
        throw new EngineError(
          'ENGINE_TIMEOUT',
          `engine gave no complete answer to ${method} ${path} within ${timeoutMs} ms; the connection was closed`,
          { cause: err },
        );
      }
      if (signal?.aborted) {
        throw new EngineError('ABORTED', `request to the engine was aborted: ${method} ${path}`, { cause: signal.reason ?? err });
      }
      throw classifyTransportError(err);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Waits for requests in flight, then closes the connections. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.pool.close();
    return this.closing;
  }

  /** Fails requests in flight (ABORTED) and closes the connections at once. */
  async destroy(): Promise<void> {
    if (!this.pool.destroyed) await this.pool.destroy();
  }
}

/** `http://host:port/prefix/v1` → its origin and the path prefix before `/v1`. */
export function normaliseUrl(raw: string): { origin: string; prefix: string } {
  let url: URL;
  try {
    url = new URL(raw);
  } catch (err) {
    throw new TypeError(`EngineClient option url must be an absolute http(s) URL, got ${JSON.stringify(raw)}`, { cause: err });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TypeError(`EngineClient option url must be http(s), got ${url.protocol}`);
  }
  let prefix = url.pathname.replace(/\/+$/, '');
  if (prefix.endsWith('/v1')) prefix = prefix.slice(0, -3);
  return { origin: url.origin, prefix };
}
