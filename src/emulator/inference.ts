/**
 * POST /v1/chat/completions, /v1/chat/completions/batch and /v1/completions: validate like vLLM,
 * turn the request into engine sequences, wait for them (or stream them), answer. What each
 * sequence answers (free text, structured output, first-sight flaws) is answers.ts's; a paid
 * endpoint's limits are rate-limit.ts's.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ApiContext } from './context.ts';
import type { Faults } from './options.ts';
import type { SeqFailure, SeqHandle, SeqResult } from './engine.ts';
import { rejectNeedles } from './answer-options.ts';
import type { AnswerPlan } from './answers.ts';
import { ApiError, badRequest, contextTooLong, contextTooLongAtLeast, cudaOom, engineDead, errorBody, modelNotFound, rejected, serverBusy } from './errors.ts';
import { ClientGone, readJsonObject, sendEvent, sendJson, startEvents } from './http.ts';
import { prepareChat, prepareCompletion, type PreparedPrompt } from './prompt.ts';
import { outputLength, replyHeader } from './reply.ts';
import { asSupported, outputFormatOf, promptedFormat, type OutputFormat } from './structured.ts';
import { filteredAnswer, filteredBy } from './content-filter.ts';

type Endpoint = 'chat' | 'batch' | 'completions';

interface SeqPlan {
  prompt: PreparedPrompt;
  outputTokens: number;
  finish: 'stop' | 'length';
  content: string;
  answer: AnswerPlan;
}

/** Watches one exchange for the client going away. */
class Exchange {
  aborted = false;
  private readonly listeners: (() => void)[] = [];

  constructor(ctx: ApiContext, res: ServerResponse) {
    res.on('close', () => {
      if (res.writableEnded) return;
      this.aborted = true;
      ctx.counts.aborted++;
      for (const f of this.listeners.splice(0)) f();
    });
  }

  onAbort(f: () => void): void {
    if (this.aborted) f();
    else this.listeners.push(f);
  }
}

export function sendError(ctx: ApiContext, res: ServerResponse, err: ApiError): void {
  ctx.counts.errors[err.kind]++;
  const as200 = ctx.faults().errorsAs200 && err.kind !== 'not_found' && err.kind !== 'unauthorized';
  sendJson(res, as200 ? 200 : err.status, errorBody(err, ctx.faults().errorStyle), { ...err.headers });
}

export function checkModel(ctx: ApiContext, model: unknown): void {
  if (model === undefined || model === null || model === ctx.options.model) return;
  throw modelNotFound(typeof model === 'string' ? model : JSON.stringify(model));
}

/** max_tokens after defaults, or the context-length 400. */
function outputBudget(ctx: ApiContext, promptTokens: number, requested: unknown, fallback: number | 'rest'): number {
  const max = ctx.options.maxModelLen;
  if (requested === undefined || requested === null) {
    if (fallback === 'rest') {
      if (promptTokens >= max) throw contextTooLong(max, 0, promptTokens);
      return max - promptTokens;
    }
    requested = fallback;
  }
  if (typeof requested !== 'number' || !Number.isSafeInteger(requested) || requested < 1) {
    throw badRequest(`max_tokens must be at least 1, got ${JSON.stringify(requested)}.`, 'max_tokens');
  }
  if (promptTokens + requested > max) throw ctx.faults().contextLowerBound ? contextTooLongAtLeast(max, requested) : contextTooLong(max, requested, promptTokens);
  return requested;
}

function planSeq(ctx: ApiContext, prompt: PreparedPrompt, budget: number, format: OutputFormat | null): SeqPlan {
  const t = ctx.timing();
  const natural = outputLength(prompt.seed, t);
  const header = replyHeader(ctx.options.model, prompt);
  const answer = ctx.answers.plan({ model: ctx.options.model, prompt, budget, natural, header, format, faults: ctx.faults() });
  return { prompt, outputTokens: answer.outputTokens, finish: answer.finish, content: answer.content, answer };
}

type CompletionPrompt = string | number[];

