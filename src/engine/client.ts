/**
 * Requests to an OpenAI-compatible server (vLLM first; SGLang, Ollama and others survive).
 *
 * What this client promises:
 * - every failure is an `EngineError` with a code from src/errors.ts (rules in classify.ts);
 * - a request that outlives `requestTimeoutMs`, or whose caller aborts, has its connection
 *   closed, and bodies are always read to the end (http.ts: the exchange itself, over its pool);
 * - it never retries: whether and when to retry is the worker's decision (src/errors.ts);
 * - it never sends an image by http(s) URL, only `data:` URLs (vLLM would fetch the URL).
 */
import { classifyEngineResponse, EngineError, ORIGIN_DOWN } from './classify.ts';
import { EngineHttp, normaliseUrl, type Answer } from './http.ts';
import { carriedError, carriedErrorStatus, checksEveryModel, readChatCompletion, readModels, readTokenCount } from './responses.ts';
import { LoadedContextProbe } from './loaded-context.ts';
import { underSignal } from './under-signal.ts';
import { answeredInProse, applyParams, learn, newModelParams, paramFix, structuredAnswered, type ModelParams } from './refused-params.ts';
import { modeOf } from './structured-fallback.ts';
import { assembleEventStream, isEventStream } from './sse.ts';
import { validateChat, validateMessages } from './validate.ts';
import { parseEngineMetrics } from './signals.ts';
import type { ChatMessage, ChatRequest, ChatResult, EngineHealth, EngineMetrics, ModelInfo } from './types.ts';
import { addCounts, type TokenCounts } from '../usage.ts';

export { classifyEngineResponse, classifyTransportError, EngineError, isEngineError } from './classify.ts';
export type * from './types.ts';

export interface EngineClientOptions {
  /** Base URL, with or without `/v1` (`http://127.0.0.1:8000`, `https://gpu/vllm/v1`). */
  url: string;
  /** Sent as `Authorization: Bearer <apiKey>` (vLLM `--api-key`). */
  apiKey?: string;
  /** The model sent with each request. @defaultValue the first id of `GET /v1/models` (cached) */
  model?: string;
  /** The whole request, body included. On expiry the connection is closed → ENGINE_TIMEOUT. @defaultValue 600_000 */
  requestTimeoutMs?: number;
  /** Establishing a TCP/TLS connection. @defaultValue 5_000 */
  connectTimeoutMs?: number;
  /** `/health`, `/metrics` and `/v1/models`, which must answer fast even under load. @defaultValue 10_000 */
  probeTimeoutMs?: number;
  /** Connection cap of the undici pool; keep it above the window's upper bound. @defaultValue 1024 */
  connections?: number;
  /** A larger response body fails with ENGINE_ERROR instead of filling memory. @defaultValue 64 MiB */
  maxResponseBytes?: number;
  /** Told once per model and setting when the endpoint refuses one and requests change to suit it (refused-params.ts). */
  onParamsChanged?: (sentence: string) => void;
}

const DEFAULTS = {
  requestTimeoutMs: 600_000,
  connectTimeoutMs: 5_000,
  probeTimeoutMs: 10_000,
  connections: 1024,
  maxResponseBytes: 64 * 1024 * 1024,
};

/** Resends of one chat request for settings the endpoint refused: the cap's name, the cap, two sampling settings, temperature 0, strict json_schema, the word JSON, three rungs of structured output, and an answer in prose to a field the endpoint ignores. */
const MAX_RESENDS = 11;

export interface ChatHooks {
  /** Runs before the request is sent again for a setting the endpoint refused (not before the first send). */
  beforeResend?: () => Promise<void>;
  /**
   * Told of each answer this call gets and does not return (a prose answer to a structured-output
   * field the endpoint ignores, sent again with the schema in the prompt), the moment it comes:
   * the engine processed its tokens, whether the resend then answers or fails. Without this hook
   * the answer returned carries them, and an error thrown after them loses them.
   */
  onUnreturned?: (usage: TokenCounts) => void;
}

export class EngineClient {
  readonly origin: string;
  /** Path prefix before `/v1`, `/health`, ... ('' for a server at the root). */
  readonly prefix: string;
  private readonly options: typeof DEFAULTS & Pick<EngineClientOptions, 'apiKey' | 'model' | 'onParamsChanged'>;
  /** Settings each model was found to refuse (refused-params.ts). */
  private readonly params = new Map<string, ModelParams>();
  /** The exchanges themselves (http.ts). */
  private readonly http: EngineHttp;
  private discovered: Promise<ModelInfo> | undefined;
  private knownModel: ModelInfo | undefined;
  private noHealthRoute = false;
  /** Why /metrics is not read any more (no route, not ours to read); null while it is. */
  private noMetrics: string | null = null;
  private noTokenize = false;
  /** Ollama's /api/ps, shared by concurrent callers; its failures remembered for a while. */
  private readonly loadedContext = new LoadedContextProbe(() => this.http.send('GET', '/api/ps', { timeoutMs: this.options.probeTimeoutMs, signal: undefined }));

