/**
 * Request settings an endpoint refuses for a model, learnt from its 400 answers, so a request
 * can go again as the endpoint asks instead of failing every unit as BAD_REQUEST.
 *
 * OpenAI's reasoning models (o1, o3, o4-mini, gpt-5 ...) and gateways in front of them answer
 * `Unsupported parameter: 'max_tokens' is not supported with this model. Use
 * 'max_completion_tokens' instead.` and `Unsupported value: 'temperature' does not support 0
 * with this model. Only the default (1) value is supported.` (`invalid_request_error`, with
 * `param` and `code` `unsupported_parameter` / `unsupported_value`). Only these are learnt: the
 * token cap under its other name, and the sampling settings that have a server default
 * (temperature, top_p). Also a model's cap on its replies, below the max_tokens asked (OpenAI
 * "max_tokens is too large: N. This model supports at most M completion tokens", an
 * Anthropic-compatible "max_tokens: N > M, which is the maximum allowed number of output
 * tokens", Groq "`max_tokens` must be less than or equal to `M`"): max_tokens is lowered to it;
 * an endpoint that takes temperature or top_p but not both: top_p goes (the retries rise the
 * temperature); one that refuses temperature 0 (older TGI: "`temperature` must be strictly
 * positive") is sent 0.01 instead. And structured output: an endpoint that refuses `response_format` json_schema
 * (older vLLM, servers that take only json_object, or none) is asked the next way it may take
 * (structured-fallback.ts); one that takes json_object only when the messages say JSON is told to answer in JSON; one that takes the field and ignores it is found by its answers
 * (`answeredInProse`); one that refuses the task's schema in strict mode (OpenAI's strict subset:
 * "Invalid schema for response_format ...") is sent the same schema without `strict`. Anything else refused stays BAD_REQUEST; a context-length refusal is
 * the worker's to fit (src/infer/context-room.ts).
 */
import { parseErrorBody } from './error-body.ts';
import { bodyInMode, jsonWordRefusal, looksLikeJson, modeOf, MODE_WORDS, PROSE_LIMIT, strictRefusal, STRUCTURED_MODES, structuredRefusal, withJsonWord, withoutStrict, type StructuredMode } from './structured-fallback.ts';

/** What one model takes: the cap's name, the sampling settings it refuses, how it takes structured output. */
export interface ModelParams {
  completionTokens: boolean;
  dropped: Set<string>;
  /** The most tokens the model's replies may be capped at; null until an endpoint says. */
  maxOutput: number | null;
  /** The strongest way of asking for structured output it has not refused. */
  structured: StructuredMode;
  /** A json_schema is sent without `strict`: the endpoint refused the task's schema in strict mode. */
  notStrict: boolean;
  /** A json_object request's messages must say JSON: the instruction is added where they do not. */
  jsonWord: boolean;
  /** The lowest temperature sent, once the endpoint refused 0 (it samples always); null until then. */
  minTemperature: number | null;
  /** The structured-output rung was said in the log (once a request on it was answered). */
  structuredSaid: boolean;
  /** Answers in a row to structured requests that were not JSON at all (structured-fallback.ts PROSE_LIMIT). */
  proseAnswers: number;
}

export function newModelParams(): ModelParams {
  return { completionTokens: false, dropped: new Set(), maxOutput: null, structured: 'json_schema', notStrict: false, jsonWord: false, minTemperature: null, structuredSaid: false, proseAnswers: 0 };
}

/** Sampling settings the endpoint may refuse and has a default for: sent without, the model samples its own way. */
const DROPPABLE = new Set(['temperature', 'top_p']);

export type ParamFix = { kind: 'rename' } | { kind: 'drop'; param: string } | { kind: 'cap'; tokens: number } | { kind: 'notStrict' } | { kind: 'jsonWord' } | { kind: 'warm' } | { kind: 'structured'; mode: StructuredMode };

