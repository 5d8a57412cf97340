/**
 * Options of the engine emulator: what it serves, how fast it runs (Timing) and which faults it
 * injects (Faults). Options are flat so `startEmulator({ speed: 20, oomAtConcurrentImages: 4 })`
 * reads naturally; Timing and Faults are the subsets that may change while it runs.
 *
 * Every value is checked here, once: a bad value throws a TypeError naming the option and value.
 */

import { ANSWER_FAULT_DEFAULTS, checkAnswerFaults, checkModelTraits, MODEL_TRAIT_DEFAULTS, type AnswerFaults, type ModelTraits } from './answer-options.ts';

/** How fast the emulated GPU runs and how long replies are. All may change at run time. */
export interface Timing {
  /**
   * Divides every step duration: 10 runs the engine ten times faster than the GPU it emulates.
   * Fault delays (deathExitMs, restartDelayMs) are wall-clock and not scaled.
   * @defaultValue 1
   */
  speed: number;
  /** Fixed cost of one engine step (one decode token for every running sequence), in ms. @defaultValue 20 */
  stepBaseMs: number;
  /** Extra step cost per running sequence, in ms (batching is cheap but not free). @defaultValue 0.2 */
  stepPerSeqMs: number;
  /** Extra step cost per prompt token prefilled in that step, in ms. @defaultValue 0.05 */
  prefillPerTokenMs: number;
  /** Shortest reply, in generated tokens (before max_tokens caps it). @defaultValue 150 */
  outputTokensMin: number;
  /** Longest reply, in generated tokens (before max_tokens caps it). @defaultValue 450 */
  outputTokensMax: number;
  /**
   * Share of replies that are long (0..1): their length is drawn from
   * [longOutputTokensMin, longOutputTokensMax] instead. Mixes long and short outputs.
   * @defaultValue 0
   */
  longOutputShare: number;
  /** Shortest long reply, in generated tokens. @defaultValue 1000 */
  longOutputTokensMin: number;
  /** Longest long reply, in generated tokens. @defaultValue 2000 */
  longOutputTokensMax: number;
}

/** Which requests hang (are never answered until the client closes the connection). */
export interface HangRule {
  /** Every k-th inference request (counted from 1 over the emulator's life) hangs. */
  every?: number;
  /** Requests whose text contains this string hang. */
  matchText?: string;
}

export type OomMode = 'death' | 'request';
/** How the scheduler admits waiting sequences (src/emulator/engine.ts). */
export type Admission = 'budget' | 'all';
export type ErrorStyle = 'vllm' | 'flat' | 'ollama';
/**
 * Which structured-output requests the server takes: `full` (vLLM now: response_format json_schema
 * and json_object, structured_outputs; guided_json ignored), `old-vllm` (response_format text and
 * json_object only, a json_schema one is a 400; guided_json constrains), `json-object` (a gateway
 * taking only json_object; guided_json refused as unknown), `none` (response_format and
 * guided_json refused), `ignored` (every structured-output field taken without a word and
 * ignored: free text, unless the prompt itself asks for JSON of a schema, which the model follows).
 */
export type StructuredSupport = 'full' | 'old-vllm' | 'json-object' | 'none' | 'ignored';
export const STRUCTURED_SUPPORT: readonly StructuredSupport[] = ['full', 'old-vllm', 'json-object', 'none', 'ignored'];

