import { errors as undiciErrors } from 'undici';
import { describe, expect, it } from 'vitest';
import { classifyEngineResponse, classifyTransportError, EngineError } from '../../src/engine/classify.ts';
import { parseContextOverflow, parseErrorBody } from '../../src/engine/error-body.ts';
import { readChatCompletion, readModels } from '../../src/engine/responses.ts';
import { actionFor } from '../../src/errors.ts';
import { ERROR_SHAPES } from './shapes.ts';

describe('classifyEngineResponse', () => {
  for (const shape of ERROR_SHAPES) {
    it(`${shape.name} → ${shape.code} (from text and from parsed JSON)`, () => {
      const text = typeof shape.body === 'string' ? shape.body : JSON.stringify(shape.body);
      for (const body of [text, Buffer.from(text), typeof shape.body === 'string' ? shape.body : shape.body]) {
        const err = classifyEngineResponse(shape.status, body, shape.headers);
        expect(err).toBeInstanceOf(EngineError);
        expect(err.code).toBe(shape.code);
        expect(err.engineDead).toBe(shape.engineDead ?? false);
        if (shape.context) expect(err.context).toEqual(shape.context);
      }
    });
  }

  it('every code it gives has an action in src/errors.ts', () => {
    for (const shape of ERROR_SHAPES) {
      expect(['fail', 'retry', 'shrink', 'wait', 'environment']).toContain(actionFor(classifyEngineResponse(shape.status, shape.body).code));
    }
  });

  it('reads Retry-After as an HTTP date too', () => {
    const at = new Date(Date.now() + 10_000).toUTCString();
    const ms = classifyEngineResponse(429, '', { 'retry-after': at }).retryAfterMs!;
    expect(ms).toBeGreaterThan(5_000);
    expect(ms).toBeLessThanOrEqual(10_000);
  });

  it('504 and 408 are timeouts; 405 is unsupported; other 4xx are bad requests', () => {
    expect(classifyEngineResponse(504, '<html>Gateway Time-out</html>').code).toBe('ENGINE_TIMEOUT');
    expect(classifyEngineResponse(408, '').code).toBe('ENGINE_TIMEOUT');
    expect(classifyEngineResponse(405, { detail: 'Method Not Allowed' }).code).toBe('ENGINE_UNSUPPORTED');
    const large = classifyEngineResponse(413, '<html><center><h1>413 Request Entity Too Large</h1></center><hr><center>nginx</center></html>');
    expect(large.code).toBe('REQUEST_TOO_LARGE');
    // What to do about it: a proxy's body limit, and the settings that make pages smaller.
    expect(large.message).toMatch(/client_max_body_size.*IMAGE_SIZE.*IMAGE_FORMAT=jpeg/);
    expect(classifyEngineResponse(409, '').code).toBe('BAD_REQUEST');
  });

  it('clips a huge body to a readable message', () => {
    const err = classifyEngineResponse(500, 'x'.repeat(100_000));
    expect(err.engineMessage!.length).toBeLessThanOrEqual(2001);
    expect(err.message.length).toBeLessThan(2200);
  });
});

describe('parseErrorBody', () => {
  it('reads every shape', () => {
    expect(parseErrorBody('{"error":{"message":"m","type":"T","param":"p","code":400}}')).toEqual({ message: 'm', type: 'T', param: 'p', json: true });
    expect(parseErrorBody('{"object":"error","message":"m","type":"T","param":null,"code":400}')).toMatchObject({ message: 'm', type: 'T' });
    expect(parseErrorBody('{"error":{"message":"m","type":"api_error","param":null,"code":null}}')).toMatchObject({ message: 'm' });
    expect(parseErrorBody('{"detail":"Not Found"}')).toMatchObject({ message: 'Not Found', type: undefined });
    expect(parseErrorBody('{"error":"Unauthorized"}')).toMatchObject({ message: 'Unauthorized' });
    expect(parseErrorBody('')).toMatchObject({ message: '', json: false });
    expect(parseErrorBody('upstream connect error')).toMatchObject({ message: 'upstream connect error', json: false });
    expect(parseErrorBody('"just a string"')).toMatchObject({ message: 'just a string', json: true });
  });
});

