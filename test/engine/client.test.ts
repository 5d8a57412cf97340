import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EngineClient, EngineError } from '../../src/engine/client.ts';
import { BAD_SUCCESS_SHAPES, ERROR_SHAPES, type Shape } from './shapes.ts';
import { closedPort, completion, json, startScripted, type Scripted } from './scripted-server.ts';

const USER = [{ role: 'user' as const, content: 'hello' }];

async function failure(promise: Promise<unknown>): Promise<EngineError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(EngineError);
    return err as EngineError;
  }
  throw new Error('expected the request to fail');
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms).unref()),
  ]);
}

/** The message as each shape carries it (nested, flat, string error, string detail). */
function messageOf(body: unknown): string | undefined {
  if (body === null || typeof body !== 'object') return undefined;
  const b = body as { error?: unknown; message?: unknown; detail?: unknown };
  if (typeof b.error === 'string') return b.error;
  if (b.error && typeof b.error === 'object') return (b.error as { message: string }).message;
  if (typeof b.message === 'string') return b.message;
  return typeof b.detail === 'string' ? b.detail : undefined;
}

function serve(res: Parameters<typeof json>[0], shape: Shape): void {
  if (typeof shape.body === 'string') {
    const type = shape.body.startsWith('<') ? 'text/html' : 'text/plain';
    res.writeHead(shape.status, { 'content-type': type, 'content-length': Buffer.byteLength(shape.body), ...shape.headers });
    res.end(shape.body);
  } else {
    json(res, shape.status, shape.body, shape.headers);
  }
}

describe('every answer shape, served by a real HTTP server', () => {
  let server: Scripted;
  let client: EngineClient;
  let current: Shape | undefined;

  beforeAll(async () => {
    server = await startScripted((_req, res) => serve(res, current!));
    client = new EngineClient({ url: server.url, model: 'test-model' });
  });
  afterAll(async () => {
    await client.close();
    await server.close();
  });

  for (const shape of [...ERROR_SHAPES, ...BAD_SUCCESS_SHAPES]) {
    it(`${shape.name} → ${shape.code}`, async () => {
      current = shape;
      const err = await failure(client.chat({ messages: USER, maxTokens: 16 }));
      expect(err.code).toBe(shape.code);
      expect(err.status).toBe(shape.status);
      expect(err.engineDead).toBe(shape.engineDead ?? false);
      if (shape.engineType !== undefined) expect(err.engineType).toBe(shape.engineType);
      if (shape.message !== undefined) expect(err.message).toContain(shape.message);
      if (shape.context !== undefined) expect(err.context).toEqual(shape.context);
      if (shape.retryAfterMs !== undefined) expect(err.retryAfterMs).toBe(shape.retryAfterMs);
      const said = messageOf(shape.body);
      // The engine's own message is kept, whatever shape carried it.
      if (shape.status !== 200 && said !== undefined) expect(err.engineMessage).toBe(said);
    });
  }

  it('read every error body to the end, so connections were reused', () => {
    expect(server.seen.length).toBe(ERROR_SHAPES.length + BAD_SUCCESS_SHAPES.length);
    // undici's pool alternates between two sockets here; an undrained body would cost one each.
    expect(server.connections).toBeLessThanOrEqual(2);
  });
});