/** A model's cap on its replies, as endpoints word it (never a context length: that names input tokens). */
const OUTPUT_CAP = [
  /supports at most (\d+) completion tokens/i,
  /max_(?:completion_)?tokens`?:? \d+ > (\d+), which is the maximum allowed number of output tokens/i,
  /`?max_(?:completion_)?tokens`? must be less than or equal to `?(\d+)`?/i,
];
const EITHER_OR = /`?temperature`? and `?top_p`? cannot both be specified/i;
/** A temperature of 0 refused: the endpoint samples always (older TGI "`temperature` must be strictly positive", "must be in range (0, +inf)"). */
const POSITIVE_ONLY = /strictly positive|must be (?:> ?0(?:\.0)?\b|greater than 0|positive)|range \(0(?:\.0)?,/i;
/** What is sent instead of a temperature of 0 to such an endpoint: as near greedy as it takes. */
const LOWEST_TEMPERATURE = 0.01;

/** What a 400 answer asks to change in the request, or null when it asks nothing we may change. */
export function paramFix(status: number, text: string, body: Record<string, unknown>): ParamFix | null {
  if (status !== 400 && status !== 422 && status !== 501) return null;
  const { message, param } = parseErrorBody(text); // every error shape, read as classify reads it
  if ('max_tokens' in body && /max_completion_tokens/.test(message) && (param === 'max_tokens' || /'?max_tokens'?\s+is not supported/i.test(message))) {
    return { kind: 'rename' };
  }
  const asked = Number(body.max_tokens ?? body.max_completion_tokens);
  for (const re of OUTPUT_CAP) {
    const cap = Number(re.exec(message)?.[1]);
    if (Number.isInteger(cap) && cap > 0 && cap < asked && !/context length|context window|input tokens/i.test(message)) return { kind: 'cap', tokens: cap };
  }
  if (EITHER_OR.test(message) && 'temperature' in body && 'top_p' in body) return { kind: 'drop', param: 'top_p' };
  if (typeof body.temperature === 'number' && body.temperature <= 0 && /temperature/i.test(message) && POSITIVE_ONLY.test(message)) return { kind: 'warm' };
  const named = param ?? /^Unsupported (?:value|parameter): '([a-z_]+)'/i.exec(message)?.[1];
  if (named && DROPPABLE.has(named) && named in body && /unsupported|not supported|only the default/i.test(message)) return { kind: 'drop', param: named };
  if (strictRefusal(status, message, body)) return { kind: 'notStrict' };
  if (jsonWordRefusal(status, message, body)) return { kind: 'jsonWord' };
  const mode = structuredRefusal(status, message, param, body);
  return mode === null ? null : { kind: 'structured', mode };
}

/** The request body as a model takes it (a new object; `base` is the request as built). */
export function applyParams(base: Readonly<Record<string, unknown>>, params: ModelParams | undefined): Record<string, unknown> {
  if (!params) return { ...base };
  let body = bodyInMode(base, params.structured);
  if (params.notStrict) body = withoutStrict(body);
  if (params.jsonWord) body = withJsonWord(body);
  if (params.minTemperature !== null && typeof body.temperature === 'number' && body.temperature < params.minTemperature) body.temperature = params.minTemperature;
  if (params.completionTokens && 'max_tokens' in body) {
    body.max_completion_tokens = body.max_tokens;
    delete body.max_tokens;
  }
  for (const param of params.dropped) delete body[param];
  if (params.maxOutput !== null) {
    for (const key of ['max_tokens', 'max_completion_tokens']) {
      if (typeof body[key] === 'number' && body[key] > params.maxOutput) body[key] = params.maxOutput;
    }
  }
  return body;
}

/**
 * Records a fix for a model; returns a sentence for the log, or null when the model was already
 * known to need it (requests sent at once all meet the refusal before one of them has learnt).
 */
export function learn(params: ModelParams, fix: ParamFix, model: string, body: Record<string, unknown>): string | null {
  if (fix.kind === 'structured') {
    // Said once the model answers on a rung (answered), not per refusal on the way down.
    if (STRUCTURED_MODES.indexOf(fix.mode) > STRUCTURED_MODES.indexOf(params.structured)) params.structured = fix.mode;
    return null;
  }
  if (fix.kind === 'notStrict') {
    if (params.notStrict) return null;
    params.notStrict = true;
    return `${model} refuses the task's JSON Schema in strict mode (response_format json_schema, strict: true): it is sent without strict from now on (the endpoint then guides the answer by the schema without guaranteeing it); answers are still validated against the task's schema`;
  }
  if (fix.kind === 'warm') {
    if (params.minTemperature !== null) return null;
    params.minTemperature = LOWEST_TEMPERATURE;
    return `${model} refuses temperature 0 (it always samples): ${LOWEST_TEMPERATURE} is sent for it from now on, as near greedy as it takes`;
  }
  if (fix.kind === 'jsonWord') {
    if (params.jsonWord) return null;
    params.jsonWord = true;
    return `${model} takes response_format json_object only when the messages say JSON: a request whose prompt does not gets the instruction to answer in JSON added from now on`;
  }
  if (fix.kind === 'cap') {
    if (params.maxOutput !== null && params.maxOutput <= fix.tokens) return null;
    params.maxOutput = fix.tokens;
    return `${model} caps replies at ${fix.tokens} tokens: max_tokens above that is lowered to it from now on`;
  }
  if (fix.kind === 'rename') {
    if (params.completionTokens) return null;
    params.completionTokens = true;
    return `${model} refuses max_tokens: its replies are capped with max_completion_tokens from now on`;
  }
  if (params.dropped.has(fix.param)) return null;
  params.dropped.add(fix.param);
  return `${model} refuses ${fix.param} ${JSON.stringify(body[fix.param])}: requests go without it from now on (the model's default)`;
}

/**
 * An answer to a request sent with `body`. A request that asked for structured output on a rung
 * with a field (json_schema, guided_json, json_object) and got an answer that is not JSON at all
 * counts towards PROSE_LIMIT in a row; one that looks like JSON ends the row. At the limit the
 * endpoint is taken to ignore the field (it took it without a word): the model is asked with the
 * schema in the prompt alone from then on. Returns null when the answer stands; else whether to
 * send it again (always) and the sentence for the log (once per model, when it changes rung).
 */
export function answeredInProse(params: ModelParams, model: string, body: Readonly<Record<string, unknown>>, text: string): { sentence: string | null } | null {
  const mode = modeOf(body);
  if (mode === null) return null;
  if (looksLikeJson(text)) {
    params.proseAnswers = 0;
    return null;
  }
  if (++params.proseAnswers < PROSE_LIMIT && params.structured !== 'prompt') return null;
  params.proseAnswers = 0;
  if (params.structured === 'prompt') return { sentence: null }; // a request sent before the model changed rung
  params.structured = 'prompt';
  params.structuredSaid = true;
  return {
    sentence: `${model} ignores ${MODE_WORDS[mode]}: ${PROSE_LIMIT} answers in a row to requests for structured output were not JSON at all; the schema is put in the prompt alone from now on (answers are still validated against the task's schema). SCHEMA_IN_PROMPT=1 does so from the start`,
  };
}

/**
 * The sentence for the log, once per model, when a request answered on a weaker structured-output
 * rung than json_schema; null otherwise. `base` is the request as built (before applyParams).
 */
export function structuredAnswered(params: ModelParams | undefined, model: string, base: Readonly<Record<string, unknown>>): string | null {
  if (!params || params.structured === 'json_schema' || params.structuredSaid || modeOf(base) === null) return null;
  params.structuredSaid = true;
  return `${model} refuses response_format json_schema: structured output is asked as ${MODE_WORDS[params.structured]} from now on; answers are still validated against the task's schema`;
}