describe('parseContextOverflow', () => {
  it('reads the numbers of each wording', () => {
    expect(
      parseContextOverflow(
        "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens. Please reduce the length of the messages.",
      ),
    ).toEqual({ maxContextLength: 8192, promptTokens: 9000, maxTokens: null });
    expect(parseContextOverflow('The decoder prompt (length 5000) is longer than the maximum model length of 4096.')).toEqual({
      maxContextLength: 4096,
      promptTokens: 5000,
      maxTokens: null,
    });
    expect(
      parseContextOverflow(
        "Requested token count exceeds the model's maximum context length of 4096 tokens. You requested a total of 4600 tokens: 4000 tokens from the input messages and 600 tokens for the completion.",
      ),
    ).toEqual({ maxContextLength: 4096, promptTokens: 4000, maxTokens: 600 });
    expect(parseContextOverflow('too long')).toEqual({ maxContextLength: null, promptTokens: null, maxTokens: null });
  });

  it('a 400 with param input_tokens is a context overflow even without the usual words', () => {
    const err = classifyEngineResponse(400, { error: { message: 'prompt has 9000 input tokens', type: 'BadRequestError', param: 'input_tokens', code: 400 } });
    expect(err.code).toBe('CONTEXT_TOO_LONG');
    expect(err.context?.promptTokens).toBe(9000);
  });
});

describe('classifyTransportError', () => {
  const sys = (code: string) => Object.assign(new Error(`${code} happened`), { code });

  it('connection-level failures are ENGINE_DOWN', () => {
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT']) {
      expect(classifyTransportError(sys(code)).code).toBe('ENGINE_DOWN');
    }
    expect(classifyTransportError(new undiciErrors.SocketError('other side closed')).code).toBe('ENGINE_DOWN');
    expect(classifyTransportError(new undiciErrors.ConnectTimeoutError()).code).toBe('ENGINE_DOWN');
  });

  it('looks through AggregateError (happy eyeballs) and cause chains', () => {
    const aggregate = new AggregateError([sys('ECONNREFUSED'), sys('ECONNREFUSED')], 'connect failed');
    expect(classifyTransportError(aggregate).code).toBe('ENGINE_DOWN');
    expect(classifyTransportError(new TypeError('fetch failed', { cause: sys('ECONNRESET') })).code).toBe('ENGINE_DOWN');
  });

  it('timeouts, aborts, our own bugs, and the unknown', () => {
    expect(classifyTransportError(new undiciErrors.HeadersTimeoutError()).code).toBe('ENGINE_TIMEOUT');
    expect(classifyTransportError(new undiciErrors.BodyTimeoutError()).code).toBe('ENGINE_TIMEOUT');
    expect(classifyTransportError(new undiciErrors.RequestAbortedError()).code).toBe('ABORTED');
    expect(classifyTransportError(new DOMException('x', 'AbortError')).code).toBe('ABORTED');
    expect(classifyTransportError(new undiciErrors.ClientClosedError()).code).toBe('ABORTED');
    expect(classifyTransportError(new undiciErrors.InvalidArgumentError('bad header')).code).toBe('INTERNAL');
    expect(classifyTransportError(new undiciErrors.ResponseExceededMaxSizeError()).code).toBe('ENGINE_ERROR');
    const odd = new Error('weird');
    const err = classifyTransportError(odd);
    expect(err.code).toBe('ENGINE_ERROR');
    expect(err.cause).toBe(odd);
  });

  it('passes an EngineError through unchanged', () => {
    const original = new EngineError('ENGINE_OOM', 'x');
    expect(classifyTransportError(original)).toBe(original);
  });
});

describe('reading 2xx bodies', () => {
  it('accepts content as a list of text parts and a missing usage (unknown counts: null, not 0)', () => {
    const result = readChatCompletion(
      JSON.stringify({ choices: [{ index: 0, message: { content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] } }] }),
      200,
      { model: 'm', latencyMs: 5 },
    );
    expect(result).toEqual({ text: 'ab', finishReason: null, usage: { promptTokens: null, completionTokens: null }, latencyMs: 5, model: 'm', id: '' });
  });

  it('lists models with and without max_model_len', () => {
    expect(readModels('{"data":[{"id":"a","max_model_len":4096},{"id":"b"},{"nope":1}]}', 200)).toEqual([
      { id: 'a', maxModelLen: 4096 },
      { id: 'b', maxModelLen: null },
    ]);
    expect(() => readModels('{"models":[]}', 200)).toThrow(/data list/);
  });
});

describe('out-of-memory wording', () => {
  it('wins over the status, and does not fire on look-alikes', () => {
    expect(classifyEngineResponse(500, { detail: 'OOM when allocating tensor with shape [4096, 4096]' }).code).toBe('ENGINE_OOM');
    expect(classifyEngineResponse(503, { error: { message: 'HIP out of memory. Tried to allocate 1 GiB' } }).code).toBe('ENGINE_OOM');
    expect(classifyEngineResponse(404, { error: { message: 'The model `bloom-oom` does not exist.', type: 'NotFoundError' } }).code).toBe(
      'MODEL_NOT_FOUND',
    );
  });
});