/** Injected faults and server look-alikes (the answer faults: answer-options.ts). All off by default; all may change at run time. */
export interface Faults extends AnswerFaults {
  /**
   * Out of GPU memory when more than this many requests carrying images run at once.
   * `null`: never.
   * @defaultValue null
   */
  oomAtConcurrentImages: number | null;
  /**
   * `death`: the vLLM V1 engine dies (500 to all, /health 503, the port closes, then restarts).
   * `request`: only the request that crossed the line gets 500 "CUDA out of memory" (HF-style servers).
   * @defaultValue 'death'
   */
  oomMode: OomMode;
  /** Like VLLM_KEEP_ALIVE_ON_ENGINE_DEATH=1: after a death the port stays open answering 500/503 until the restart. @defaultValue false */
  keepAliveOnDeath: boolean;
  /** From engine death to the process exiting (the port closing), in ms. @defaultValue 1000 */
  deathExitMs: number;
  /** How long the port stays closed before the server is back (the supervisor restart plus model load), in ms. @defaultValue 5000 */
  restartDelayMs: number;
  /** Requests that never answer. @defaultValue null */
  hang: HangRule | null;
  /** Shape of error bodies: current vLLM (nested), older vLLM/SGLang (flat), or Ollama (nested, code null). @defaultValue 'vllm' */
  errorStyle: ErrorStyle;
  /** GET /metrics answers 404 (Ollama). @defaultValue false */
  noMetrics: boolean;
  /** POST /tokenize answers 404 (Ollama). @defaultValue false */
  noTokenize: boolean;
  /** GET /health answers 404 (Ollama). @defaultValue false */
  noHealth: boolean;
  /** A list `prompt` on /v1/completions answers 400 (Ollama). @defaultValue false */
  rejectListPrompts: boolean;
  /** Past this many sequences queued or running, new requests get 503 "server busy" (Ollama; 512 there). `null`: unbounded like vLLM. @defaultValue null */
  maxPending: number | null;
  /** When set, /v1/* requires `Authorization: Bearer <apiKey>` (401 otherwise), as `vllm serve --api-key`. @defaultValue null */
  apiKey: string | null;
  /** Which structured-output requests are taken (StructuredSupport). @defaultValue 'full' */
  structuredOutputs: StructuredSupport;
  /** A proxy that forces streaming: every chat or completions request is answered as an event stream, `"stream": false` or not (usage included). @defaultValue false */
  forceStream: boolean;
  /** A gateway that sends errors with status 200: the error body as usual, the status 200 (not for an unknown route or a missing API key). @defaultValue false */
  errorsAs200: boolean;
  /**
   * A context-length refusal names only a lower bound of the prompt ("your prompt contains at
   * least N input tokens", N = max_model_len - max_tokens + 1), as vLLM does when it stops
   * counting a prompt once it cannot fit. @defaultValue false
   */
  contextLowerBound: boolean;
  /**
   * Ollama past its context (num_ctx): a prompt longer than maxModelLen is cut to it without an
   * error and answered, `usage.prompt_tokens` = maxModelLen; /v1/models names no context and
   * `GET /api/ps` says it (`context_length`). @defaultValue false
   */
  truncatePrompts: boolean;
}

export interface EmulatorOptions extends Timing, Faults, ModelTraits {
  /** Interface to listen on. @defaultValue '127.0.0.1' */
  host: string;
  /** TCP port; 0 picks a free one (kept across engine restarts). @defaultValue 0 (the CLI uses 8000) */
  port: number;
  /** The served model name (`/v1/models`, responses, metric label). @defaultValue 'docbatch/emulated-vl' */
  model: string;
  /** Context length: prompt plus output tokens. @defaultValue 32768 */
  maxModelLen: number;
  /** Most sequences running at once; more wait FCFS. @defaultValue 256 */
  maxNumSeqs: number;
  /** Most tokens (decode plus prefill chunks) scheduled in one step. @defaultValue 2048 */
  maxNumBatchedTokens: number;
  /** KV cache capacity in tokens; past it running sequences are preempted. @defaultValue 262144 */
  kvCacheTokens: number;
  /**
   * How waiting sequences are admitted: `budget` (vLLM V1) while the step's token budget has
   * room; `all` at once, up to maxNumSeqs and while the KV cache holds their prompts (their
   * prefill then shares the budget). @defaultValue 'budget'
   */
  admission: Admission;
  /** Most images in one prompt (vLLM's --limit-mm-per-prompt). @defaultValue 999 */
  maxImagesPerPrompt: number;
  /** Largest request body accepted, in bytes (413 past it; a guard, vLLM has none). @defaultValue 268435456 (256 MiB) */
  maxBodyBytes: number;
}