  constructor(options: EngineClientOptions) {
    const { origin, prefix } = normaliseUrl(options.url);
    this.origin = origin;
    this.prefix = prefix;
    const given = stripUndefined(options);
    this.options = { ...DEFAULTS, ...given, apiKey: options.apiKey, model: options.model, onParamsChanged: options.onParamsChanged };
    for (const key of ['requestTimeoutMs', 'connectTimeoutMs', 'probeTimeoutMs', 'connections', 'maxResponseBytes'] as const) {
      const value = this.options[key];
      if (!Number.isInteger(value) || value <= 0) {
        throw new TypeError(`EngineClient option ${key} must be a positive integer, got ${String(value)}`);
      }
    }
    this.http = new EngineHttp({
      origin,
      prefix,
      apiKey: this.options.apiKey,
      connections: this.options.connections,
      connectTimeoutMs: this.options.connectTimeoutMs,
      maxResponseBytes: this.options.maxResponseBytes,
    });
  }

  /** `GET /v1/models`. */
  async models(signal?: AbortSignal): Promise<ModelInfo[]> {
    const answer = await this.http.send('GET', '/v1/models', { timeoutMs: this.options.probeTimeoutMs, signal });
    if (answer.status >= 300) throw classifyEngineResponse(answer.status, answer.text, answer.headers, answer.url);
    throwCarried(answer);
    return readModels(answer.text, answer.status);
  }

  /** The most tokens `model`'s replies may be capped at, once the endpoint said so (refused-params.ts); null until then. */
  outputCap(model: string): number | null {
    return this.params.get(model)?.maxOutput ?? null;
  }

  /**
   * The model's context length as the engine stated it in a refusal, for a server whose
   * /v1/models does not give `max_model_len`: later requests fit their max_tokens to it.
   */
  learnContextLength(tokens: number): void {
    if (this.knownModel && this.knownModel.maxModelLen === null && Number.isInteger(tokens) && tokens > 0) {
      this.knownModel = { ...this.knownModel, maxModelLen: tokens };
    }
  }

  /**
   * The model requests go to: the configured one (with its `max_model_len` when /v1/models lists
   * it), else the first the server lists. Cached once known; concurrent callers share one lookup.
   */
  model(signal?: AbortSignal): Promise<ModelInfo> {
    if (this.knownModel) return Promise.resolve(this.knownModel);
    // The shared lookup runs without any one caller's signal (bounded by probeTimeoutMs), so
    // that one caller giving up does not fail the others; each caller waits under its own signal.
    this.discovered ??= this.discover(undefined).then(
      (info) => (this.knownModel = info),
      (err: unknown) => {
        this.discovered = undefined;
        throw err;
      },
    );
    return underSignal(this.discovered, signal, 'the model lookup');
  }

  private async discover(signal: AbortSignal | undefined): Promise<ModelInfo> {
    const configured = this.options.model;
    let models: ModelInfo[];
    try {
      models = await this.models(signal);
    } catch (err) {
      // A server without /v1/models can still serve the model we were told to use.
      if (configured !== undefined && err instanceof EngineError && err.code === 'ENGINE_UNSUPPORTED') {
        return { id: configured, maxModelLen: null };
      }
      throw err;
    }
    if (configured !== undefined) return models.find((m) => m.id === configured) ?? { id: configured, maxModelLen: null };
    const first = models[0];
    if (!first) throw new EngineError('MODEL_NOT_FOUND', 'engine lists no model at /v1/models; set MODEL');
    return first;
  }

