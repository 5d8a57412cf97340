/**
 * What real servers and the proxies in front of them do to the bytes of an answer, met by a real
 * worker over real HTTP: a proxy in front of the emulator rewrites each answer as a test says.
 * The worker runs with ATTEMPTS=1, so an answer it cannot read (a retry) fails its page at once.
 *
 * - every answer gzip-compressed, unasked (a proxy with `gzip on`, a gateway that always
 *   compresses): undici's `request` does not decode it;
 * - junk after the JSON (a proxy appending a newline and a comment or a NUL);
 * - answers vLLM finished with "abort" (it aborted them itself: paused, draining, shutting down);
 * - a reasoning model served without a reasoning parser: its thinking inline before the answer;
 * - a proxy's body limit (nginx 413, an HTML page): the page rendered smaller, REQUEST_TOO_LARGE
 *   at the last size;
 * - Ollama answering a prompt over num_ctx about the part it kept (prompt_tokens = num_ctx, no
 *   error): the page rendered smaller, CONTEXT_TOO_LONG at the last size;
 * - a max_tokens too large for the context (the prompt fits), refused in the words and by the
 *   rule of each server: the page is asked again within the room named, and written; a context
 *   only the refusal names is remembered.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import type { InferWorker } from '../../src/infer/worker.ts';
import { startScripted, type Scripted, type Seen } from '../engine/scripted-server.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

let p: Pipeline;
let worker: InferWorker | null = null;
let proxy: Scripted | null = null;

beforeAll(async () => {
  p = await startPipeline({ file: import.meta.filename, worker: false, config: { engineStartTimeoutMs: 5_000, attempts: 1 } });
});
afterEach(async () => {
  await worker?.close({ deadlineMs: 2000 });
  worker = null;
  await proxy?.close();
  proxy = null;
});
afterAll(async () => {
  await p?.stop();
});

function pdf(name: string, pages: number, seed: number): string {
  const file = join(p.dir, name);
  writeFileSync(file, numberedPdf(pages, seed));
  return file;
}

interface Upstream {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** A proxy in front of the emulator; `rewrite` turns the emulator's answer into what the worker gets. */
async function startProxy(rewrite: (seen: Seen, upstream: Upstream) => Upstream): Promise<Scripted> {
  return startScripted(async (_req, res: ServerResponse, seen) => {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(seen.headers)) if (typeof v === 'string' && !['host', 'content-length', 'connection'].includes(k)) headers[k] = v;
    const r = await fetch(`${p.engine.url}${seen.path}`, { method: seen.method, headers, ...(seen.method === 'POST' ? { body: seen.body } : {}) });
    const upstream: Upstream = { status: r.status, headers: { 'content-type': r.headers.get('content-type') ?? 'text/plain' }, body: Buffer.from(await r.arrayBuffer()) };
    const out = rewrite(seen, upstream);
    res.writeHead(out.status, { ...out.headers, 'content-length': out.body.length });
    res.end(out.body);
  });
}

/** A proxy whose first `count` chat answers come back cut short with finish_reason "abort" (vLLM paused or draining); `onAbort` counts them. */
function abortingProxy(count: number, onAbort: () => void): Promise<Scripted> {
  let aborted = 0;
  return startProxy((seen, up) => {
    if (seen.path !== '/v1/chat/completions' || seen.headers['x-request-id'] === 'docbatch-image-probe' || aborted >= count) return up;
    aborted++;
    onAbort();
    const answer = JSON.parse(up.body.toString('utf8')) as { choices: Array<{ message: { content: string }; finish_reason: string }> };
    for (const c of answer.choices) {
      c.message.content = c.message.content.slice(0, 20);
      c.finish_reason = 'abort';
    }
    return { ...up, body: Buffer.from(JSON.stringify(answer)) };
  });
}

