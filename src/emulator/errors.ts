/**
 * The errors the emulated server answers with, and their body shapes. One ApiError is rendered in
 * whichever style the emulator currently wears (vLLM nested, flat, Ollama), because a client must
 * read all three.
 */
import type { ErrorStyle } from './options.ts';

/** What went wrong, as counted in `stats().errors`. */
export const ERROR_KINDS = [
  'bad_request',
  'context_length',
  'too_many_images',
  'model_not_found',
  'not_implemented',
  'engine_dead',
  'oom',
  'busy',
  'unauthorized',
  'not_found',
  'too_large',
  // Answer faults and model traits (answer-options.ts).
  'not_multimodal',
  'rejected',
  'rate_limited',
] as const;
export type ErrorKind = (typeof ERROR_KINDS)[number];

const VLLM_TYPES: Record<number, string> = {
  400: 'BadRequestError',
  401: 'UnauthorizedError',
  404: 'NotFoundError',
  413: 'BadRequestError',
  500: 'InternalServerError',
  501: 'NotImplementedError',
  503: 'ServiceUnavailableError',
};

/** Ollama's OpenAI layer maps statuses to OpenAI's type names and leaves `code` null. */
function ollamaType(status: number): string {
  if (status === 400) return 'invalid_request_error';
  if (status === 404) return 'not_found_error';
  return 'api_error';
}

export class ApiError extends Error {
  readonly status: number;
  readonly kind: ErrorKind;
  readonly param: string | null;
  /** Extra response headers (Retry-After and x-ratelimit-* on a 429). */
  readonly headers: Readonly<Record<string, string>>;

  constructor(status: number, kind: ErrorKind, message: string, param: string | null = null, headers: Record<string, string> = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.kind = kind;
    this.param = param;
    this.headers = headers;
  }
}

/** The JSON body of an error response in the given style. */
export function errorBody(err: ApiError, style: ErrorStyle): unknown {
  // These two are the same on every server we emulate (FastAPI's 404, the auth middleware's 401).
  if (err.kind === 'not_found') return { detail: 'Not Found' };
  if (err.kind === 'unauthorized') return { error: 'Unauthorized' };
  // A paid endpoint's 429 is OpenAI's shape whatever server it fronts.
  if (err.kind === 'rate_limited') return { error: { message: err.message, type: 'rate_limit_exceeded', param: null, code: 'rate_limit_exceeded' } };
  switch (style) {
    case 'vllm':
      return { error: { message: err.message, type: VLLM_TYPES[err.status] ?? 'InternalServerError', param: err.param, code: err.status } };
    case 'flat':
      return { object: 'error', message: err.message, type: VLLM_TYPES[err.status] ?? 'InternalServerError', param: err.param, code: err.status };
    case 'ollama':
      return { error: { message: err.message, type: ollamaType(err.status), param: null, code: null } };
  }
}

export const badRequest = (message: string, param: string | null = null): ApiError => new ApiError(400, 'bad_request', message, param);

export function contextTooLong(maxModelLen: number, requestedOutput: number, promptTokens: number): ApiError {
  const total = requestedOutput + promptTokens;
  return new ApiError(
    400,
    'context_length',
    `This model's maximum context length is ${maxModelLen} tokens. However, you requested ${requestedOutput} output tokens ` +
      `and your prompt contains ${promptTokens} input tokens, for a total of ${total} tokens. ` +
      'Please reduce the length of the input prompt or the number of requested output tokens. ' +
      `(parameter=input_tokens, value=${promptTokens})`,
    'input_tokens',
  );
}

/**
 * The refusal of a vLLM that counts a prompt only up to what could fit (max_model_len - max_tokens
 * + 1 tokens) before it refuses: it names a lower bound of the prompt, not its size.
 */
export function contextTooLongAtLeast(maxModelLen: number, requestedOutput: number): ApiError {
  const atLeast = Math.max(1, maxModelLen - requestedOutput + 1);
  return new ApiError(
    400,
    'context_length',
    `This model's maximum context length is ${maxModelLen} tokens. However, you requested ${requestedOutput} output tokens ` +
      `and your prompt contains at least ${atLeast} input tokens, for a total of at least ${atLeast + requestedOutput} tokens. ` +
      'Please reduce the length of the input prompt or the number of requested output tokens. ' +
      `(parameter=input_tokens, value=${atLeast})`,
    'input_tokens',
  );
}

export const tooManyImages = (limit: number): ApiError =>
  new ApiError(400, 'too_many_images', `At most ${limit} image(s) may be provided in one prompt.`);

export const modelNotFound = (model: string): ApiError =>
  new ApiError(404, 'model_not_found', `The model \`${model}\` does not exist.`, 'model');

export const notImplemented = (message: string): ApiError => new ApiError(501, 'not_implemented', message);

export const engineDead = (): ApiError =>
  new ApiError(500, 'engine_dead', 'EngineCore encountered an issue. See stack trace (above) for the root cause.');

export const cudaOom = (): ApiError =>
  new ApiError(
    500,
    'oom',
    'CUDA out of memory. Tried to allocate 2.31 GiB. GPU 0 has a total capacity of 23.68 GiB of which 1.12 GiB is free. ' +
      'Of the allocated memory 20.84 GiB is allocated by PyTorch, and 1.29 GiB is reserved by PyTorch but unallocated.',
  );

/** Ollama's exact text, two spaces included. */
export const serverBusy = (): ApiError =>
  new ApiError(503, 'busy', 'server busy, please try again.  maximum pending requests exceeded');

export const routeNotFound = (): ApiError => new ApiError(404, 'not_found', 'Not Found');
export const unauthorized = (): ApiError => new ApiError(401, 'unauthorized', 'Unauthorized');
export const bodyTooLarge = (limit: number): ApiError => new ApiError(413, 'too_large', `Request body larger than ${limit} bytes.`);

/** vLLM's ValueError for an image part sent to a text-only model (MultiModalRegistry.create_processor). */
export const notMultimodal = (model: string): ApiError => new ApiError(400, 'not_multimodal', `${model} is not a multimodal model`);

/** The reject fault: a 400 BadRequestError for this request's text. */
export const rejected = (message: string): ApiError => new ApiError(400, 'rejected', message);

/** A paid endpoint's 429, with Retry-After and x-ratelimit-* headers. */
export const rateLimited = (message: string, headers: Record<string, string>): ApiError => new ApiError(429, 'rate_limited', message, null, headers);
