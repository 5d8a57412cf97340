/**
 * The command-line flags of `docbatch engine` and `src/emulator/main.ts`, in one table that both
 * parsers (commander in the CLI, node:util parseArgs standalone) are built from.
 */
import { OMIT_USAGE_MODES, rejectNeedles, type OmitUsage } from './answer-options.ts';
import { ENGINE_PROFILES, resolveOptions, SERVER_PRESETS, STRUCTURED_SUPPORT, type EmulatorOptions, type EngineProfile, type Faults, type ServerPreset } from './options.ts';

type Kind = 'int' | 'number' | 'string' | 'bool';

export interface FlagSpec {
  /** Without the leading `--`. */
  name: string;
  kind: Kind;
  /** Placeholder in help, for valued flags. */
  arg?: string;
  help: string;
  /** Valid values, for enumerations. */
  choices?: readonly string[];
  /** May be given several times; `apply` runs once per value, in order. */
  multiple?: boolean;
  /** Where the value goes. */
  apply: (o: Partial<EmulatorOptions>, value: string | number | boolean) => void;
}

const set =
  <K extends keyof EmulatorOptions>(key: K) =>
  (o: Partial<EmulatorOptions>, v: string | number | boolean): void => {
    o[key] = v as EmulatorOptions[K];
  };

/** The CLI's default port, vLLM's. (startEmulator defaults to 0, a free port.) */
export const CLI_DEFAULT_PORT = 8000;

// Answer faults and model traits (answer-options.ts).
const ANSWER_FLAGS: readonly FlagSpec[] = [
  { name: 'cutoff', kind: 'number', arg: 'share', help: 'share of first-seen contents answered cut off at max_tokens (default: 0)', apply: set('cutoff') },
  { name: 'loop', kind: 'number', arg: 'share', help: 'share of first-seen contents answered with one phrase repeated until max_tokens (default: 0)', apply: set('loop') },
  { name: 'invalid-json', kind: 'number', arg: 'share', help: 'share of first-seen contents asking for JSON answered with broken JSON (default: 0)', apply: set('invalidJson') },
  { name: 'alter-fields', kind: 'number', arg: 'share', help: 'share of structured-output fields read from the text that come back altered (default: 0)', apply: set('alterFields') },
  {
    name: 'reject-match',
    kind: 'string',
    arg: 'text',
    multiple: true,
    help: 'requests whose text contains this answer 400 BadRequestError (repeatable)',
    apply: (o, v) => {
      o.reject = { matchText: [...(o.reject ? rejectNeedles(o.reject) : []), v as string] };
    },
  },
  {
    name: 'content-filter-match',
    kind: 'string',
    arg: 'text',
    multiple: true,
    help: "requests whose text contains this are withheld by a content filter, answered 200 as Azure OpenAI does (repeatable; see --content-filter-on)",
    apply: (o, v) => {
      o.contentFilter = { on: o.contentFilter?.on ?? 'prompt', matchText: [...(o.contentFilter ? rejectNeedles(o.contentFilter) : []), v as string] };
    },
  },
  {
    name: 'content-filter-on',
    kind: 'string',
    arg: 'stage',
    choices: ['prompt', 'output'],
    help: 'with --content-filter-match: prompt (choices [] and prompt_filter_results) or output (finish_reason content_filter, no content) (default: prompt)',
    apply: (o, v) => {
      o.contentFilter = { matchText: o.contentFilter?.matchText ?? [], on: v as 'prompt' | 'output' };
    },
  },
  { name: 'text-only', kind: 'bool', help: 'a text-only model: an image part answers 400 "<model> is not a multimodal model"', apply: (o) => { o.acceptsImages = false; } },
  { name: 'rpm', kind: 'int', arg: 'n', help: 'rate limit: requests per window per API key and model, 429 past it (default: unlimited)', apply: (o, v) => { o.rateLimit = { ...o.rateLimit, rpm: v as number }; } },
  { name: 'tpm', kind: 'int', arg: 'n', help: 'rate limit: prompt + max_tokens per window per API key and model (default: unlimited)', apply: (o, v) => { o.rateLimit = { ...o.rateLimit, tpm: v as number }; } },
  { name: 'rate-window-ms', kind: 'int', arg: 'ms', help: 'rate limit window, with --rpm or --tpm (default: 60000)', apply: (o, v) => { o.rateLimit = { ...o.rateLimit, windowMs: v as number }; } },
  { name: 'omit-usage', kind: 'string', arg: 'mode', choices: OMIT_USAGE_MODES, help: 'answer without token counts: absent (no usage key), null ("usage": null) or null-fields (its counts null) (default: usage always sent)', apply: (o, v) => { o.omitUsage = v as OmitUsage; } },
  { name: 'omit-usage-share', kind: 'number', arg: 'share', help: 'share of answers without usage, with --omit-usage, chosen by request id (else content) (default: 1)', apply: set('omitUsageShare') },
];

