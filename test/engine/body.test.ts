/**
 * Response bodies as proxies and gateways send them (src/engine/body.ts): compressed unasked,
 * and, served for real, read by the client as the server meant them.
 */
import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BodyDecodeError, decodeBody, parseJsonLenient } from '../../src/engine/body.ts';
import { parseErrorBody } from '../../src/engine/error-body.ts';
import { EngineClient, EngineError } from '../../src/engine/client.ts';
import { completion, startScripted, type Scripted } from './scripted-server.ts';

const TEXT = JSON.stringify({ ok: true, text: 'é ✓' });
const MAX = 1024 * 1024;

describe('decodeBody', () => {
  it('undoes gzip, x-gzip, deflate (zlib and raw), br and a list of codings; drops a BOM', () => {
    const bytes = Buffer.from(TEXT);
    expect(decodeBody(bytes, undefined, MAX)).toBe(TEXT);
    expect(decodeBody(bytes, 'identity', MAX)).toBe(TEXT);
    expect(decodeBody(gzipSync(bytes), 'gzip', MAX)).toBe(TEXT);
    expect(decodeBody(gzipSync(bytes), 'X-Gzip', MAX)).toBe(TEXT);
    expect(decodeBody(deflateSync(bytes), 'deflate', MAX)).toBe(TEXT);
    expect(decodeBody(deflateRawSync(bytes), 'deflate', MAX)).toBe(TEXT);
    expect(decodeBody(brotliCompressSync(bytes), 'br', MAX)).toBe(TEXT);
    expect(decodeBody(brotliCompressSync(gzipSync(bytes)), 'gzip, br', MAX)).toBe(TEXT);
    expect(decodeBody(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), bytes]), undefined, MAX)).toBe(TEXT);
    expect(decodeBody(Buffer.alloc(0), 'gzip', MAX)).toBe('');
  });

  it('a body that does not decode, an unknown coding, or one past the limit is a BodyDecodeError saying so', () => {
    expect(() => decodeBody(Buffer.from(TEXT), 'gzip', MAX)).toThrow(BodyDecodeError);
    expect(() => decodeBody(Buffer.from(TEXT), 'zstd', MAX)).toThrow(/Content-Encoding "zstd".*cannot decode/);
    expect(() => decodeBody(gzipSync(Buffer.alloc(100_000)), 'gzip', 1000)).toThrow(/decodes to more than 1000 bytes/);
  });
});

describe('parseJsonLenient', () => {
  it('reads the object or array at the start, whatever follows it; a BOM is dropped', () => {
    expect(parseJsonLenient('\ufeff{"a":1}')).toEqual({ a: 1 });
    expect(parseJsonLenient('{"a":"}{\\"]"}\n\u0000<!-- proxy -->')).toEqual({ a: '}{"]' });
    expect(parseJsonLenient(' [1,{"b":[2]}] trailing')).toEqual([1, { b: [2] }]);
    expect(parseJsonLenient('{"a":1}{"a":2}')).toEqual({ a: 1 });
  });

  it('a value that is not whole still fails, with the SyntaxError of the whole text', () => {
    expect(() => parseJsonLenient('{"a":1')).toThrow(SyntaxError);
    expect(() => parseJsonLenient('{"a":}} junk')).toThrow(SyntaxError);
    expect(() => parseJsonLenient('<html>')).toThrow(SyntaxError);
  });

  it('an error body with junk after it is read for its message and param', () => {
    const parsed = parseErrorBody('{"error":{"message":"too long","type":"BadRequestError","param":"input_tokens","code":400}}\r\n0\r\n');
    expect(parsed).toMatchObject({ message: 'too long', param: 'input_tokens', json: true });
  });
});

describe('the client reads compressed answers', () => {
  let server: Scripted;
  let client: EngineClient;
  let answer: { status: number; body: unknown } = { status: 200, body: completion('hello') };

  beforeAll(async () => {
    server = await startScripted((_req, res) => {
      const bytes = gzipSync(JSON.stringify(answer.body));
      res.writeHead(answer.status, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': bytes.length });
      res.end(bytes);
    });
    client = new EngineClient({ url: server.url, model: 'test-model' });
  });
  afterAll(async () => {
    await client.close();
    await server.close();
  });

  it('a gzip-compressed completion is read', async () => {
    answer = { status: 200, body: completion('hello') };
    expect((await client.chat({ messages: [{ role: 'user', content: 'hi' }], maxTokens: 5 })).text).toBe('hello');
  });

  it("a gzip-compressed error body is classified by what it says (404 model, not 'no such endpoint')", async () => {
    answer = { status: 404, body: { error: { message: 'The model `x` does not exist.', type: 'NotFoundError', param: null, code: 404 } } };
    const err = await client.chat({ messages: [{ role: 'user', content: 'hi' }], maxTokens: 5 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineError);
    expect((err as EngineError).code).toBe('MODEL_NOT_FOUND');
  });
});

describe('an error answer whose body does not decode as its Content-Encoding says', () => {
  it('is classified by its status: a 429 stays a rate limit, with its Retry-After', async () => {
    const server = await startScripted((_req, res) => {
      res.writeHead(429, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'retry-after': '2' });
      res.end('{"error":{"message":"Too Many Requests"}}'); // labelled gzip, sent plain (a proxy's slip)
    });
    const client = new EngineClient({ url: server.url, model: 'test-model' });
    try {
      const err = await client.chat({ messages: [{ role: 'user', content: 'hi' }], maxTokens: 5 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EngineError);
      expect((err as EngineError).code).toBe('ENGINE_RATE_LIMITED');
      expect((err as EngineError).retryAfterMs).toBe(2000);
    } finally {
      await client.close();
      await server.close();
    }
  });
});
