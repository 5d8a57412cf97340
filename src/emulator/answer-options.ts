/**
 * Options of what the emulator answers, apart from timing: answers that fail validation on first
 * sight (cutoff, loop, invalidJson), a model that gets some extracted fields wrong (alterFields),
 * requests rejected by their text (reject), a paid endpoint's rate limits (rateLimit), answers
 * without token counts (omitUsage), a hosted endpoint's content filter (contentFilter), and a text-only model (acceptsImages). Kept apart from options.ts, which spreads these defaults and
 * calls these checks, so timing and answers can change independently.
 *
 * Every value is checked here: a bad value throws a TypeError naming the option and value.
 */

/** The ways an answer can fail validation on first sight. */
export const FLAW_KINDS = ['cutoff', 'loop', 'invalidJson'] as const;
export type FlawKind = (typeof FLAW_KINDS)[number];

/**
 * How an answer goes without its token counts, as some servers and gateways answer: no `usage`
 * key, `"usage": null`, or `usage` with its counts null.
 */
export const OMIT_USAGE_MODES = ['absent', 'null', 'null-fields'] as const;
export type OmitUsage = (typeof OMIT_USAGE_MODES)[number];

/** Requests answered 400 BadRequestError because of their text. */
export interface RejectRule {
  /** Requests whose text (any text part, any message; the prompt of /v1/completions) contains this string, or any of these strings (e.g. page markers). */
  matchText: string | string[];
  /** The error message. @defaultValue names the matched string */
  message?: string;
}

/** Requests a hosted endpoint's content filter withholds (answered 200, as Azure OpenAI does: content-filter.ts). */
export interface ContentFilterRule {
  /** Requests whose text contains this string, or any of these strings. */
  matchText: string | string[];
  /** `prompt`: `choices: []` with `prompt_filter_results`; `output`: finish_reason `content_filter`, no content. */
  on: 'prompt' | 'output';
}

/** Limits of a paid endpoint, per API key (the bearer token; none counts as one key) and model. */
export interface RateLimit {
  /** Requests accepted per window. @defaultValue unlimited */
  rpm?: number;
  /** Tokens accepted per window, counted as prompt tokens + max_tokens when the request arrives. @defaultValue unlimited */
  tpm?: number;
  /** The window ("minute") in ms; tests shorten it. Fixed windows, back to back from the first request of each key and model. @defaultValue 60000 */
  windowMs?: number;
}

/** What the answers get wrong. All off by default; all may change at run time (they are Faults). */
export interface AnswerFaults {
  /**
   * Share (0..1) of requests whose content (messages and images, not sampling parameters),
   * the first time it is answered, runs on to max_tokens: finish_reason "length", the text or
   * JSON cut off. Chosen deterministically by the content's hash.
   * @defaultValue 0
   */
  cutoff: number;
  /** Share (0..1) of first-seen contents answered with one phrase repeated until max_tokens (finish_reason "length"). @defaultValue 0 */
  loop: number;
  /** Share (0..1) of first-seen contents asking for structured output answered with broken JSON (finish_reason "stop"). @defaultValue 0 */
  invalidJson: number;
  /**
   * Share (0..1) of the structured-output fields found in the request's text that come back
   * altered (a changed digit, a changed word), deterministically by model, content and field,
   * every time: a model's mistakes, not a first-sight flaw.
   * @defaultValue 0
   */
  alterFields: number;
  /** Requests answered 400 because of their text; `null`: none. @defaultValue null */
  reject: RejectRule | null;
  /** Requests withheld by a content filter, with status 200 (Azure OpenAI); `null`: none. @defaultValue null */
  contentFilter: ContentFilterRule | null;
  /** 429 with Retry-After past these limits, as a paid endpoint; `null`: unlimited like vLLM. @defaultValue null */
  rateLimit: RateLimit | null;
  /** Answers (200) sent without their token counts, this way; `null`: `usage` always sent, as vLLM. @defaultValue null */
  omitUsage: OmitUsage | null;
  /**
   * Share (0..1) of answers that go without usage while `omitUsage` is set, chosen
   * deterministically per request: by its `X-Request-Id`, else by its content.
   * @defaultValue 1
   */
  omitUsageShare: number;
}

/** What the served model is. Fixed at start. */
export interface ModelTraits {
  /** `false`: a text-only model; an image part gets vLLM's 400 "<model> is not a multimodal model". @defaultValue true */
  acceptsImages: boolean;
}

