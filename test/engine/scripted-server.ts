/**
 * A real node:http server on port 0 whose answers a test scripts, and which records what it
 * saw: requests (method, path, headers, body), connections, and requests whose connection
 * closed before they were answered (how vLLM learns a client gave up).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface Seen {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}

export type Handler = (req: IncomingMessage, res: ServerResponse, seen: Seen) => unknown;

export interface Scripted {
  url: string;
  port: number;
  seen: Seen[];
  /** TCP connections accepted so far. */
  connections: number;
  /** Requests whose socket closed while the server had not finished answering. */
  abandoned: Seen[];
  /** Resolves when the next request is abandoned. */
  nextAbandoned(): Promise<Seen>;
  handler: Handler;
  close(): Promise<void>;
}

export async function startScripted(handler: Handler, options: { port?: number } = {}): Promise<Scripted> {
  const sockets = new Set<Socket>();
  const waiters: ((s: Seen) => void)[] = [];
  const state: Scripted = {
    url: '',
    port: 0,
    seen: [],
    connections: 0,
    abandoned: [],
    nextAbandoned: () => new Promise((resolve) => waiters.push(resolve)),
    handler,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const seen: Seen = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      state.seen.push(seen);
      res.on('close', () => {
        if (!res.writableFinished) {
          state.abandoned.push(seen);
          for (const w of waiters.splice(0)) w(seen);
        }
      });
      void Promise.resolve(state.handler(req, res, seen)).catch((err: unknown) => {
        res.destroy(err instanceof Error ? err : new Error(String(err)));
      });
    });
  });
  server.on('connection', (socket) => {
    state.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  state.port = (server.address() as AddressInfo).port;
  state.url = `http://127.0.0.1:${state.port}`;
  return state;
}

/** Answers JSON with a status. */
export function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** A port nothing listens on (bound, then released): connecting to it is refused. */
export async function closedPort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A minimal successful chat completion. */
export function completion(text: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: 'chatcmpl-test',
    object: 'chat.completion',
    model: 'test-model',
    choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 12, completion_tokens: 3, total_tokens: 15 },
    ...extra,
  };
}