  /**
   * `POST /v1/chat/completions`, non-streaming. A request the endpoint refuses for a setting it
   * does not take (refused-params.ts: the cap's name, a sampling setting, the structured-output
   * field) is sent again at once the way it takes it; `hooks.beforeResend` runs before each such
   * resend (the worker takes its rate pass there: a resend is a request like any other).
   */
  async chat(request: ChatRequest, signal?: AbortSignal, hooks: ChatHooks = {}): Promise<ChatResult> {
    validateChat(request);
    const model = request.model ?? this.options.model ?? (await this.model(signal)).id;
    const base: Record<string, unknown> = {
      model,
      messages: request.messages,
      max_tokens: request.maxTokens,
      stream: false,
    };
    if (request.temperature !== undefined) base.temperature = request.temperature;
    if (request.topP !== undefined) base.top_p = request.topP;
    if (request.seed !== undefined) base.seed = request.seed;
    if (request.stop !== undefined && request.stop.length > 0) base.stop = request.stop;
    if (request.responseFormat !== undefined) base.response_format = request.responseFormat;
    const headers: Record<string, string> = {};
    if (request.requestId !== undefined) headers['x-request-id'] = request.requestId;
    // At most one resend per setting the endpoint can refuse (the cap's name, the cap,
    // temperature, top_p, temperature 0, strict json_schema, the word JSON, and each rung of structured output down to the schema in the prompt).
    /** Tokens of answers in prose sent again (below), for a caller without `hooks.onUnreturned`: the answer returned carries them. */
    let resentUsage: TokenCounts | null = null;
    for (let pass = 0; ; pass++) {
      const params = this.params.get(model);
      const body = applyParams(base, params);
      if (pass > 0) await hooks.beforeResend?.();
      const answer = await this.http.send('POST', '/v1/chat/completions', {
        body,
        headers,
        timeoutMs: this.options.requestTimeoutMs,
        signal,
      });
      let { status, text } = answer;
      let carried = false;
      if (status < 300) {
        // A proxy that forces streaming; a gateway that sends its error with a 200.
        if (isEventStream(answer.headers['content-type'], text)) text = assembleEventStream(text, status);
        const inBody = carriedErrorStatus(text);
        if (inBody === null) {
          const result = readChatCompletion(text, status, { model, latencyMs: answer.latencyMs });
          // An endpoint that took the structured-output field and answered prose: once it is
          // plain that it ignores the field, this request goes again with the schema in the prompt.
          let known = this.params.get(model);
          if (!known && modeOf(body) !== null) this.params.set(model, (known = newModelParams()));
          const prose = known && pass < MAX_RESENDS ? answeredInProse(known, model, body, result.text) : null;
          if (prose) {
            if (prose.sentence !== null) this.options.onParamsChanged?.(prose.sentence);
            if (hooks.onUnreturned) hooks.onUnreturned(result.usage);
            else resentUsage = resentUsage === null ? result.usage : addCounts(resentUsage, result.usage);
            continue;
          }
          const said = structuredAnswered(params, model, base);
          if (said !== null) this.options.onParamsChanged?.(said);
          return resentUsage === null ? result : { ...result, usage: addCounts(resentUsage, result.usage) };
        }
        status = inBody;
        carried = true;
      }
      const fix = pass < MAX_RESENDS ? paramFix(status, text, body) : null;
      if (!fix) throw carried ? carriedError(status, text, answer.headers, answer.status) : classifyEngineResponse(status, text, answer.headers, answer.url);
      // Read again: a request sent at the same time may have learnt meanwhile.
      let known = this.params.get(model);
      if (!known) this.params.set(model, (known = newModelParams()));
      const sentence = learn(known, fix, model, body);
      if (sentence !== null) this.options.onParamsChanged?.(sentence);
    }
  }

  /**
   * The context the server holds `model` at, where only its own API says so (Ollama's `GET
   * /api/ps`: num_ctx of a loaded model): `{context: null}` when it has that API and did not say
   * (an older Ollama), null when it has none (not asked again) or the probe failed (not asked
   * again for a while: loaded-context.ts). Throws ABORTED only.
   */
  loadedContextLength(model: string, signal?: AbortSignal): Promise<{ context: number | null } | null> {
    return this.loadedContext.lengthOf(model, signal);
  }

  /** Prompt tokens as the server counts them (`POST /tokenize`); null when the server has no such route. */
  async tokenize(input: { prompt: string } | { messages: ChatMessage[] }, signal?: AbortSignal): Promise<number | null> {
    if (this.noTokenize) return null;
    if ('messages' in input) validateMessages(input.messages);
    const model = this.options.model ?? (await this.model(signal)).id;
    const answer = await this.http.send('POST', '/tokenize', {
      body: { model, ...input },
      timeoutMs: this.options.requestTimeoutMs,
      signal,
    });
    const carried = answer.status < 300 ? carriedErrorStatus(answer.text) : null;
    if (answer.status >= 300 || carried !== null) {
      const err = carried !== null ? carriedError(carried, answer.text, answer.headers, answer.status) : classifyEngineResponse(answer.status, answer.text, answer.headers, answer.url);
      if (err.code === 'ENGINE_UNSUPPORTED' && !hostWide(err)) {
        this.noTokenize = true;
        return null;
      }
      throw err;
    }
    return readTokenCount(answer.text, answer.status);
  }