describe('requests', () => {
  let server: Scripted;
  const clients: EngineClient[] = [];
  const make = (options: Partial<ConstructorParameters<typeof EngineClient>[0]> = {}) => {
    const c = new EngineClient({ url: server.url, ...options });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    server = await startScripted((_req, res, seen) => {
      if (seen.path.endsWith('/v1/models')) {
        json(res, 200, {
          object: 'list',
          data: [
            { id: 'served-a', object: 'model', owned_by: 'vllm', max_model_len: 32768 },
            { id: 'served-b', object: 'model', owned_by: 'vllm', max_model_len: 8192 },
          ],
        });
      } else if (seen.path.endsWith('/v1/chat/completions')) {
        const body = JSON.parse(seen.body) as { model: string };
        json(res, 200, completion('ok', { model: body.model, id: `chatcmpl-${seen.headers['x-request-id'] ?? 'x'}` }));
      } else {
        json(res, 404, { detail: 'Not Found' });
      }
    });
  });
  afterEach(() => {
    server.seen.length = 0;
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await server.close();
  });

  it('sends the chat body, the key and the request id, and reads the result', async () => {
    const client = make({ model: 'served-b', apiKey: 'sk-test' });
    const image = 'data:image/png;base64,iVBORw0KGgo=';
    const result = await client.chat({
      messages: [{ role: 'user', content: [{ type: 'text', text: 'read' }, { type: 'image_url', image_url: { url: image } }] }],
      maxTokens: 300,
      temperature: 0,
      requestId: 'doc1-p3',
      responseFormat: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object' } } },
    });
    expect(result).toMatchObject({ text: 'ok', finishReason: 'stop', model: 'served-b', id: 'chatcmpl-doc1-p3' });
    expect(result.usage).toEqual({ promptTokens: 12, completionTokens: 3 });
    expect(result.latencyMs).toBeGreaterThanOrEqual(0);
    const sent = server.seen.find((s) => s.path === '/v1/chat/completions')!;
    expect(sent.method).toBe('POST');
    expect(sent.headers.authorization).toBe('Bearer sk-test');
    expect(sent.headers['x-request-id']).toBe('doc1-p3');
    const body = JSON.parse(sent.body);
    expect(body).toMatchObject({ model: 'served-b', max_tokens: 300, temperature: 0, stream: false });
    expect(body.messages[0].content[1].image_url.url).toBe(image);
    expect(body.response_format.type).toBe('json_schema');
  });

  it('discovers the model once from /v1/models, even for concurrent first requests', async () => {
    const client = make();
    const results = await Promise.all([1, 2, 3].map(() => client.chat({ messages: USER, maxTokens: 8 })));
    expect(results.map((r) => r.model)).toEqual(['served-a', 'served-a', 'served-a']);
    expect(server.seen.filter((s) => s.path === '/v1/models')).toHaveLength(1);
    expect(await client.model()).toEqual({ id: 'served-a', maxModelLen: 32768 });
    expect(await client.models()).toHaveLength(2);
  });

  it('reports the configured model with its max_model_len', async () => {
    expect(await make({ model: 'served-b' }).model()).toEqual({ id: 'served-b', maxModelLen: 8192 });
    expect(await make({ model: 'alias' }).model()).toEqual({ id: 'alias', maxModelLen: null });
  });

  it('normalises the base URL: with /v1, trailing slash, or a path prefix', async () => {
    await make({ url: `${server.url}/v1/`, model: 'm' }).chat({ messages: USER, maxTokens: 8 });
    await make({ url: `${server.url}/engine/v1`, model: 'm' }).chat({ messages: USER, maxTokens: 8 });
    await make({ url: `${server.url}/engine`, model: 'm' }).health();
    expect(server.seen.map((s) => s.path)).toEqual(['/v1/chat/completions', '/engine/v1/chat/completions', '/engine/health', '/engine/v1/models']);
  });

  it('refuses http(s) image URLs without sending anything', async () => {
    const client = make({ model: 'm' });
    for (const url of ['http://169.254.169.254/latest/meta-data', 'https://example.com/a.png', 'file:///etc/passwd', 'data:image/png,raw']) {
      const err = await failure(
        client.chat({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url } }] }], maxTokens: 8 }),
      );
      expect(err.code).toBe('BAD_REQUEST');
      expect(err.message).toContain('data: URL');
    }
    expect(server.seen).toHaveLength(0);
  });

  it('rejects bad options with a TypeError naming them', () => {
    expect(() => new EngineClient({ url: 'localhost:8000' })).toThrow(/url/);
    expect(() => new EngineClient({ url: 'ftp://x' })).toThrow(/http/);
    expect(() => new EngineClient({ url: server.url, requestTimeoutMs: 0 })).toThrow(/requestTimeoutMs/);
  });
});