function completionPrompts(ctx: ApiContext, prompt: unknown): CompletionPrompt[] {
  const isIds = (v: unknown): v is number[] => Array.isArray(v) && v.length > 0 && v.every((x) => Number.isSafeInteger(x) && x >= 0);
  if (typeof prompt === 'string') return [prompt];
  if (Array.isArray(prompt) && ctx.faults().rejectListPrompts) {
    throw badRequest('json: cannot unmarshal array into Go struct field CompletionRequest.prompt of type string');
  }
  if (isIds(prompt)) return [prompt];
  if (Array.isArray(prompt) && prompt.length > 0) {
    if (prompt.every((p) => typeof p === 'string')) return prompt as string[];
    if (prompt.every(isIds)) return prompt as number[][];
  }
  throw badRequest('prompt must be a string, a non-empty list of strings, or token ids.', 'prompt');
}

/** The reject rule's string that one of the prompts contains, if any. */
function rejectedBy(ctx: ApiContext, prompts: readonly PreparedPrompt[]): string | undefined {
  const rule = ctx.faults().reject;
  if (!rule) return undefined;
  return rejectNeedles(rule).find((needle) => prompts.some((p) => p.texts.some((t) => t.includes(needle))));
}

/** The bearer token of a request ('' without one): what rate limits are counted per. */
function apiKeyOf(req: IncomingMessage): string {
  const auth = req.headers.authorization;
  return typeof auth === 'string' && /^bearer /i.test(auth) ? auth.slice(7).trim() : '';
}

function shouldHang(ctx: ApiContext, number: number, prompts: readonly PreparedPrompt[]): boolean {
  const rule = ctx.faults().hang;
  if (!rule) return false;
  if (rule.every !== undefined && number % rule.every === 0) return true;
  const needle = rule.matchText;
  return needle !== undefined && prompts.some((p) => p.texts.some((t) => t.includes(needle)));
}

/** Submits one engine sequence per plan; resolves when all finish, rejects on the first failure. */
function runSequences(
  ctx: ApiContext,
  exchange: Exchange,
  plans: readonly SeqPlan[],
  hung: boolean,
  onToken?: (index: number, generated: number) => void,
): Promise<SeqResult[]> {
  return new Promise((resolve, reject) => {
    const results: SeqResult[] = [];
    const handles: SeqHandle[] = [];
    let left = plans.length;
    let settled = false;
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      for (const h of handles) h.abort();
      reject(err);
    };
    const engine = ctx.engine();
    plans.forEach((plan, i) => {
      ctx.counts.sequences++;
      handles.push(
        engine.submit({
          promptTokens: plan.prompt.promptTokens,
          images: plan.prompt.imageCount,
          outputTokens: plan.outputTokens,
          finishReason: plan.finish,
          hung,
          onToken: onToken && ((generated) => onToken(i, generated)),
          onDone: (r) => {
            results[i] = r;
            if (--left === 0 && !settled) {
              settled = true;
              resolve(results);
            }
          },
          onFail: (why: SeqFailure) => fail(why === 'oom' ? cudaOom() : engineDead()),
        }),
      );
    });
    exchange.onAbort(() => fail(new ClientGone(null)));
  });
}

function requestId(req: IncomingMessage, prefix: string): string {
  const given = req.headers['x-request-id'];
  const id = typeof given === 'string' && given !== '' ? given : randomUUID().replaceAll('-', '');
  return `${prefix}-${id}`;
}

function usage(plans: readonly SeqPlan[]): Record<string, unknown> {
  const prompt = plans.reduce((n, p) => n + p.prompt.promptTokens, 0);
  const completion = plans.reduce((n, p) => n + p.outputTokens, 0);
  return { prompt_tokens: prompt, total_tokens: prompt + completion, completion_tokens: completion, prompt_tokens_details: null };
}

/**
 * The answer's `usage` field as the faults say (omitUsage, omitUsageShare): `{ usage }` as vLLM
 * sends it, `{}` (absent), `{ usage: null }`, or its counts null. Which answers go without is
 * decided by the request's X-Request-Id (else its content), so the same request always does.
 */
function usageField(faults: Faults, requestKey: string, plans: readonly SeqPlan[]): { usage?: unknown; omitted: boolean } {
  const mode = faults.omitUsage;
  const u = createHash('sha256').update(`omit-usage\u0000${requestKey}`).digest().readUInt32BE(0) / 2 ** 32;
  if (mode === null || u >= faults.omitUsageShare) return { usage: usage(plans), omitted: false };
  if (mode === 'absent') return { omitted: true };
  if (mode === 'null') return { usage: null, omitted: true };
  return { usage: { prompt_tokens: null, total_tokens: null, completion_tokens: null, prompt_tokens_details: null }, omitted: true };
}