  /**
   * 'up' (200), 'dead' (500/503: vLLM's engine died, or is shutting down), 'unreachable'
   * (refused, reset, timed out, a proxy's 502/504), 'unknown' (anything else). A server without
   * /health (Ollama), or whose /health is not ours to ask (a gateway's admin-only route: 401, 403; 400, 405, 501;
   * LiteLLM's, which sends a request to every model: checksEveryModel), is asked `GET /v1/models` instead, from then on. Throws ABORTED only.
   */
  async health(signal?: AbortSignal): Promise<EngineHealth> {
    if (!this.noHealthRoute) {
      const state = await this.probeHealth('/health', signal);
      if (state !== 'missing') return state;
      this.noHealthRoute = true;
    }
    const state = await this.probeHealth('/v1/models', signal);
    return state === 'missing' ? 'unknown' : state;
  }

  private async probeHealth(path: string, signal: AbortSignal | undefined): Promise<EngineHealth | 'missing'> {
    let answer: Answer;
    try {
      answer = await this.http.send('GET', path, { timeoutMs: this.options.probeTimeoutMs, signal });
    } catch (err) {
      const code = err instanceof EngineError ? err.code : 'ENGINE_ERROR';
      if (code === 'ABORTED') throw err;
      return code === 'ENGINE_DOWN' || code === 'ENGINE_TIMEOUT' ? 'unreachable' : 'unknown';
    }
    const { status } = answer;
    if (status >= 200 && status < 300) return path === '/health' && checksEveryModel(answer.text) ? 'missing' : 'up';
    if (status === 500 || status === 503) return 'dead';
    if (status === 502 || status === 504 || status === 524 || ORIGIN_DOWN.has(status)) return 'unreachable';
    if (status === 404 || (path === '/health' && [400, 401, 403, 405, 501].includes(status))) return 'missing';
    return 'unknown';
  }

  /** Why `metrics()` answers null from now on (`no route (404)`, `refused (403)`); null while /metrics is read. */
  get metricsMissing(): string | null {
    return this.noMetrics;
  }

  /**
   * `GET /metrics`, parsed; null when the server exports none (no route, or no engine gauges), or
   * refuses it (401, 403: a gateway's admin-only route; vLLM's own /metrics takes no API key):
   * then never asked again (`metricsMissing` says why).
   */
  async metrics(signal?: AbortSignal): Promise<EngineMetrics | null> {
    if (this.noMetrics !== null) return null;
    const answer = await this.http.send('GET', '/metrics', { timeoutMs: this.options.probeTimeoutMs, signal });
    if (answer.status >= 300) {
      const err = classifyEngineResponse(answer.status, answer.text, answer.headers, answer.url);
      if ((err.code === 'ENGINE_UNSUPPORTED' && !hostWide(err)) || err.code === 'MODEL_NOT_FOUND' || err.code === 'ENGINE_UNAUTHORIZED') {
        this.noMetrics = err.code === 'ENGINE_UNAUTHORIZED' ? `refused (${answer.status}: not ours to read)` : `no such route (${answer.status})`;
        return null;
      }
      throw err;
    }
    const modelName = this.knownModel?.id ?? this.options.model;
    return parseEngineMetrics(answer.text, modelName === undefined ? {} : { modelName });
  }

  /** Waits for requests in flight, then closes the connections. Idempotent. */
  close(): Promise<void> {
    return this.http.close();
  }

  /** Fails requests in flight (ABORTED) and closes the connections at once. */
  destroy(): Promise<void> {
    return this.http.destroy();
  }
}

/** A 2xx whose body is an error (some gateways): thrown as the error it carries (responses.ts). */
function throwCarried(answer: Answer): void {
  const carried = carriedErrorStatus(answer.text);
  if (carried !== null) throw carriedError(carried, answer.text, answer.headers, answer.status);
}

/**
 * An answer about ENGINE_URL's host, whatever the route (a Vercel host with no deployment: deleted,
 * or redeployed a moment ago), not about the route asked: no reason to stop asking the route once
 * the host answers again. A redirect (also wrongUrl) may be the route's own, and stays remembered.
 */
function hostWide(err: EngineError): boolean {
  return err.wrongUrl && !(err.status !== undefined && err.status >= 300 && err.status < 400);
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