describe('transport failures', () => {
  const servers: Scripted[] = [];
  const clients: EngineClient[] = [];
  const start = async (handler: Parameters<typeof startScripted>[0], options: { requestTimeoutMs?: number } = {}) => {
    const server = await startScripted(handler);
    servers.push(server);
    const client = new EngineClient({ url: server.url, model: 'm', ...options });
    clients.push(client);
    return { server, client };
  };
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.destroy()));
    await Promise.all(servers.map((s) => s.close()));
  });

  it('connection refused → ENGINE_DOWN, with the system error as cause', async () => {
    const client = new EngineClient({ url: `http://127.0.0.1:${await closedPort()}`, model: 'm' });
    clients.push(client);
    const err = await failure(client.chat({ messages: USER, maxTokens: 8 }));
    expect(err.code).toBe('ENGINE_DOWN');
    expect(err.status).toBeUndefined();
    expect((err.cause as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
  });

  it('a name that does not resolve → ENGINE_DOWN', async () => {
    const client = new EngineClient({ url: 'http://docbatch-test.invalid:8000', model: 'm' });
    clients.push(client);
    const err = await failure(client.chat({ messages: USER, maxTokens: 8 }));
    expect(err.code).toBe('ENGINE_DOWN');
    expect(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL']).toContain((err.cause as NodeJS.ErrnoException).code);
  });

  it('socket closed before any answer → ENGINE_DOWN', async () => {
    const { client } = await start((req) => req.socket.destroy());
    expect((await failure(client.chat({ messages: USER, maxTokens: 8 }))).code).toBe('ENGINE_DOWN');
  });

  it('socket destroyed in the middle of the body → ENGINE_DOWN', async () => {
    const { client } = await start((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
      res.write('{"id":"chatcmpl-1","choices":[{"ind');
      setTimeout(() => res.socket?.destroy(), 20);
    });
    expect((await failure(client.chat({ messages: USER, maxTokens: 8 }))).code).toBe('ENGINE_DOWN');
  });

  it('a server that never answers → ENGINE_TIMEOUT, and the server sees the connection close', async () => {
    const { server, client } = await start(() => {}, { requestTimeoutMs: 300 });
    const abandoned = server.nextAbandoned();
    const started = performance.now();
    const err = await failure(client.chat({ messages: USER, maxTokens: 8 }));
    expect(err.code).toBe('ENGINE_TIMEOUT');
    expect(performance.now() - started).toBeGreaterThanOrEqual(250);
    expect(performance.now() - started).toBeLessThan(5000);
    const seen = await within(abandoned, 5000, 'the server to see the close');
    expect(seen.path).toBe('/v1/chat/completions');
  });

  it('a body that stalls half-way is also bounded by the request timeout', async () => {
    const { server, client } = await start(
      (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
        res.write('{"id":');
      },
      { requestTimeoutMs: 300 },
    );
    const abandoned = server.nextAbandoned();
    expect((await failure(client.chat({ messages: USER, maxTokens: 8 }))).code).toBe('ENGINE_TIMEOUT');
    await within(abandoned, 5000, 'the server to see the close');
  });

  it("the caller's signal aborts the request (ABORTED) and closes the connection", async () => {
    const { server, client } = await start(() => {});
    const controller = new AbortController();
    const abandoned = server.nextAbandoned();
    setTimeout(() => controller.abort(new Error('lock lost')), 100);
    const err = await failure(client.chat({ messages: USER, maxTokens: 8 }, controller.signal));
    expect(err.code).toBe('ABORTED');
    expect((err.cause as Error).message).toBe('lock lost');
    await within(abandoned, 5000, 'the server to see the close');
  });

  it('an already aborted signal sends nothing', async () => {
    const { server, client } = await start((_req, res) => json(res, 200, completion('x')));
    const err = await failure(client.chat({ messages: USER, maxTokens: 8 }, AbortSignal.abort()));
    expect(err.code).toBe('ABORTED');
    expect(server.seen).toHaveLength(0);
  });

  it('an answer that is not HTTP → ENGINE_ERROR', async () => {
    const sockets = new Set<Socket>();
    const raw = createNetServer((socket) => {
      sockets.add(socket);
      socket.once('data', () => socket.end('SSH-2.0-OpenSSH_9.6\r\n\r\n'));
    });
    await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
    const client = new EngineClient({ url: `http://127.0.0.1:${(raw.address() as AddressInfo).port}`, model: 'm' });
    try {
      const err = await failure(client.chat({ messages: USER, maxTokens: 8 }));
      expect(err.code).toBe('ENGINE_ERROR');
      expect((err.cause as Error).message).toMatch(/HTTP/);
    } finally {
      await client.destroy();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => raw.close(() => resolve()));
    }
  });

  it('close() is idempotent and later requests fail as ABORTED', async () => {
    const { client } = await start((_req, res) => json(res, 200, completion('x')));
    await client.chat({ messages: USER, maxTokens: 8 });
    const first = client.close();
    expect(client.close()).toBe(first);
    await first;
    expect((await failure(client.chat({ messages: USER, maxTokens: 8 }))).code).toBe('ABORTED');
  });
});