export const TIMING_DEFAULTS: Timing = Object.freeze({
  speed: 1,
  stepBaseMs: 20,
  stepPerSeqMs: 0.2,
  prefillPerTokenMs: 0.05,
  outputTokensMin: 150,
  outputTokensMax: 450,
  longOutputShare: 0,
  longOutputTokensMin: 1000,
  longOutputTokensMax: 2000,
});

export const FAULT_DEFAULTS: Faults = Object.freeze({
  oomAtConcurrentImages: null,
  oomMode: 'death',
  keepAliveOnDeath: false,
  deathExitMs: 1000,
  restartDelayMs: 5000,
  hang: null,
  errorStyle: 'vllm',
  noMetrics: false,
  noTokenize: false,
  noHealth: false,
  rejectListPrompts: false,
  maxPending: null,
  apiKey: null,
  structuredOutputs: 'full',
  forceStream: false,
  errorsAs200: false,
  contextLowerBound: false,
  truncatePrompts: false,
  ...ANSWER_FAULT_DEFAULTS,
});

export const EMULATOR_DEFAULTS: EmulatorOptions = Object.freeze({
  ...TIMING_DEFAULTS,
  ...FAULT_DEFAULTS,
  ...MODEL_TRAIT_DEFAULTS,
  host: '127.0.0.1',
  port: 0,
  model: 'docbatch/emulated-vl',
  maxModelLen: 32768,
  maxNumSeqs: 256,
  maxNumBatchedTokens: 2048,
  kvCacheTokens: 262144,
  admission: 'budget',
  maxImagesPerPrompt: 999,
  maxBodyBytes: 256 * 1024 * 1024,
});

/** Presets that make the emulator look like other OpenAI-compatible servers (`--like`). */
export const SERVER_PRESETS = {
  vllm: { ...FAULT_DEFAULTS },
  /** Older vLLM and SGLang: flat error bodies. */
  sglang: { errorStyle: 'flat' },
  /** Hugging Face transformers-style servers: a per-request CUDA OOM, flat errors. */
  hf: { oomMode: 'request', errorStyle: 'flat' },
  ollama: {
    errorStyle: 'ollama',
    noMetrics: true,
    noTokenize: true,
    noHealth: true,
    rejectListPrompts: true,
    maxPending: 512,
    truncatePrompts: true,
  },
} as const satisfies Record<string, Partial<Faults>>;

export type ServerPreset = keyof typeof SERVER_PRESETS;

/**
 * Engine profiles (`--profile`): schedulers and costs that behave like different engines, for
 * holding the worker's window to each (bench/throughput.ts, docs/emulator.md). Sized for prompts
 * of 1-4k tokens (chat chunks, page images).
 */
export const ENGINE_PROFILES = {
  /** vLLM V1 on a small GPU: admission within a 2048-token budget, KV cache for ~70 chunks of 3.5k. */
  vllm: {},
  /**
   * Admits every request up to maxNumSeqs at once and queues nothing until then (`waiting` stays
   * 0 until 256 run); the KV cache never binds; prefill of long prompts dominates the step, so
   * throughput keeps rising, slowly, all the way to 256.
   */
  'admit-all': { admission: 'all', maxNumBatchedTokens: 8192, kvCacheTokens: 4_194_304 },
  /** The KV cache binds long before maxNumSeqs (~36 chunks of 3.5k): over-full, it preempts (recompute). */
  'kv-preempt': { maxNumBatchedTokens: 8192, kvCacheTokens: 131_072 },
  /**
   * Prefill costs twice as much and fills most of every step; the 2048-token budget admits long
   * prompts one step at a time, so a backlog waits while running climbs; the KV cache never binds.
   */
  'slow-prefill': { prefillPerTokenMs: 0.1, maxNumBatchedTokens: 2048, kvCacheTokens: 4_194_304 },
  /** A quarter of the replies are long (1000-2000 tokens), the rest short (20-200). */
  'mixed-outputs': { outputTokensMin: 20, outputTokensMax: 200, longOutputShare: 0.25, longOutputTokensMin: 1000, longOutputTokensMax: 2000 },
  /** vLLM's scheduler with no /metrics: the client has only latency. */
  'no-metrics': { noMetrics: true },
} as const satisfies Record<string, Partial<EmulatorOptions>>;