function choice(endpoint: Endpoint, plan: SeqPlan, index: number): Record<string, unknown> {
  if (endpoint === 'completions') {
    return { index, text: plan.content, logprobs: null, finish_reason: plan.finish, stop_reason: null, prompt_logprobs: null };
  }
  const message = { role: 'assistant', content: plan.content, refusal: null, annotations: null, audio: null, function_call: null, tool_calls: [], reasoning_content: null };
  return { index, message, logprobs: null, finish_reason: plan.finish, stop_reason: null };
}

/** Streams the plans as chunks, splitting each reply into words spread over its tokens. */
function streamer(endpoint: Endpoint, res: ServerResponse, base: Record<string, unknown>, plans: readonly SeqPlan[]) {
  const object = endpoint === 'completions' ? 'text_completion' : 'chat.completion.chunk';
  const pieces = plans.map((p) => p.content.match(/\s*\S+/gu) ?? []);
  const sent = plans.map(() => 0);
  const chunk = (index: number, text: string, finish: string | null, role = false): Record<string, unknown> => ({
    ...base,
    object,
    choices: [
      endpoint === 'completions'
        ? { index, text, logprobs: null, finish_reason: finish, stop_reason: null }
        : { index, delta: role ? { role: 'assistant', content: text } : { content: text }, logprobs: null, finish_reason: finish, stop_reason: null },
    ],
  });
  const upTo = (index: number, count: number, finish: string | null): void => {
    const words = pieces[index] ?? [];
    const from = sent[index] ?? 0;
    if (count <= from && finish === null) return;
    sent[index] = Math.max(from, count);
    sendEvent(res, chunk(index, words.slice(from, count).join(''), finish));
  };
  return {
    start(): void {
      if (endpoint !== 'completions') plans.forEach((_, i) => sendEvent(res, chunk(i, '', null, true)));
    },
    token(index: number, generated: number): void {
      const plan = plans[index] as SeqPlan;
      upTo(index, Math.floor(((pieces[index]?.length ?? 0) * generated) / plan.outputTokens), null);
    },
    finish(includeUsage: boolean, field: { usage?: unknown; omitted: boolean }): void {
      plans.forEach((plan, i) => upTo(i, pieces[i]?.length ?? 0, plan.finish));
      if (includeUsage && 'usage' in field) sendEvent(res, { ...base, object, choices: [], usage: field.usage });
      sendEvent(res, '[DONE]');
    },
  };
}

