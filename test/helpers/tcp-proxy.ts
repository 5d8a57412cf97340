/**
 * A dropping TCP proxy for tests: a real node:net server on port 0 in front of an HTTP server
 * (the engine emulator), forwarding bytes both ways, that can fail the way a crashing proxy or
 * engine does:
 *
 * - **drop by marker**: an HTTP request whose body contains one of the markers is never
 *   forwarded; both sockets are destroyed the moment its body is complete (the client sees its
 *   connection closed, or reset with `reset: true`). Each drop is counted and emitted as `drop`.
 * - **drop everything**: while on, every open connection is destroyed and every new one is
 *   accepted and destroyed at once (a dead engine behind a live proxy, or a load balancer with no
 *   healthy backend).
 * - an upstream that refuses the connection (the engine restarting) closes the client's too.
 *
 * Requests are parsed from the client's bytes (HTTP/1.1, keep-alive, pipelining, bodies with
 * Content-Length or chunked) only to find where each ends; bytes are forwarded unchanged. A
 * marker matches the raw body, or the marker as written inside a JSON string.
 *
 *     const proxy = await startTcpProxy({ target: emulator.url, dropMarkers: ['<!-- page 3 -->'] });
 *     // ... point the client at proxy.url ...
 *     proxy.stats().drops;        proxy.setDropAll(true);        await proxy.close();
 */