export const FLAGS: readonly FlagSpec[] = [
  { name: 'port', kind: 'int', arg: 'n', help: `TCP port (0: a free one) (default: ${CLI_DEFAULT_PORT})`, apply: set('port') },
  { name: 'host', kind: 'string', arg: 'host', help: 'interface to listen on (default: 127.0.0.1)', apply: set('host') },
  { name: 'model', kind: 'string', arg: 'name', help: 'served model name (default: docbatch/emulated-vl)', apply: set('model') },
  { name: 'max-model-len', kind: 'int', arg: 'n', help: 'context length in tokens (default: 32768)', apply: set('maxModelLen') },
  { name: 'max-num-seqs', kind: 'int', arg: 'n', help: 'most sequences running at once (default: 256)', apply: set('maxNumSeqs') },
  { name: 'max-num-batched-tokens', kind: 'int', arg: 'n', help: 'token budget of one step (default: 2048)', apply: set('maxNumBatchedTokens') },
  { name: 'kv-cache-tokens', kind: 'int', arg: 'n', help: 'KV cache capacity in tokens (default: 262144)', apply: set('kvCacheTokens') },
  { name: 'admission', kind: 'string', arg: 'mode', choices: ['budget', 'all'], help: 'budget: admit within the step token budget (vLLM); all: admit everything up to max-num-seqs at once (default: budget)', apply: set('admission') },
  { name: 'max-images-per-prompt', kind: 'int', arg: 'n', help: 'most images in one prompt (default: 999)', apply: set('maxImagesPerPrompt') },
  { name: 'speed', kind: 'number', arg: 'x', help: 'time multiplier: 10 runs ten times faster than the emulated GPU (default: 1)', apply: set('speed') },
  { name: 'step-base-ms', kind: 'number', arg: 'ms', help: 'fixed cost of an engine step (default: 20)', apply: set('stepBaseMs') },
  { name: 'step-per-seq-ms', kind: 'number', arg: 'ms', help: 'step cost per running sequence (default: 0.2)', apply: set('stepPerSeqMs') },
  { name: 'prefill-per-token-ms', kind: 'number', arg: 'ms', help: 'step cost per prompt token prefilled (default: 0.05)', apply: set('prefillPerTokenMs') },
  { name: 'output-tokens-min', kind: 'int', arg: 'n', help: 'shortest reply in tokens (default: 150)', apply: set('outputTokensMin') },
  { name: 'output-tokens-max', kind: 'int', arg: 'n', help: 'longest reply in tokens (default: 450)', apply: set('outputTokensMax') },
  { name: 'long-output-share', kind: 'number', arg: 'x', help: 'share of replies that are long, 0..1 (default: 0)', apply: set('longOutputShare') },
  { name: 'long-output-tokens-min', kind: 'int', arg: 'n', help: 'shortest long reply in tokens (default: 1000)', apply: set('longOutputTokensMin') },
  { name: 'long-output-tokens-max', kind: 'int', arg: 'n', help: 'longest long reply in tokens (default: 2000)', apply: set('longOutputTokensMax') },
  { name: 'profile', kind: 'string', arg: 'name', choices: Object.keys(ENGINE_PROFILES), help: 'behave like another kind of engine (scheduler and cost preset; applied first, other flags override it)', apply: () => {} },
  { name: 'like', kind: 'string', arg: 'server', choices: Object.keys(SERVER_PRESETS), help: 'look like another server (preset of the fault switches; other flags override it)', apply: () => {} },
  { name: 'oom-at', kind: 'int', arg: 'n', help: 'out of memory when more than n requests with images run at once (default: off)', apply: set('oomAtConcurrentImages') },
  { name: 'oom-mode', kind: 'string', arg: 'mode', choices: ['death', 'request'], help: 'death: the engine dies and restarts (vLLM V1); request: one 500 (default: death)', apply: set('oomMode') },
  { name: 'keep-alive-on-death', kind: 'bool', help: 'keep the port open answering 500 after a death (VLLM_KEEP_ALIVE_ON_ENGINE_DEATH=1)', apply: set('keepAliveOnDeath') },
  { name: 'death-exit-ms', kind: 'int', arg: 'ms', help: 'from engine death to the port closing (default: 1000)', apply: set('deathExitMs') },
  { name: 'restart-delay', kind: 'int', arg: 'ms', help: 'how long the port stays closed after a death (default: 5000)', apply: set('restartDelayMs') },
  { name: 'hang-every', kind: 'int', arg: 'k', help: 'every k-th request never answers (until the client closes)', apply: (o, v) => { o.hang = { ...o.hang, every: v as number }; } },
  { name: 'hang-match', kind: 'string', arg: 'text', help: 'requests containing this text never answer', apply: (o, v) => { o.hang = { ...o.hang, matchText: v as string }; } },
  { name: 'error-style', kind: 'string', arg: 'style', choices: ['vllm', 'flat', 'ollama'], help: 'shape of error bodies (default: vllm)', apply: set('errorStyle') },
  { name: 'disable-metrics', kind: 'bool', help: 'GET /metrics answers 404', apply: set('noMetrics') },
  { name: 'disable-tokenize', kind: 'bool', help: 'POST /tokenize answers 404', apply: set('noTokenize') },
  { name: 'disable-health', kind: 'bool', help: 'GET /health answers 404', apply: set('noHealth') },
  { name: 'reject-list-prompts', kind: 'bool', help: 'a list prompt on /v1/completions answers 400', apply: set('rejectListPrompts') },
  { name: 'max-pending', kind: 'int', arg: 'n', help: 'past n queued sequences answer 503 "server busy" (default: unbounded)', apply: set('maxPending') },
  { name: 'api-key', kind: 'string', arg: 'key', help: 'require Authorization: Bearer <key> on /v1/*', apply: set('apiKey') },
  { name: 'structured-outputs', kind: 'string', arg: 'support', choices: STRUCTURED_SUPPORT, help: 'structured-output requests taken: full (vLLM now), old-vllm (no json_schema; guided_json), json-object (json_object only), none, ignored (taken and ignored: prose, unless the prompt asks for JSON) (default: full)', apply: set('structuredOutputs') },
  { name: 'force-stream', kind: 'bool', help: 'answer every chat or completions request as an event stream, as a proxy that forces streaming', apply: set('forceStream') },
  { name: 'truncate-prompts', kind: 'bool', help: 'cut a prompt over the context to it and answer, prompt_tokens = the context, as Ollama past num_ctx; /api/ps names the context, /v1/models does not', apply: set('truncatePrompts') },
  { name: 'errors-as-200', kind: 'bool', help: 'send error bodies with status 200, as some gateways do', apply: set('errorsAs200') },
  { name: 'context-lower-bound', kind: 'bool', help: 'a context-length refusal names only a lower bound of the prompt ("at least N input tokens")', apply: set('contextLowerBound') },
  ...ANSWER_FLAGS,
];

