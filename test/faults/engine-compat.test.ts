/**
 * Engines that are not our emulator, met by a real worker over real HTTP (found by an
 * independent fake vLLM written apart from this repo):
 *
 * - a burst of 503s from something in front of a healthy engine (nginx limit_req, a gateway
 *   with no free backend) is a refusal to back off from, not an outage: no page fails;
 * - an engine whose /v1/models gives no max_model_len refuses a max_tokens too large for the
 *   context, naming the room there is: the page is asked again within it, not failed;
 * - a chat that refuses the model /v1/models lists, and an ENGINE_URL with a wrong path, stop
 *   the worker at start with WORKER_UNFIT naming the URL, instead of taking units to hand them
 *   back forever or failing every page.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { isDocbatchError } from '../../src/errors.ts';
import type { InferWorker } from '../../src/infer/worker.ts';
import { json, startScripted, type Scripted } from '../engine/scripted-server.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { startScriptedEngine, type ScriptedEngine } from '../helpers/scripted-engine.ts';

let p: Pipeline;
let worker: InferWorker | null = null;
let scripted: ScriptedEngine | null = null;
let fake: Scripted | null = null;

beforeAll(async () => {
  p = await startPipeline({ file: import.meta.filename, worker: false, config: { engineStartTimeoutMs: 20_000 } });
});
afterEach(async () => {
  await worker?.close({ deadlineMs: 2000 });
  worker = null;
  await scripted?.close();
  scripted = null;
  await fake?.close();
  fake = null;
});
afterAll(async () => {
  await p?.stop();
});

function pdf(name: string, pages: number, seed: number): string {
  const file = join(p.dir, name);
  writeFileSync(file, numberedPdf(pages, seed));
  return file;
}

describe('a worker before engines that are not the emulator', () => {
  it('backs off from 503s while /health is up, and every page is written', async () => {
    let refused = 0;
    scripted = await startScriptedEngine(p.engine.url, () => (refused++ < 30 ? { status: 503, content: '' } : null));
    worker = await p.startWorker({ engineUrl: scripted.url });
    const [docId] = acceptedIds(await p.enqueue([pdf('refused.pdf', 6, 1)]));
    const [done] = await p.wait([docId!], 90_000);
    expect(done!.record).toMatchObject({ state: 'written', done: 6, failed: 0 });
    expect(refused).toBeGreaterThanOrEqual(30);
  }, 120_000);

  it('an older vLLM that refuses a request id still running there (400 "already running"): sent again under another id, every page written', async () => {
    // vLLM from late 2024 to late 2025 keys its requests by X-Request-Id: a unit sent again while
    // its first send is still being aborted there (a lock lost, a redelivery) meets this refusal.
    const ids: string[] = [];
    fake = await startScripted(async (_req, res, seen) => {
      const id = String(seen.headers['x-request-id'] ?? '');
      if (seen.path === '/v1/chat/completions' && id !== 'docbatch-image-probe') {
        ids.push(id);
        if (ids.filter((i) => i === id).length === 1 && !/-s\d+$/.test(id)) {
          return json(res, 400, { object: 'error', message: `Request id chatcmpl-${id} already running.`, type: 'BadRequestError', param: null, code: 400 });
        }
      }
      const r = await fetch(`${p.engine.url}${seen.path}`, { method: seen.method, headers: { 'content-type': 'application/json', 'x-request-id': id }, ...(seen.method === 'POST' ? { body: seen.body } : {}) });
      const text = await r.text();
      res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'text/plain' }).end(text);
    });
    worker = await p.startWorker({ engineUrl: fake.url });
    const [docId] = acceptedIds(await p.enqueue([pdf('request-id.pdf', 2, 8)]));
    const [done] = await p.wait([docId!], 60_000);
    expect(done!.record).toMatchObject({ state: 'written', done: 2, failed: 0 });
    // Each page: refused under its id, answered under another.
    expect(ids.filter((i) => !/-s\d+$/.test(i))).toHaveLength(2);
    expect(ids.filter((i) => /-s\d+$/.test(i))).toHaveLength(2);
  }, 60_000);

  it("asks again within the room a context-length refusal names, when only max_tokens was too large", async () => {
    const message = (max: number) => `'max_tokens' or 'max_completion_tokens' is too large: ${max}. This model's maximum context length is 2000 tokens and your request has 1700 input tokens (${max} > 2000 - 1700).`;
    scripted = await startScriptedEngine(p.engine.url, (body) => ((body.max_tokens ?? 0) > 300 ? { status: 400, content: message(body.max_tokens!) } : null));
    worker = await p.startWorker({ engineUrl: scripted.url });
    const [docId] = acceptedIds(await p.enqueue([pdf('room.pdf', 2, 2)]));
    const [done] = await p.wait([docId!], 60_000);
    expect(done!.record).toMatchObject({ state: 'written', done: 2, failed: 0 });
    const sent = scripted.chats.map((c) => c.max_tokens);
    // The room named less one: SGLang refuses prompt + max_tokens equal to the context.
    expect(sent.filter((m) => m === 299).length).toBe(2);
    expect(sent.every((m) => m === 299 || m! > 300)).toBe(true);
  }, 90_000);

  /**
   * vLLM that stops counting a prompt once it cannot fit: its refusal names only a lower bound
   * ("your prompt contains at least N input tokens", N = context - max_tokens + 1). Context 2000,
   * every prompt 1700 tokens as it counts them; /v1/models gives no max_model_len.
   */
  async function lowerBoundEngine(tokenize: boolean): Promise<Scripted> {
    const limit = 2000;
    const prompt = 1700;
    return startScripted((_req, res, seen) => {
      if (seen.path === '/health') return res.writeHead(200).end();
      if (seen.path === '/v1/models') return json(res, 200, { object: 'list', data: [{ id: 'lb', object: 'model' }] });
      if (seen.path === '/tokenize' && tokenize) return json(res, 200, { count: prompt, max_model_len: limit, tokens: [] });
      if (seen.path !== '/v1/chat/completions') return json(res, 404, { detail: 'Not Found' });
      const max = (JSON.parse(seen.body) as { max_tokens: number }).max_tokens;
      if (max > 1 && prompt + max > limit) {
        const atLeast = Math.max(1, limit - max + 1);
        return json(res, 400, { error: { message: `This model's maximum context length is ${limit} tokens. However, you requested ${max} output tokens and your prompt contains at least ${atLeast} input tokens, for a total of at least ${atLeast + max} tokens. Please reduce the length of the input prompt or the number of requested output tokens. (parameter=input_tokens, value=${atLeast})`, type: 'BadRequestError', param: 'input_tokens', code: 400 } });
      }
      return json(res, 200, { id: 'c', object: 'chat.completion', model: 'lb', choices: [{ index: 0, message: { role: 'assistant', content: `within ${max}` }, finish_reason: 'stop' }], usage: { prompt_tokens: prompt, completion_tokens: 3, total_tokens: prompt + 3 } });
    });
  }

  it('a context-length refusal that names only a lower bound of the prompt ("at least N input tokens"): the prompt is counted (/tokenize), one resend within the real room', async () => {
    fake = await lowerBoundEngine(true);
    worker = await p.startWorker({ engineUrl: fake.url, model: 'lb', pageMaxTokens: 1000 });
    const [docId] = acceptedIds(await p.enqueue([pdf('lower-bound.pdf', 2, 6)]));
    const [done] = await p.wait([docId!], 60_000);
    expect(done!.record).toMatchObject({ state: 'written', done: 2, failed: 0 });
    const sent = fake.seen.filter((s) => s.path === '/v1/chat/completions').map((s) => (JSON.parse(s.body) as { max_tokens: number }).max_tokens).filter((m) => m > 1);
    // Refused at 1000 (once per page at most: both may be in flight before one learns), then
    // 2000 - 1700 - 1 = 299 as the engine counted the prompt; not a walk down from the bound,
    // two tokens a send. The context length is remembered: a page sent after that fits its
    // max_tokens to it before it is sent (on our estimate of the prompt: at most 299).
    expect(sent).toContain(299);
    expect(sent.filter((m) => m > 299).every((m) => m === 1000)).toBe(true);
    expect(sent.filter((m) => m === 1000).length).toBeLessThanOrEqual(2);
    expect(sent.length).toBeLessThanOrEqual(4);
  }, 90_000);

  it('the same without /tokenize: at most one resend on the estimate, then CONTEXT_TOO_LONG (never a walk through every send)', async () => {
    fake = await lowerBoundEngine(false);
    worker = await p.startWorker({ engineUrl: fake.url, model: 'lb', pageMaxTokens: 1000 });
    const [docId] = acceptedIds(await p.enqueue([pdf('lower-bound2.pdf', 1, 7)]));
    const [done] = await p.wait([docId!], 60_000);
    const sent = fake.seen.filter((s) => s.path === '/v1/chat/completions').map((s) => (JSON.parse(s.body) as { max_tokens: number }).max_tokens).filter((m) => m > 1);
    expect(sent.length).toBeLessThanOrEqual(2);
    if (done!.record.failed === 1) {
      const report = JSON.parse(readFileSync(join(p.config.outDir, 'lower-bound2.report.json'), 'utf8')) as { failed: Array<{ code: string }> };
      expect(report.failed.map((f) => f.code)).toEqual(['CONTEXT_TOO_LONG']);
    }
  }, 90_000);

  /** A server that lists `listed` at /v1/models and answers chat as `chat` says. */
  async function fakeEngine(chat: (path: string) => { status: number; body: unknown }): Promise<Scripted> {
    return startScripted((_req, res, seen) => {
      if (seen.path === '/health') return res.writeHead(200).end();
      if (seen.path === '/v1/models') return json(res, 200, { object: 'list', data: [{ id: 'listed', object: 'model', max_model_len: 4096 }] });
      const answer = chat(seen.path);
      return json(res, answer.status, answer.body);
    });
  }

  it('refuses to start when the chat refuses the model /v1/models lists', async () => {
    fake = await fakeEngine(() => ({ status: 404, body: { error: { message: 'The model `listed` does not exist.', type: 'NotFoundError', param: 'model', code: 404 } } }));
    // A gateway mid-restart answers so too: asked again until ENGINE_START_TIMEOUT_MS, then refused.
    const err = await p.startWorker({ engineUrl: fake.url, model: 'listed', engineStartTimeoutMs: 3000 }).then(
      (w) => ((worker = w), null),
      (e: unknown) => e,
    );
    expect(isDocbatchError(err) && err.code).toBe('WORKER_UNFIT');
    expect(String((err as Error).message)).toMatch(/^model: .*\/v1\/chat\/completions refuses the model "listed"/);
  }, 60_000);

  it('starts once a chat that refused the model (a gateway mid-restart) takes it, within ENGINE_START_TIMEOUT_MS', async () => {
    let refusals = 0;
    fake = await fakeEngine(() =>
      refusals++ < 2
        ? { status: 404, body: { error: { message: 'The model `listed` does not exist.', type: 'NotFoundError', param: 'model', code: 404 } } }
        : { status: 200, body: { id: 'c', object: 'chat.completion', model: 'listed', choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }], usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 } } },
    );
    worker = await p.startWorker({ engineUrl: fake.url, model: 'listed', engineStartTimeoutMs: 20_000 });
    expect(refusals).toBe(3);
  }, 60_000);

  it("starts with a MODEL /v1/models lists under another name when the chat takes it (Ollama's llava for llava:latest)", async () => {
    fake = await startScripted((_req, res, seen) => {
      if (seen.path === '/v1/models') return json(res, 200, { object: 'list', data: [{ id: 'llava:latest', object: 'model', created: 0, owned_by: 'library' }] });
      if (seen.path !== '/v1/chat/completions') return json(res, 404, '404 page not found');
      const model = (JSON.parse(seen.body) as { model: string }).model;
      if (model !== 'llava' && model !== 'llava:latest') return json(res, 404, { error: { message: `model "${model}" not found, try pulling it first`, type: 'api_error', param: null, code: null } });
      return json(res, 200, { id: 'c', object: 'chat.completion', model, choices: [{ index: 0, message: { role: 'assistant', content: 'A page of text.' }, finish_reason: 'stop' }], usage: { prompt_tokens: 5, completion_tokens: 4, total_tokens: 9 } });
    });
    worker = await p.startWorker({ engineUrl: fake.url, model: 'llava', engineStartTimeoutMs: 3000 });
    const [docId] = acceptedIds(await p.enqueue([pdf('llava.pdf', 2, 5)]));
    const [done] = await p.wait([docId!], 30_000);
    expect(done!.record).toMatchObject({ state: 'written', done: 2, failed: 0 });
    // A MODEL neither listed nor taken by the chat is refused at once, naming what is served.
    const err = await p.startWorker({ engineUrl: fake.url, model: 'llama', engineStartTimeoutMs: 20_000 }).then(
      (w) => ((worker = w), null),
      (e: unknown) => e,
    );
    expect(isDocbatchError(err) && err.code).toBe('WORKER_UNFIT');
    expect(String((err as Error).message)).toMatch(/^model: MODEL "llama" is not served by the engine \(it serves "llava:latest"\)/);
  }, 60_000);

  it('a gateway whose /health refuses our key (401): a dropped connection is waited out on /v1/models, not forever', async () => {
    let dropped = 0;
    fake = await startScripted(async (_req, res, seen) => {
      if (seen.path === '/health') return json(res, 401, { error: { message: 'Authentication Error, admin only route', type: 'auth_error', param: 'None', code: '401' } });
      if (seen.path === '/v1/chat/completions' && seen.headers['x-request-id'] !== 'docbatch-image-probe' && dropped++ < 2) return res.destroy();
      const r = await fetch(`${p.engine.url}${seen.path}`, { method: seen.method, headers: { 'content-type': 'application/json' }, ...(seen.method === 'POST' ? { body: seen.body } : {}) });
      return json(res, r.status, await r.text());
    });
    worker = await p.startWorker({ engineUrl: fake.url });
    const [docId] = acceptedIds(await p.enqueue([pdf('health-401.pdf', 3, 6)]));
    const [done] = await p.wait([docId!], 30_000);
    expect(done!.record).toMatchObject({ state: 'written', done: 3, failed: 0 });
  }, 60_000);

  it('refuses to start at once when ENGINE_URL redirects (http to https, a moved gateway), naming where to', async () => {
    fake = await startScripted((_req, res, seen) => {
      res.writeHead(301, { location: `https://gateway.example${seen.path}`, 'content-type': 'text/html' });
      res.end('<html><head><title>301 Moved Permanently</title></head></html>');
    });
    for (const model of [undefined, 'm']) {
      const started = performance.now();
      // A long start timeout: a redirect is not an engine still loading, so nothing waits for it.
      const err = await p.startWorker({ engineUrl: fake.url, model, engineStartTimeoutMs: 60_000 }).then(
        (w) => ((worker = w), null),
        (e: unknown) => e,
      );
      expect(isDocbatchError(err) && err.code, String(model)).toBe('WORKER_UNFIT');
      expect(String((err as Error).message)).toMatch(/redirects to https:\/\/gateway\.example\/v1\/.*set ENGINE_URL/);
      expect(performance.now() - started).toBeLessThan(10_000);
    }
  }, 60_000);

  it('refuses to start when ENGINE_URL has a path the server does not have, saying so', async () => {
    fake = await startScripted((_req, res) => json(res, 404, { detail: 'Not Found' }));
    for (const model of [undefined, 'm']) {
      const started = performance.now();
      const err = await p.startWorker({ engineUrl: `${fake.url}/openai`, model, engineStartTimeoutMs: 3000 }).then(
        (w) => ((worker = w), null),
        (e: unknown) => e,
      );
      expect(isDocbatchError(err) && err.code, String(model)).toBe('WORKER_UNFIT');
      expect(String((err as Error).message)).toContain(`${fake.url}/openai/v1/`);
      expect(String((err as Error).message)).toMatch(/ENGINE_URL must be the server's root/);
      // Said in the message, at ENGINE_START_TIMEOUT_MS (3 s here; asked again until then, in case
      // a gateway is restarting), not "no answer".
      expect(performance.now() - started).toBeLessThan(10_000);
    }
  }, 60_000);
});