/** Runs a document through a worker sending to the proxy; returns the emulator's stats from before the document (after the worker's start-up probe). */
async function runPages(name: string, pages: number, seed: number): Promise<ReturnType<Pipeline['engine']['stats']>> {
  worker = await p.startWorker({ engineUrl: proxy!.url });
  const before = p.engine.stats();
  const [docId] = acceptedIds(await p.enqueue([pdf(name, pages, seed)]));
  const [done] = await p.wait([docId!], 60_000);
  expect(done!.record).toMatchObject({ state: 'written', done: pages, failed: 0 });
  return before;
}

describe('a worker reads what proxies do to the bytes of an answer', () => {
  it('answers finished "abort" (vLLM paused or draining): sent again, no attempt used, every page written, their tokens counted', async () => {
    let aborted = 0;
    proxy = await abortingProxy(6, () => aborted++);
    // The worker's start-up image probe is no document's.
    const s0 = await runPages('abort.pdf', 4, 11);
    expect(aborted).toBe(6);
    // An aborted answer reports the tokens the engine processed for it (vLLM sends its usage).
    const s = p.engine.stats();
    const report = JSON.parse(readFileSync(join(p.config.outDir, 'abort.report.json'), 'utf8')) as Record<string, unknown>;
    expect(report).toMatchObject({ prompt_tokens: s.promptTokens - s0.promptTokens, completion_tokens: s.generationTokens - s0.generationTokens });
  }, 60_000);

  it('a unit vLLM aborted five times while its /health stayed up (paused again and again) is no poison: written', async () => {
    // An abort is the engine's own decision (a pause, a drain), not a death this unit caused:
    // counted as an outage of the unit's sends, never as one "while it was alone".
    let aborted = 0;
    proxy = await abortingProxy(5, () => aborted++);
    await runPages('aborted-alone.pdf', 1, 12);
    expect(aborted).toBe(5);
  }, 60_000);

  it('every answer gzip-compressed although the worker did not ask: every page written', async () => {
    let compressed = 0;
    proxy = await startProxy((_seen, up) => {
      if (up.body.length === 0) return up;
      compressed++;
      return { ...up, headers: { ...up.headers, 'content-encoding': 'gzip' }, body: gzipSync(up.body) };
    });
    await runPages('gzip.pdf', 3, 1);
    expect(compressed).toBeGreaterThan(3);
  }, 60_000);

  it('ENGINE_URL with a path prefix, /v1 and a trailing slash, and an API key: every request carries both', async () => {
    const paths: string[] = [];
    const keys = new Set<string | undefined>();
    proxy = await startProxy((seen, up) => {
      paths.push(seen.path);
      keys.add(seen.headers.authorization);
      return up;
    });
    const forward = proxy.handler;
    proxy.handler = (req, res, seen) => {
      // A reverse proxy that serves the engine under /gpu/vllm and nothing else.
      if (!seen.path.startsWith('/gpu/vllm/')) return res.writeHead(404, { 'content-type': 'text/html' }).end('<html><title>404 Not Found</title></html>');
      return forward(req, res, { ...seen, path: seen.path.slice('/gpu/vllm'.length) });
    };
    worker = await p.startWorker({ engineUrl: `${proxy.url}/gpu/vllm/v1/`, engineApiKey: 'sk-test' });
    const [docId] = acceptedIds(await p.enqueue([pdf('prefix.pdf', 2, 12)]));
    const [done] = await p.wait([docId!], 60_000);
    expect(done!.record).toMatchObject({ state: 'written', done: 2, failed: 0 });
    expect(paths).toContain('/v1/chat/completions');
    expect(paths).toContain('/v1/models');
    expect([...keys]).toEqual(['Bearer sk-test']);
  }, 60_000);

  it('answers with content null and all the text in reasoning_content: the unit fails saying the reasoning took the room', async () => {
    proxy = await startProxy((seen, up) => {
      if (seen.path !== '/v1/chat/completions' || seen.headers['x-request-id'] === 'docbatch-image-probe') return up;
      const answer = JSON.parse(up.body.toString('utf8')) as { choices: Array<{ message: Record<string, unknown>; finish_reason: string }> };
      for (const c of answer.choices) {
        c.message = { role: 'assistant', content: null, reasoning_content: `Let me think. ${String(c.message.content)}` };
        c.finish_reason = 'length';
      }
      return { ...up, body: Buffer.from(JSON.stringify(answer)) };
    });
    worker = await p.startWorker({ engineUrl: proxy.url });
    // A chat summary: no text layer to fall back to.
    const file = join(p.dir, 'thinking.jsonl');
    writeFileSync(file, `${JSON.stringify({ id: 'c1', title: 'A chat', messages: [{ role: 'user', content: 'What is two and two?' }, { role: 'assistant', content: 'Four.' }] })}\n`);
    const [docId] = acceptedIds(await p.enqueue([file]));
    await p.wait([docId!], 60_000);
    const [line] = readFileSync(join(p.config.outDir, 'thinking.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { error: { code: string; message: string } });
    expect(line!.error.code).toBe('OUTPUT_TRUNCATED');
    expect(line!.error.message).toMatch(/reasoning_content/);
  }, 60_000);

  it('a reasoning model served without a reasoning parser (<think>...</think> inline in content): the output holds the answer alone', async () => {
    let thought = 0;
    proxy = await startProxy((seen, up) => {
      if (seen.path !== '/v1/chat/completions' || seen.headers['x-request-id'] === 'docbatch-image-probe') return up;
      const answer = JSON.parse(up.body.toString('utf8')) as { choices: Array<{ message: { content: string } }> };
      for (const c of answer.choices) c.message.content = `<think>\nThe user wants the page transcribed. Let me read it.\n</think>\n\n${c.message.content}`;
      thought++;
      return { ...up, body: Buffer.from(JSON.stringify(answer)) };
    });
    await runPages('inline-think.pdf', 2, 13);
    expect(thought).toBeGreaterThanOrEqual(2);
    const md = readFileSync(join(p.config.outDir, 'inline-think.md'), 'utf8');
    expect(md).not.toMatch(/think>|Let me read it/);
    expect(md.trim()).not.toBe('');
  }, 60_000);

  /** nginx's refusal of a body over client_max_body_size. */
  const NGINX_413 = { status: 413, headers: { 'content-type': 'text/html' }, body: Buffer.from('<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n<body>\r\n<center><h1>413 Request Entity Too Large</h1></center>\r\n<hr><center>nginx/1.24.0</center>\r\n</body>\r\n</html>\r\n') };

  it('a proxy that refuses the body of a page as too large (413): the page is rendered smaller and written', async () => {
    // The body limit lies just under the first page's body: its smaller render passes.
    let limit = Number.POSITIVE_INFINITY;
    const sizes: number[] = [];
    proxy = await startProxy((seen, up) => {
      if (seen.path !== '/v1/chat/completions' || seen.headers['x-request-id'] === 'docbatch-image-probe') return up;
      const bytes = Buffer.byteLength(seen.body);
      sizes.push(bytes);
      if (limit === Number.POSITIVE_INFINITY) limit = bytes - 1;
      return bytes > limit ? NGINX_413 : up;
    });
    await runPages('body-limit.pdf', 1, 14);
    expect(sizes).toHaveLength(2);
    expect(sizes[1]!).toBeLessThan(sizes[0]!);
  }, 60_000);

  it('a proxy that refuses every page body as too large: tried at each smaller size, then REQUEST_TOO_LARGE naming what to change', async () => {
    let refused = 0;
    proxy = await startProxy((seen, up) => {
      if (seen.path !== '/v1/chat/completions' || seen.headers['x-request-id'] === 'docbatch-image-probe') return up;
      refused++;
      return NGINX_413;
    });
    worker = await p.startWorker({ engineUrl: proxy.url });
    const [docId] = acceptedIds(await p.enqueue([pdf('body-limit-all.pdf', 1, 15)]));
    await p.wait([docId!], 60_000);
    const report = JSON.parse(readFileSync(join(p.config.outDir, 'body-limit-all.report.json'), 'utf8')) as { failed: Array<{ code: string; message: string }> };
    expect(report.failed.map((f) => f.code)).toEqual(['REQUEST_TOO_LARGE']);
    expect(report.failed[0]!.message).toMatch(/512 px.*client_max_body_size.*IMAGE_SIZE.*IMAGE_FORMAT=jpeg/);
    // 1288, then 1024, 768 and 512 px: once each.
    expect(refused).toBe(4);
  }, 60_000);

  /**
   * Ollama in front of the emulator: /v1/models names no context, /api/ps says num_ctx, and a
   * prompt over it is answered all the same, usage.prompt_tokens = num_ctx (it kept a part).
   * `numCtx` is decided from the first page's prompt tokens.
   */
  async function ollamaCutting(numCtx: (firstPrompt: number) => number): Promise<{ prompts: number[]; cut: () => number }> {
    let ctx: number | null = null;
    let cut = 0;
    const prompts: number[] = [];
    proxy = await startProxy((seen, up) => {
      if (seen.path === '/api/ps') return { status: 200, headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify({ models: [{ name: 'x:latest', model: 'x:latest', context_length: ctx ?? 2048 }] })) };
      if (seen.path === '/v1/models') {
        const models = JSON.parse(up.body.toString('utf8')) as { data: Array<Record<string, unknown>> };
        for (const m of models.data) delete m.max_model_len;
        return { ...up, body: Buffer.from(JSON.stringify(models)) };
      }
      if (seen.path !== '/v1/chat/completions' || seen.headers['x-request-id'] === 'docbatch-image-probe' || up.status !== 200) return up;
      const answer = JSON.parse(up.body.toString('utf8')) as { usage: { prompt_tokens: number; total_tokens: number } };
      prompts.push(answer.usage.prompt_tokens);
      ctx ??= numCtx(answer.usage.prompt_tokens);
      if (answer.usage.prompt_tokens <= ctx) return up;
      cut++;
      answer.usage.prompt_tokens = ctx;
      return { ...up, body: Buffer.from(JSON.stringify(answer)) };
    });
    return { prompts, cut: () => cut };
  }

  it('Ollama cutting a page prompt over num_ctx without an error: the page is rendered smaller and written, not the answer about a part', async () => {
    const { prompts, cut } = await ollamaCutting((first) => Math.floor(first / 1.25));
    await runPages('ollama-cut.pdf', 1, 16);
    expect(cut()).toBe(1);
    expect(prompts).toHaveLength(2);
  }, 60_000);

  it('Ollama cutting every size of a page: CONTEXT_TOO_LONG naming num_ctx, not an answer about a part', async () => {
    const { prompts, cut } = await ollamaCutting(() => 200);
    worker = await p.startWorker({ engineUrl: proxy!.url });
    const [docId] = acceptedIds(await p.enqueue([pdf('ollama-cut-all.pdf', 1, 17)]));
    await p.wait([docId!], 60_000);
    const report = JSON.parse(readFileSync(join(p.config.outDir, 'ollama-cut-all.report.json'), 'utf8')) as { failed: Array<{ code: string; message: string }> };
    expect(report.failed.map((f) => f.code)).toEqual(['CONTEXT_TOO_LONG']);
    expect(report.failed[0]!.message).toMatch(/prompt_tokens 200.*OLLAMA_CONTEXT_LENGTH/);
    // 1288, then 1024, 768 and 512 px.
    expect([prompts.length, cut()]).toEqual([4, 4]);
  }, 60_000);

  it('junk after the JSON of every chat answer: every page written', async () => {
    proxy = await startProxy((seen, up) =>
      seen.path === '/v1/chat/completions' ? { ...up, body: Buffer.concat([up.body, Buffer.from('\n\u0000<!-- served by proxy -->\n')]) } : up,
    );
    await runPages('junk.pdf', 3, 2);
  }, 60_000);

  // Context 2000, a prompt of 1700 tokens (as the server counts it); each refuses as it does.
  const CONTEXT = 2000;
  const PROMPT = 1700;
  const refusals: Record<string, { fits: (max: number) => boolean; status: number; body: (max: number) => unknown }> = {
    // vLLM 0.16-0.17 (prompt + max_tokens <= context)
    'vLLM 0.16 "You passed N input tokens"': {
      fits: (max) => PROMPT + max <= CONTEXT,
      status: 400,
      body: (max) => ({ error: { message: `You passed ${PROMPT} input tokens and requested ${max} output tokens. However, the model's context length is only ${CONTEXT} tokens, resulting in a maximum input length of ${CONTEXT - max} tokens. Please reduce the length of the input prompt. (parameter=input_tokens, value=${PROMPT})`, type: 'BadRequestError', param: 'input_tokens', code: 400 } }),
    },
    // SGLang refuses prompt + max_new_tokens >= context (tokenizer_manager._validate_one_request)
    'SGLang "Requested token count exceeds"': {
      fits: (max) => PROMPT + max < CONTEXT,
      status: 400,
      body: (max) => ({ object: 'error', message: `Requested token count exceeds the model's maximum context length of ${CONTEXT} tokens. You requested a total of ${PROMPT + max} tokens: ${PROMPT} tokens from the input messages and ${max} tokens for the completion. Please reduce the number of tokens in the input messages or the completion to fit within the limit.`, type: 'BadRequestError', param: null, code: 400 }),
    },
    // TGI's messages API: 422, {"error": "...", "error_type": "validation"}
    'TGI 422 "`inputs` tokens + `max_new_tokens` must be <="': {
      fits: (max) => PROMPT + max <= CONTEXT,
      status: 422,
      body: (max) => ({ error: `Input validation error: \`inputs\` tokens + \`max_new_tokens\` must be <= ${CONTEXT}. Given: ${PROMPT} \`inputs\` tokens and ${max} \`max_new_tokens\``, error_type: 'validation' }),
    },
  };
  for (const [name, refusal] of Object.entries(refusals)) {
    it(`max_tokens past the context, refused as ${name}: asked again within the room, every page written`, async () => {
      const sent: number[] = [];
      proxy = await startProxy((seen, up) => {
        if (seen.path !== '/v1/chat/completions' || seen.headers['x-request-id'] === 'docbatch-image-probe') return up;
        const max = (JSON.parse(seen.body) as { max_tokens: number }).max_tokens;
        sent.push(max);
        if (refusal.fits(max)) return up;
        return { status: refusal.status, headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify(refusal.body(max))) };
      });
      const k = Object.keys(refusals).indexOf(name);
      await runPages(`room-${k}.pdf`, 2, 3 + k);
      expect(sent.filter((m) => refusal.fits(m)).length).toBe(2);
    }, 60_000);
  }

  it('max_tokens past a context /v1/models does not give, refused as "max_tokens=N cannot be greater than max_model_len=M": the context is learnt, every page written', async () => {
    const sent: number[] = [];
    proxy = await startProxy((seen, up) => {
      if (seen.path === '/v1/models') {
        const models = JSON.parse(up.body.toString('utf8')) as { data: Array<Record<string, unknown>> };
        for (const m of models.data) delete m.max_model_len; // a gateway's listing
        return { ...up, body: Buffer.from(JSON.stringify(models)) };
      }
      if (seen.path !== '/v1/chat/completions' || seen.headers['x-request-id'] === 'docbatch-image-probe') return up;
      const max = (JSON.parse(seen.body) as { max_tokens: number }).max_tokens;
      sent.push(max);
      if (max <= 3000) return up;
      const message = `max_tokens=${max} cannot be greater than max_model_len=max_total_tokens=3000. Please request fewer output tokens.`;
      return { status: 400, headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify({ error: { message, type: 'BadRequestError', param: 'max_tokens', code: 400 } })) };
    });
    await runPages('learn.pdf', 4, 9);
    expect(sent.filter((m) => m <= 3000).length).toBe(4);
  }, 60_000);
});