export type EngineProfile = keyof typeof ENGINE_PROFILES;

const TIMING_KEYS = Object.keys(TIMING_DEFAULTS) as (keyof Timing)[];
const FAULT_KEYS = Object.keys(FAULT_DEFAULTS) as (keyof Faults)[];
const OPTION_KEYS = Object.keys(EMULATOR_DEFAULTS) as (keyof EmulatorOptions)[];

function bad(name: string, value: unknown, want: string): TypeError {
  return new TypeError(`Emulator option \`${name}\` must be ${want}; got ${JSON.stringify(value) ?? String(value)}`);
}

function positive(name: string, v: unknown): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw bad(name, v, 'a finite number > 0');
}
function nonNegative(name: string, v: unknown): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw bad(name, v, 'a finite number >= 0');
}
function int(name: string, v: unknown, min: number): void {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw bad(name, v, `an integer >= ${min}`);
}
function bool(name: string, v: unknown): void {
  if (typeof v !== 'boolean') throw bad(name, v, 'true or false');
}
function oneOf(name: string, v: unknown, values: readonly string[]): void {
  if (typeof v !== 'string' || !values.includes(v)) throw bad(name, v, `one of ${values.join(', ')}`);
}

function checkTiming(t: Timing): void {
  positive('speed', t.speed);
  nonNegative('stepBaseMs', t.stepBaseMs);
  nonNegative('stepPerSeqMs', t.stepPerSeqMs);
  nonNegative('prefillPerTokenMs', t.prefillPerTokenMs);
  if (t.stepBaseMs + t.stepPerSeqMs <= 0) throw bad('stepBaseMs', t.stepBaseMs, '> 0 when stepPerSeqMs is 0 (a step must take time)');
  int('outputTokensMin', t.outputTokensMin, 1);
  int('outputTokensMax', t.outputTokensMax, 1);
  if (t.outputTokensMax < t.outputTokensMin) throw bad('outputTokensMax', t.outputTokensMax, `>= outputTokensMin (${t.outputTokensMin})`);
  if (typeof t.longOutputShare !== 'number' || !(t.longOutputShare >= 0 && t.longOutputShare <= 1)) throw bad('longOutputShare', t.longOutputShare, 'a number in [0, 1]');
  int('longOutputTokensMin', t.longOutputTokensMin, 1);
  int('longOutputTokensMax', t.longOutputTokensMax, 1);
  if (t.longOutputTokensMax < t.longOutputTokensMin) throw bad('longOutputTokensMax', t.longOutputTokensMax, `>= longOutputTokensMin (${t.longOutputTokensMin})`);
}

function checkFaults(f: Faults): void {
  if (f.oomAtConcurrentImages !== null) int('oomAtConcurrentImages', f.oomAtConcurrentImages, 0);
  oneOf('oomMode', f.oomMode, ['death', 'request']);
  bool('keepAliveOnDeath', f.keepAliveOnDeath);
  int('deathExitMs', f.deathExitMs, 0);
  int('restartDelayMs', f.restartDelayMs, 0);
  if (f.hang !== null) {
    if (typeof f.hang !== 'object' || Array.isArray(f.hang)) throw bad('hang', f.hang, 'null or { every?, matchText? }');
    if (f.hang.every === undefined && f.hang.matchText === undefined) throw bad('hang', f.hang, 'null or have `every` or `matchText`');
    if (f.hang.every !== undefined) int('hang.every', f.hang.every, 1);
    if (f.hang.matchText !== undefined && (typeof f.hang.matchText !== 'string' || f.hang.matchText === '')) {
      throw bad('hang.matchText', f.hang.matchText, 'a non-empty string');
    }
  }
  oneOf('errorStyle', f.errorStyle, ['vllm', 'flat', 'ollama']);
  bool('noMetrics', f.noMetrics);
  bool('noTokenize', f.noTokenize);
  bool('noHealth', f.noHealth);
  bool('rejectListPrompts', f.rejectListPrompts);
  if (f.maxPending !== null) int('maxPending', f.maxPending, 0);
  if (f.apiKey !== null && (typeof f.apiKey !== 'string' || f.apiKey === '')) throw bad('apiKey', f.apiKey, 'null or a non-empty string');
  oneOf('structuredOutputs', f.structuredOutputs, STRUCTURED_SUPPORT);
  bool('forceStream', f.forceStream);
  bool('errorsAs200', f.errorsAs200);
  bool('truncatePrompts', f.truncatePrompts);
  bool('contextLowerBound', f.contextLowerBound);
  checkAnswerFaults(f);
}