/** The shared path of the three inference endpoints. */
export async function handleInference(ctx: ApiContext, endpoint: Endpoint, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const number = ++ctx.counts.requests;
  const exchange = new Exchange(ctx, res);
  let streaming = false;
  try {
    const body = await readJsonObject(req, ctx.options.maxBodyBytes);
    checkModel(ctx, body.model);
    if (ctx.state() !== 'alive') throw engineDead();
    const forced = ctx.faults().forceStream && body.stream !== true;
    streaming = (body.stream === true || forced) && endpoint !== 'batch';
    const format = outputFormatOf(asSupported(body, ctx.faults().structuredOutputs));

    let prompts: PreparedPrompt[];
    if (endpoint === 'chat') prompts = [await prepareChat(body.messages, ctx.options)];
    else if (endpoint === 'batch') {
      if (!Array.isArray(body.messages) || body.messages.length === 0) throw badRequest('messages must be a non-empty list of conversations.', 'messages');
      prompts = await Promise.all(body.messages.map((m, i) => prepareChat(m, ctx.options, `messages[${i}]`)));
    } else prompts = completionPrompts(ctx, body.prompt).map(prepareCompletion);
    if (exchange.aborted) return;
    if (ctx.state() !== 'alive') throw engineDead();

    const requested = endpoint === 'completions' ? body.max_tokens : (body.max_completion_tokens ?? body.max_tokens);
    // Ollama past num_ctx: the prompt is cut to the context, never refused, and answered (it shifts its context to generate).
    const cut = ctx.faults().truncatePrompts;
    if (cut) prompts = prompts.map((p) => (p.promptTokens > ctx.options.maxModelLen ? { ...p, promptTokens: ctx.options.maxModelLen } : p));
    const budgets = prompts.map((p) => (cut ? (typeof requested === 'number' && requested > 0 ? requested : 128) : outputBudget(ctx, p.promptTokens, requested, endpoint === 'completions' ? 16 : 'rest')));
    // A paid endpoint counts the request before its engine sees it; the engine then may refuse it.
    const limit = ctx.faults().rateLimit;
    const tokens = prompts.reduce((n, p, i) => n + p.promptTokens + (budgets[i] ?? 0), 0);
    const rateHeaders = limit ? ctx.rateLimiter.admit(limit, apiKeyOf(req), ctx.options.model, tokens) : {};
    const rejectedText = rejectedBy(ctx, prompts);
    if (rejectedText !== undefined) {
      throw rejected(ctx.faults().reject?.message ?? `The request was rejected: its text contains ${JSON.stringify(rejectedText)}.`);
    }
    const filter = ctx.faults().contentFilter;
    if (endpoint === 'chat' && filter && filteredBy(filter, prompts) !== undefined) {
      // Withheld by the endpoint's filter, with a 200 (Azure OpenAI): the engine never sees it.
      const id = requestId(req, 'chatcmpl');
      const base = { id, created: Math.floor(Date.now() / 1000), model: ctx.options.model };
      const headers = { 'x-request-id': id.slice(id.indexOf('-') + 1), ...rateHeaders };
      ctx.counts.filtered++;
      if (streaming) {
        startEvents(res, headers);
        sendEvent(res, { ...base, ...filteredAnswer(filter, true, 0) });
        sendEvent(res, '[DONE]');
        res.end();
      } else sendJson(res, 200, { ...base, ...filteredAnswer(filter, false, prompts[0]!.promptTokens) }, headers);
      return;
    }
    // A server that ignores response_format: the model still follows a schema its prompt gives.
    const prompted = ctx.faults().structuredOutputs === 'ignored';
    const plans = prompts.map((p, i) => planSeq(ctx, p, budgets[i] as number, format ?? (prompted ? promptedFormat(p.texts) : null)));
    const maxPending = ctx.faults().maxPending;
    if (maxPending !== null && ctx.engine().pending + plans.length > maxPending) throw serverBusy();
    const hung = shouldHang(ctx, number, prompts);
    if (hung) ctx.counts.hung++;

    const id = requestId(req, endpoint === 'completions' ? 'cmpl' : 'chatcmpl');
    const base = { id, object: '', created: Math.floor(Date.now() / 1000), model: ctx.options.model };
    const headers = { 'x-request-id': id.slice(id.indexOf('-') + 1), ...rateHeaders };
    const given = req.headers['x-request-id'];
    const usageOf = () => usageField(ctx.faults(), typeof given === 'string' && given !== '' ? `id:${given}` : `content:${plans.map((p) => p.answer.contentKey).join(',')}`, plans);
    if (streaming) {
      const stream = streamer(endpoint, res, base, plans);
      startEvents(res, headers);
      stream.start();
      await runSequences(ctx, exchange, plans, hung, stream.token);
      const options = body.stream_options as { include_usage?: unknown } | undefined;
      const field = usageOf();
      stream.finish(options?.include_usage === true || forced, field);
      res.end();
      if (field.omitted) ctx.counts.usageOmitted++;
    } else {
      await runSequences(ctx, exchange, plans, hung);
      const object = endpoint === 'completions' ? 'text_completion' : 'chat.completion';
      const { omitted, ...field } = usageOf();
      sendJson(res, 200, { ...base, object, choices: plans.map((p, i) => choice(endpoint, p, i)), ...field }, headers);
      if (omitted) ctx.counts.usageOmitted++;
    }
    ctx.counts.completed++;
    plans.forEach((p, i) => ctx.answers.delivered(p.answer, id, i));
  } catch (err) {
    if (err instanceof ClientGone || exchange.aborted) return;
    if (!(err instanceof ApiError)) throw err;
    if (streaming && res.headersSent) {
      ctx.counts.errors[err.kind]++;
      sendEvent(res, errorBody(err, ctx.faults().errorStyle));
      sendEvent(res, '[DONE]');
      res.end();
      return;
    }
    sendError(ctx, res, err);
  }
}