import { EventEmitter, once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

export interface TcpProxyOptions {
  /** Where to forward: `http://host:port` or `{ host, port }`. */
  target: string | { host: string; port: number };
  /** Drop any request whose body contains one of these. @defaultValue [] */
  dropMarkers?: readonly string[];
  /** Destroy sockets with a TCP RST (ECONNRESET at the client) instead of a FIN. @defaultValue false */
  reset?: boolean;
}

export interface TcpProxyStats {
  /** Client connections accepted. */
  connections: number;
  /** Complete HTTP requests read from clients. */
  requests: number;
  /** Requests forwarded upstream. */
  forwarded: number;
  /** Requests dropped because their body had a marker. */
  drops: number;
  /** Those drops by marker. */
  dropsByMarker: Record<string, number>;
  /** Connections destroyed by drop-everything (open ones when it was switched on, and new ones while on). */
  droppedConnections: number;
  /** Client connections closed because the upstream could not be reached. */
  upstreamFailures: number;
}

export interface DropEvent {
  marker: string;
  /** The request line, e.g. `POST /v1/chat/completions HTTP/1.1`. */
  requestLine: string;
}

const HEAD_END = Buffer.from('\r\n\r\n');
/** A request head larger than this is not HTTP as we know it: the connection is closed. */
const MAX_HEAD = 64 * 1024;

/** Splits a client's byte stream into whole HTTP requests. */
class RequestSplitter {
  private buf: Buffer = Buffer.alloc(0);

  /** Adds bytes; returns the requests now complete (raw bytes, body decoded for matching, first line). */
  push(chunk: Buffer): { raw: Buffer; body: Buffer; requestLine: string }[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: { raw: Buffer; body: Buffer; requestLine: string }[] = [];
    for (;;) {
      const request = this.next();
      if (!request) break;
      out.push(request);
    }
    return out;
  }

  private next(): { raw: Buffer; body: Buffer; requestLine: string } | undefined {
    const headEnd = this.buf.indexOf(HEAD_END);
    if (headEnd === -1) {
      if (this.buf.length > MAX_HEAD) throw new Error('request head too large');
      return undefined;
    }
    const head = this.buf.subarray(0, headEnd).toString('latin1');
    const [requestLine = '', ...lines] = head.split('\r\n');
    const header = (name: string): string | undefined =>
      lines.find((l) => l.slice(0, l.indexOf(':')).trim().toLowerCase() === name)?.slice(name.length + 1).trim();
    const bodyStart = headEnd + HEAD_END.length;
    let body: Buffer;
    let end: number;
    if (/\bchunked\b/i.test(header('transfer-encoding') ?? '')) {
      const chunks: Buffer[] = [];
      let at = bodyStart;
      for (;;) {
        const lineEnd = this.buf.indexOf('\r\n', at);
        if (lineEnd === -1) return undefined;
        const size = Number.parseInt(this.buf.subarray(at, lineEnd).toString('latin1'), 16);
        if (!Number.isFinite(size)) throw new Error('bad chunk size');
        if (size === 0) {
          const trailerEnd = this.buf.indexOf(HEAD_END, lineEnd);
          const emptyTrailer = this.buf.subarray(lineEnd, lineEnd + 4).equals(HEAD_END);
          if (!emptyTrailer && trailerEnd === -1) return undefined;
          end = (emptyTrailer ? lineEnd : trailerEnd) + HEAD_END.length;
          break;
        }
        if (this.buf.length < lineEnd + 2 + size + 2) return undefined;
        chunks.push(this.buf.subarray(lineEnd + 2, lineEnd + 2 + size));
        at = lineEnd + 2 + size + 2;
      }
      body = Buffer.concat(chunks);
    } else {
      const length = Number(header('content-length') ?? 0);
      if (this.buf.length < bodyStart + length) return undefined;
      end = bodyStart + length;
      body = this.buf.subarray(bodyStart, end);
    }
    const raw = this.buf.subarray(0, end);
    this.buf = this.buf.subarray(end);
    return { raw, body, requestLine };
  }
}

export class TcpProxy extends EventEmitter<{ drop: [DropEvent] }> {
  private server: Server | null = null;
  private readonly target: { host: string; port: number };
  private readonly reset: boolean;
  private markers: { marker: string; needles: Buffer[] }[] = [];
  private dropAll = false;
  private dropAllTimer: NodeJS.Timeout | undefined;
  private readonly sockets = new Set<Socket>();
  /** Open client connections and their upstream sockets. */
  private readonly pairs = new Set<{ client: Socket; upstream: Socket | null }>();
  private readonly counters: TcpProxyStats = { connections: 0, requests: 0, forwarded: 0, drops: 0, dropsByMarker: {}, droppedConnections: 0, upstreamFailures: 0 };
  private closing: Promise<void> | null = null;
  port = 0;

  constructor(options: TcpProxyOptions) {
    super();
    if (typeof options.target === 'string') {
      const u = new URL(options.target);
      this.target = { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 80) };
    } else this.target = options.target;
    this.reset = options.reset ?? false;
    this.setDropMarkers(options.dropMarkers ?? []);
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async listen(): Promise<void> {
    const server = createServer((client) => this.accept(client));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  /** Replaces the markers (an empty list drops nothing). */
  setDropMarkers(markers: readonly string[]): void {
    for (const m of markers) if (typeof m !== 'string' || m === '') throw new TypeError(`drop markers must be non-empty strings; got ${JSON.stringify(m)}`);
    // Also the marker as it reads inside a JSON string ("\"", "\\n", "\u00e9" stay escaped there).
    this.markers = markers.map((marker) => ({ marker, needles: [...new Set([marker, JSON.stringify(marker).slice(1, -1)])].map((n) => Buffer.from(n)) }));
  }

  /** On: destroy every open connection now, and every new one until switched off. */
  setDropAll(on: boolean): void {
    clearTimeout(this.dropAllTimer);
    this.dropAllTimer = undefined;
    this.dropAll = on;
    if (!on) return;
    for (const pair of this.pairs) {
      this.counters.droppedConnections++;
      this.kill(pair.client);
      if (pair.upstream) this.kill(pair.upstream);
    }
    this.pairs.clear();
  }

  /** Drops everything for `ms`, then forwards again; resolves when it forwards again. */
  async dropAllFor(ms: number): Promise<void> {
    this.setDropAll(true);
    await new Promise<void>((resolve) => {
      this.dropAllTimer = setTimeout(() => {
        this.dropAllTimer = undefined;
        this.dropAll = false;
        resolve();
      }, ms);
    });
  }

  stats(): TcpProxyStats {
    return { ...this.counters, dropsByMarker: { ...this.counters.dropsByMarker } };
  }

  /** Stops listening, destroys every socket, clears the timer. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      clearTimeout(this.dropAllTimer);
      const server = this.server;
      this.server = null;
      for (const s of this.sockets) s.destroy();
      if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise((r) => setImmediate(r));
    })();
    return this.closing;
  }

  private kill(socket: Socket): void {
    if (this.reset && !socket.destroyed) socket.resetAndDestroy();
    else socket.destroy();
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => {}); // resets and refusals are what this proxy is for
  }

  private accept(client: Socket): void {
    this.counters.connections++;
    this.track(client);
    if (this.dropAll) {
      this.counters.droppedConnections++;
      this.kill(client);
      return;
    }
    const upstream = connect(this.target.port, this.target.host);
    this.track(upstream);
    const pair = { client, upstream };
    this.pairs.add(pair);
    const both = (): void => {
      this.pairs.delete(pair);
      for (const s of [client, upstream]) this.kill(s);
    };
    let connected = false;
    upstream.on('connect', () => {
      connected = true;
    });
    upstream.on('error', () => {
      if (!connected) this.counters.upstreamFailures++;
      both();
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    // The upstream closed (after its answer, or as it went down): close the client's side once
    // what was read is written; the client then closes its end.
    upstream.on('close', () => {
      if (!client.destroyed) client.end();
    });
    client.on('close', () => {
      this.pairs.delete(pair);
      if (!upstream.destroyed) upstream.destroy();
    });
    const splitter = new RequestSplitter();
    client.on('data', (chunk: Buffer) => {
      let requests;
      try {
        requests = splitter.push(chunk);
      } catch {
        both();
        return;
      }
      for (const r of requests) {
        this.counters.requests++;
        const hit = this.markers.find((m) => m.needles.some((n) => r.body.includes(n)));
        if (hit) {
          this.counters.drops++;
          this.counters.dropsByMarker[hit.marker] = (this.counters.dropsByMarker[hit.marker] ?? 0) + 1;
          both();
          this.emit('drop', { marker: hit.marker, requestLine: r.requestLine });
          return;
        }
        this.counters.forwarded++;
        upstream.write(r.raw);
      }
    });
    client.on('end', () => upstream.end());
  }
}

/** Starts a proxy on a free port of 127.0.0.1; resolves once it listens. */
export async function startTcpProxy(options: TcpProxyOptions): Promise<TcpProxy> {
  const proxy = new TcpProxy(options);
  await proxy.listen();
  return proxy;
}