function rejectUnknown(input: object, known: readonly string[], what: string): void {
  for (const key of Object.keys(input)) {
    if (!known.includes(key)) throw new TypeError(`Unknown ${what} \`${key}\`; known: ${known.join(', ')}`);
  }
}

function defined<T extends object>(input: T): Partial<T> {
  return Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Defaults spread once, then every value checked. */
export function resolveOptions(input: Partial<EmulatorOptions> = {}): EmulatorOptions {
  rejectUnknown(input, OPTION_KEYS, 'emulator option');
  const o: EmulatorOptions = { ...EMULATOR_DEFAULTS, ...defined(input) };
  if (typeof o.host !== 'string' || o.host === '') throw bad('host', o.host, 'a non-empty string');
  int('port', o.port, 0);
  if (o.port > 65535) throw bad('port', o.port, 'at most 65535');
  if (typeof o.model !== 'string' || o.model === '') throw bad('model', o.model, 'a non-empty string');
  int('maxModelLen', o.maxModelLen, 16);
  int('maxNumSeqs', o.maxNumSeqs, 1);
  int('maxNumBatchedTokens', o.maxNumBatchedTokens, 1);
  if (o.maxNumBatchedTokens < o.maxNumSeqs) throw bad('maxNumBatchedTokens', o.maxNumBatchedTokens, `>= maxNumSeqs (${o.maxNumSeqs}), or running sequences could not all decode`);
  int('kvCacheTokens', o.kvCacheTokens, 1);
  oneOf('admission', o.admission, ['budget', 'all']);
  if (o.kvCacheTokens < o.maxModelLen) throw bad('kvCacheTokens', o.kvCacheTokens, `>= maxModelLen (${o.maxModelLen}), as vLLM requires`);
  int('maxImagesPerPrompt', o.maxImagesPerPrompt, 0);
  int('maxBodyBytes', o.maxBodyBytes, 1024);
  checkTiming(o);
  checkFaults(o);
  checkModelTraits(o);
  return o;
}

/** `current` with a partial Timing applied; throws without changing anything on a bad value. */
export function mergeTiming(current: Timing, patch: Partial<Timing>): Timing {
  rejectUnknown(patch, TIMING_KEYS, 'timing option');
  const next = { ...pick(current, TIMING_KEYS), ...defined(patch) } as Timing;
  checkTiming(next);
  return next;
}

/** `current` with a partial Faults applied; throws without changing anything on a bad value. */
export function mergeFaults(current: Faults, patch: Partial<Faults>): Faults {
  rejectUnknown(patch, FAULT_KEYS, 'fault');
  const next = { ...pick(current, FAULT_KEYS), ...defined(patch) } as Faults;
  checkFaults(next);
  return next;
}

export function pick<T extends object, K extends keyof T>(from: T, keys: readonly K[]): Pick<T, K> {
  const out = {} as Pick<T, K>;
  for (const k of keys) out[k] = from[k];
  return out;
}

export function timingOf(o: EmulatorOptions): Timing {
  return pick(o, TIMING_KEYS);
}

export function faultsOf(o: EmulatorOptions): Faults {
  return pick(o, FAULT_KEYS);
}