export const ANSWER_FAULT_DEFAULTS: AnswerFaults = Object.freeze({
  cutoff: 0,
  loop: 0,
  invalidJson: 0,
  alterFields: 0,
  reject: null,
  contentFilter: null,
  rateLimit: null,
  omitUsage: null,
  omitUsageShare: 1,
});

export const MODEL_TRAIT_DEFAULTS: ModelTraits = Object.freeze({ acceptsImages: true });

/** The window of rate limits when `windowMs` is not given. */
export const RATE_WINDOW_MS = 60_000;

function bad(name: string, value: unknown, want: string): TypeError {
  return new TypeError(`Emulator option \`${name}\` must be ${want}; got ${JSON.stringify(value) ?? String(value)}`);
}

function share(name: string, v: unknown): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 1) throw bad(name, v, 'a share between 0 and 1');
}

function plainObject(name: string, v: unknown, keys: readonly string[], shape: string): asserts v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(name, v, `null or ${shape}`);
  for (const k of Object.keys(v)) if (!keys.includes(k)) throw bad(name, v, `${shape} (unknown key \`${k}\`)`);
}

function nonEmptyString(v: unknown): boolean {
  return typeof v === 'string' && v !== '';
}

function checkReject(r: unknown): void {
  const shape = '{ matchText: string | string[], message? }';
  plainObject('reject', r, ['matchText', 'message'], shape);
  const m = r.matchText;
  const ok = nonEmptyString(m) || (Array.isArray(m) && m.length > 0 && m.every(nonEmptyString));
  if (!ok) throw bad('reject.matchText', m, 'a non-empty string or a non-empty list of non-empty strings');
  if (r.message !== undefined && !nonEmptyString(r.message)) throw bad('reject.message', r.message, 'a non-empty string');
}

function checkContentFilter(r: unknown): void {
  const shape = "{ matchText: string | string[], on: 'prompt' | 'output' }";
  plainObject('contentFilter', r, ['matchText', 'on'], shape);
  const m = r.matchText;
  const ok = nonEmptyString(m) || (Array.isArray(m) && m.length > 0 && m.every(nonEmptyString));
  if (!ok) throw bad('contentFilter.matchText', m, 'a non-empty string or a non-empty list of non-empty strings');
  if (r.on !== 'prompt' && r.on !== 'output') throw bad('contentFilter.on', r.on, "'prompt' or 'output'");
}

function checkRateLimit(r: unknown): void {
  plainObject('rateLimit', r, ['rpm', 'tpm', 'windowMs'], '{ rpm?, tpm?, windowMs? }');
  if (r.rpm === undefined && r.tpm === undefined) throw bad('rateLimit', r, 'null or have `rpm` or `tpm`');
  for (const key of ['rpm', 'tpm'] as const) {
    const v = r[key];
    if (v !== undefined && (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1)) throw bad(`rateLimit.${key}`, v, 'an integer >= 1');
  }
  const w = r.windowMs;
  if (w !== undefined && (typeof w !== 'number' || !Number.isSafeInteger(w) || w < 100)) throw bad('rateLimit.windowMs', w, 'an integer >= 100');
}

export function checkAnswerFaults(f: AnswerFaults): void {
  for (const kind of FLAW_KINDS) share(kind, f[kind]);
  const sum = f.cutoff + f.loop + f.invalidJson;
  if (sum > 1 + 1e-9) {
    throw new TypeError(`Emulator options \`cutoff\` + \`loop\` + \`invalidJson\` must add up to at most 1 (a request gets one flaw at most); got ${sum}`);
  }
  share('alterFields', f.alterFields);
  if (f.reject !== null) checkReject(f.reject);
  if (f.contentFilter !== null) checkContentFilter(f.contentFilter);
  if (f.rateLimit !== null) checkRateLimit(f.rateLimit);
  if (f.omitUsage !== null && !(OMIT_USAGE_MODES as readonly unknown[]).includes(f.omitUsage)) throw bad('omitUsage', f.omitUsage, `null or one of ${OMIT_USAGE_MODES.join(', ')}`);
  share('omitUsageShare', f.omitUsageShare);
}

export function checkModelTraits(o: ModelTraits): void {
  if (typeof o.acceptsImages !== 'boolean') throw bad('acceptsImages', o.acceptsImages, 'true or false');
}

/** The strings of a reject (or content filter) rule. */
export function rejectNeedles(rule: { matchText: string | string[] }): readonly string[] {
  return typeof rule.matchText === 'string' ? [rule.matchText] : rule.matchText;
}