function convert(spec: FlagSpec, raw: string | boolean): string | number | boolean {
  if (spec.kind === 'bool') return raw === true || raw === 'true';
  const text = String(raw);
  if (spec.choices && !spec.choices.includes(text)) throw new TypeError(`--${spec.name} must be one of ${spec.choices.join(', ')}; got ${JSON.stringify(text)}`);
  if (spec.kind === 'string') return text;
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || (spec.kind === 'int' && !Number.isSafeInteger(n))) {
    throw new TypeError(`--${spec.name} must be ${spec.kind === 'int' ? 'an integer' : 'a number'}; got ${JSON.stringify(text)}`);
  }
  return n;
}

/** A parsed flag: a string, true for a present boolean flag, a list for a repeated one. */
export type FlagValue = string | boolean | string[] | undefined;

/**
 * Emulator options from parsed flag values keyed by flag name (`{ 'oom-at': '4' }`); absent flags
 * are undefined. The `--profile` preset applies first, then `--like`, then every other flag.
 * Validated: throws a TypeError naming the flag or option.
 */
export function optionsFromFlags(values: Readonly<Record<string, FlagValue>>): EmulatorOptions {
  const o: Partial<EmulatorOptions> = { port: CLI_DEFAULT_PORT };
  const profile = values.profile;
  if (profile !== undefined) {
    const spec = FLAGS.find((f) => f.name === 'profile') as FlagSpec;
    Object.assign(o, ENGINE_PROFILES[convert(spec, Array.isArray(profile) ? String(profile.at(-1)) : profile) as EngineProfile] as Partial<EmulatorOptions>);
  }
  const like = values.like;
  if (like !== undefined) {
    const spec = FLAGS.find((f) => f.name === 'like') as FlagSpec;
    Object.assign(o, SERVER_PRESETS[convert(spec, Array.isArray(like) ? String(like.at(-1)) : like) as ServerPreset] as Partial<Faults>);
  }
  for (const spec of FLAGS) {
    const raw = values[spec.name];
    if (raw === undefined || raw === false || spec.name === 'like' || spec.name === 'profile') continue;
    for (const one of Array.isArray(raw) ? raw : [raw]) spec.apply(o, convert(spec, one));
  }
  return resolveOptions(o);
}
