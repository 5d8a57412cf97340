/**
 * Every answer shape the reference (shared/reference/vllm-api.md) says a client meets, with the
 * code the client must give it. Served for real by client.test.ts, and run through the pure
 * classifier by classify.test.ts.
 */
import type { ErrorCode } from '../../src/errors.ts';

export interface Shape {
  name: string;
  status: number;
  /** A string is sent as is (with a text/html or text/plain type when it is not JSON). */
  body: unknown;
  headers?: Record<string, string>;
  code: ErrorCode;
  engineDead?: boolean;
  engineType?: string;
  /** A substring of the error's message. */
  message?: string;
  context?: { maxContextLength: number | null; promptTokens: number | null; maxTokens: number | null };
  retryAfterMs?: number;
}

const nested = (message: string, type: string, code: number | null, param: string | null = null) => ({
  error: { message, type, param, code },
});
const flat = (message: string, type: string, code: number, param: string | null = null) => ({
  object: 'error',
  message,
  type,
  param,
  code,
});

const CONTEXT_NOW =
  "This model's maximum context length is 4096 tokens. However, you requested 512 output tokens and your prompt contains 4000 input tokens, for a total of 4512 tokens. Please reduce the length of the input prompt or the number of requested output tokens.";
const CONTEXT_OLD =
  "This model's maximum context length is 4096 tokens. However, you requested 4512 tokens (4000 in the messages, 512 in the completion). Please reduce the length of the messages or completion.";
const CONTEXT_MAX_TOKENS =
  "'max_tokens' or 'max_completion_tokens' is too large: 8000. This model's maximum context length is 4096 tokens and your request has 2778 input tokens (8000 > 4096 - 2778).";
const ENGINE_DEAD = 'EngineCore encountered an issue. See stack trace (above) for the root cause.';

export const ERROR_SHAPES: Shape[] = [
  // ---- vLLM, current nested shape ----
  {
    name: 'vLLM 400 context length (param input_tokens)',
    status: 400,
    body: nested(CONTEXT_NOW, 'BadRequestError', 400, 'input_tokens'),
    code: 'CONTEXT_TOO_LONG',
    engineType: 'BadRequestError',
    context: { maxContextLength: 4096, promptTokens: 4000, maxTokens: 512 },
  },
  {
    name: 'vLLM 400 max_tokens too large',
    status: 400,
    body: nested(CONTEXT_MAX_TOKENS, 'BadRequestError', 400),
    code: 'CONTEXT_TOO_LONG',
    context: { maxContextLength: 4096, promptTokens: 2778, maxTokens: 8000 },
  },
  {
    name: 'vLLM 400 too many images',
    status: 400,
    body: nested('At most 1 image(s) may be provided in one prompt.', 'BadRequestError', 400),
    code: 'BAD_REQUEST',
    engineType: 'BadRequestError',
    message: 'At most 1 image(s)',
  },
  {
    // The same check on a model that takes none (vLLM's limit_mm_per_prompt image=0, or a text model).
    name: 'vLLM 400 no images allowed at all',
    status: 400,
    body: nested('At most 0 image(s) may be provided in one prompt.', 'BadRequestError', 400),
    code: 'MODEL_NO_IMAGES',
    engineType: 'BadRequestError',
    message: 'At most 0 image(s)',
  },
  {
    name: 'vLLM 404 unknown model',
    status: 404,
    body: nested('The model `qwen-vl` does not exist.', 'NotFoundError', 404),
    code: 'MODEL_NOT_FOUND',
    engineType: 'NotFoundError',
  },
  {
    name: 'vLLM 501 non-base64 data URL',
    status: 501,
    body: nested('Only base64 data URLs are supported for now.', 'NotImplementedError', 501),
    code: 'ENGINE_UNSUPPORTED',
  },
  {
    name: 'vLLM 500 engine dead',
    status: 500,
    body: nested(ENGINE_DEAD, 'InternalServerError', 500),
    code: 'ENGINE_DOWN',
    engineDead: true,
    engineType: 'InternalServerError',
  },
  {
    name: 'vLLM 500 other',
    status: 500,
    body: nested('Something unexpected in the chat template.', 'InternalServerError', 500),
    code: 'ENGINE_ERROR',
  },
  // ---- older vLLM and SGLang: flat ----
  {
    name: 'old vLLM 400 context length (flat)',
    status: 400,
    body: flat(CONTEXT_OLD, 'BadRequestError', 400),
    code: 'CONTEXT_TOO_LONG',
    context: { maxContextLength: 4096, promptTokens: 4000, maxTokens: 512 },
  },
  {
    name: 'old vLLM 500 EngineDeadError (flat)',
    status: 500,
    body: flat('AsyncEngineDeadError: Background loop has errored already.', 'EngineDeadError', 500),
    code: 'ENGINE_DOWN',
    engineDead: true,
  },
  {
    name: 'SGLang 400 input longer than context (flat)',
    status: 400,
    body: flat("The input (5000 tokens) is longer than the model's context length (4096 tokens).", 'BadRequestError', 400),
    code: 'CONTEXT_TOO_LONG',
    context: { maxContextLength: 4096, promptTokens: 5000, maxTokens: null },
  },
  {
    name: 'vLLM 0.16 400 "You passed N input tokens ... context length is only M"',
    status: 400,
    body: nested(
      "You passed 30721 input tokens and requested 2048 output tokens. However, the model's context length is only 32768 tokens, resulting in a maximum input length of 30720 tokens. Please reduce the length of the input prompt. (parameter=input_tokens, value=30721)",
      'BadRequestError',
      400,
      'input_tokens',
    ),
    code: 'CONTEXT_TOO_LONG',
    context: { maxContextLength: 32768, promptTokens: 30721, maxTokens: 2048 },
  },
  {
    // The prompt counted in characters: the "N input tokens" there is a bound, not the prompt.
    name: 'vLLM 400 prompt over its character bound',
    status: 400,
    body: nested(
      "This model's maximum context length is 4096 tokens. However, you requested 512 output tokens and your prompt contains 20000 characters (more than 14336 characters, which is the upper bound for 3584 input tokens). Please reduce the length of the input prompt.",
      'BadRequestError',
      400,
      'input_tokens',
    ),
    code: 'CONTEXT_TOO_LONG',
    context: { maxContextLength: 4096, promptTokens: null, maxTokens: 512 },
  },
  {
    name: 'vLLM 400 "max_tokens=N cannot be greater than max_model_len=M"',
    status: 400,
    body: nested('max_tokens=8888 cannot be greater than max_model_len=max_total_tokens=3072. Please request fewer output tokens.', 'BadRequestError', 400, 'max_tokens'),
    code: 'CONTEXT_TOO_LONG',
    context: { maxContextLength: 3072, promptTokens: null, maxTokens: 8888 },
  },
  {
    name: 'TGI 422 inputs + max_new_tokens over the total',
    status: 422,
    body: { error: 'Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. Given: 4000 `inputs` tokens and 512 `max_new_tokens`', error_type: 'validation' },
    code: 'CONTEXT_TOO_LONG',
    context: { maxContextLength: 4096, promptTokens: 4000, maxTokens: 512 },
  },
  {
    // The prompt alone over TGI's --max-input-tokens: the numbers say no max_tokens helps (a page unit is rendered smaller).
    name: 'TGI 422 inputs over the input limit',
    status: 422,
    body: { error: 'Input validation error: `inputs` must have less than 4095 tokens. Given: 5120', error_type: 'validation' },
    code: 'CONTEXT_TOO_LONG',
    context: { maxContextLength: 4095, promptTokens: 5120, maxTokens: null },
  },
  {
    name: 'llama.cpp 400 request over the context size',
    status: 400,
    body: { error: { code: 400, message: 'request (5000 tokens) exceeds the available context size (4096 tokens), try increasing it', type: 'exceed_context_size_error', n_prompt_tokens: 5000, n_ctx: 4096 } },
    code: 'CONTEXT_TOO_LONG',
    context: { maxContextLength: 4096, promptTokens: 5000, maxTokens: null },
  },
  {
    // llama.cpp builds of 2025 name the numbers only in fields beside the message.
    name: 'llama.cpp 400 request over the context size, the numbers in fields only',
    status: 400,
    body: { error: { code: 400, message: 'the request exceeds the available context size, try increasing it', type: 'exceed_context_size_error', n_prompt_tokens: 5000, n_ctx: 4096 } },
    code: 'CONTEXT_TOO_LONG',
    context: { maxContextLength: 4096, promptTokens: 5000, maxTokens: null },
  },
  {
    name: 'SGLang 503 queue full (flat)',
    status: 503,
    body: flat('The request queue is full.', 'ServiceUnavailableError', 503),
    code: 'ENGINE_BUSY',
  },
  // ---- Ollama: nested with code null ----
  {
    name: 'Ollama 503 server busy',
    status: 503,
    body: nested('server busy, please try again.  maximum pending requests exceeded', 'api_error', null),
    code: 'ENGINE_BUSY',
  },
  {
    name: 'Ollama 404 model not found',
    status: 404,
    body: nested('model "llava:13b" not found, try pulling it first', 'api_error', null),
    code: 'MODEL_NOT_FOUND',
  },
  {
    // Azure OpenAI: the model is a deployment, and a wrong name is a 404 saying so (no "model" in it).
    name: 'Azure OpenAI 404 DeploymentNotFound',
    status: 404,
    body: { error: { code: 'DeploymentNotFound', message: 'The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.' } },
    code: 'MODEL_NOT_FOUND',
  },
  // Vercel: a host that names no deployment (a typo, a deployment deleted, a preview URL gone).
  // Its words ("The deployment could not be found") are no model's: ENGINE_URL is wrong.
  {
    name: 'Vercel 404 DEPLOYMENT_NOT_FOUND (text/plain, x-vercel-error)',
    status: 404,
    body: 'The deployment could not be found on Vercel.\n\nDEPLOYMENT_NOT_FOUND\n\nfra1::m7x2k-1764800000000-1a2b3c4d5e6f\n',
    headers: { 'x-vercel-error': 'DEPLOYMENT_NOT_FOUND', 'x-vercel-id': 'fra1::m7x2k-1764800000000-1a2b3c4d5e6f' },
    code: 'ENGINE_UNSUPPORTED',
    message: 'ENGINE_URL',
  },
  {
    name: 'Vercel 404 DEPLOYMENT_NOT_FOUND as JSON, no header (a proxy dropped it)',
    status: 404,
    body: { error: { code: 'DEPLOYMENT_NOT_FOUND', message: 'The deployment could not be found on Vercel.' } },
    code: 'ENGINE_UNSUPPORTED',
    message: 'no deployment',
  },
  {
    name: 'Vercel 404 with x-vercel-error DEPLOYMENT_NOT_FOUND and an HTML page',
    status: 404,
    body: '<html><head><title>404: This page could not be found</title></head><body>Deployment not found</body></html>',
    headers: { 'x-vercel-error': 'deployment_not_found' },
    code: 'ENGINE_UNSUPPORTED',
    message: 'no deployment',
  },
  // ---- FastAPI and middleware ----
  { name: 'unknown route {"detail":"Not Found"}', status: 404, body: { detail: 'Not Found' }, code: 'ENGINE_UNSUPPORTED', message: 'Not Found' },
  {
    name: '422 FastAPI validation list',
    status: 422,
    body: { detail: [{ loc: ['body', 'messages'], msg: 'Field required', type: 'missing' }] },
    code: 'BAD_REQUEST',
    message: 'body.messages: Field required',
  },
  { name: 'bad API key {"error":"Unauthorized"}', status: 401, body: { error: 'Unauthorized' }, code: 'ENGINE_UNAUTHORIZED', message: 'ENGINE_API_KEY' },
  // ---- other servers, proxies ----
  {
    name: 'transformers server 500 CUDA out of memory',
    status: 500,
    body: { detail: 'CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.15 GiB total capacity; 76.50 GiB already allocated)' },
    code: 'ENGINE_OOM',
    engineDead: false,
  },
  {
    name: 'torch OutOfMemoryError in an engine death',
    status: 500,
    body: nested('EngineDeadError: torch.OutOfMemoryError: CUDA out of memory.', 'EngineDeadError', 500),
    code: 'ENGINE_OOM',
    engineDead: true,
  },
  { name: '503 with empty body (vLLM shutting down)', status: 503, body: '', code: 'ENGINE_DOWN' },
  {
    name: '429 with Retry-After (a rate limit: waited out, never a failure)',
    status: 429,
    body: nested('Too many requests', 'RateLimitError', 429),
    headers: { 'retry-after': '3' },
    code: 'ENGINE_RATE_LIMITED',
    retryAfterMs: 3000,
  },
  {
    name: '429 rate_limit_exceeded from a paid endpoint, no Retry-After',
    status: 429,
    body: { error: { message: 'Rate limit reached for requests per min (RPM): Limit 60, Used 60', type: 'rate_limit_exceeded', param: null, code: 'rate_limit_exceeded' } },
    code: 'ENGINE_RATE_LIMITED',
  },
  {
    name: '429 insufficient_quota (not transient)',
    status: 429,
    body: { error: { message: 'You exceeded your current quota, please check your plan and billing details.', type: 'insufficient_quota', param: null, code: 'insufficient_quota' } },
    code: 'ENGINE_QUOTA',
  },
  // A gateway's spent budget or a prepaid endpoint's spent credits: not transient either, and no fault of the unit.
  {
    name: 'LiteLLM 400 budget exceeded (a key or team budget spent)',
    status: 400,
    body: { error: { message: 'Budget has been exceeded! Current cost: 26.075, Max budget: 0.25', type: 'budget_exceeded', param: null, code: '400' } },
    code: 'ENGINE_QUOTA',
    message: 'Budget has been exceeded',
  },
  {
    name: 'LiteLLM 400 ExceededBudget (an end user over budget)',
    status: 400,
    body: { error: { message: 'ExceededBudget: User=486535c5 over budget. Spend=10.63354472, Budget=10.0', type: 'auth_error', param: 'None', code: '400' } },
    code: 'ENGINE_QUOTA',
  },
  {
    name: 'LiteLLM 429 budget_exceeded (a per-model budget spent)',
    status: 429,
    body: { error: { message: 'LiteLLM User: engineer-1, exceeded budget for model=gpt-4o', type: 'budget_exceeded', param: null, code: '429' } },
    code: 'ENGINE_QUOTA',
  },
  {
    name: 'OpenRouter 402 insufficient credits',
    status: 402,
    body: { error: { code: 402, message: 'Insufficient credits. Add more using https://openrouter.ai/settings/credits' } },
    code: 'ENGINE_QUOTA',
  },
  {
    // vLLM from late 2024 to late 2025: a request whose X-Request-Id is still running there (a unit sent again while its first send is being aborted).
    name: 'older vLLM 400 request id already running',
    status: 400,
    body: flat('Request id chatcmpl-d0a1-1-3 already running.', 'BadRequestError', 400),
    code: 'ENGINE_BUSY',
  },
  { name: '429 from an overloaded server (no limit named)', status: 429, body: nested('server overloaded, try later', 'ServiceUnavailableError', 429), code: 'ENGINE_BUSY' },
  {
    name: '400 image to a text-only vLLM model',
    status: 400,
    body: nested('Qwen2ForCausalLM is not a multimodal model', 'BadRequestError', 400),
    code: 'MODEL_NO_IMAGES',
  },
  {
    // TGI: a generation that failed in the server (a shard's transport, an exception): its fault, not the request's.
    name: 'TGI 424 generation failed',
    status: 424,
    body: { error: 'Request failed during generation: Server error: transport error', error_type: 'generation' },
    code: 'ENGINE_ERROR',
    message: 'Request failed during generation',
  },
  {
    // Anthropic's API (and its OpenAI-compatible route) overloaded: wait and send again, as a 503 "overloaded".
    name: 'Anthropic 529 overloaded',
    status: 529,
    body: { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } },
    code: 'ENGINE_BUSY',
  },
  { name: '500 plain text', status: 500, body: 'Internal Server Error', code: 'ENGINE_ERROR', message: 'Internal Server Error' },
  {
    name: '502 HTML from a proxy',
    status: 502,
    body: '<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>',
    code: 'ENGINE_DOWN',
    message: '502 Bad Gateway',
  },
  {
    // A proxy that gave up waiting for a long answer (nginx proxy_read_timeout, 60 s unless set): say which setting.
    name: '504 HTML from a proxy',
    status: 504,
    body: '<html><head><title>504 Gateway Time-out</title></head><body><center><h1>504 Gateway Time-out</h1></center><hr><center>nginx</center></body></html>',
    code: 'ENGINE_TIMEOUT',
    message: 'proxy_read_timeout',
  },
  // Cloudflare in front of the engine (a tunnel, a hosted endpoint): its own statuses for an origin
  // that is down or restarting (520-523, 530) wait for it like a 502; 524, an origin slower than
  // its 100 s, is a timeout like a 504.
  {
    name: 'Cloudflare 521 web server is down',
    status: 521,
    body: '<!DOCTYPE html><html><head><title>example.com | 521: Web server is down</title></head><body>Cloudflare</body></html>',
    code: 'ENGINE_DOWN',
    message: '521: Web server is down',
  },
  { name: 'Cloudflare 522 connection timed out', status: 522, body: 'error code: 522', code: 'ENGINE_DOWN' },
  { name: 'Cloudflare 530 origin unreachable (a tunnel whose connector is gone)', status: 530, body: 'error code: 1033', code: 'ENGINE_DOWN' },
  {
    name: 'Cloudflare 524 a timeout occurred',
    status: 524,
    body: '<!DOCTYPE html><html><head><title>example.com | 524: A timeout occurred</title></head><body>Cloudflare</body></html>',
    code: 'ENGINE_TIMEOUT',
  },
];

/** 200 answers that are not a usable completion. */
export const BAD_SUCCESS_SHAPES: Shape[] = [
  { name: '200 body that is not JSON', status: 200, body: '<html>hello</html>', code: 'ENGINE_ERROR', message: 'not JSON' },
  { name: '200 without choices', status: 200, body: { id: 'x', choices: [] }, code: 'ENGINE_ERROR', message: 'without choices' },
  {
    name: '200 with empty content',
    status: 200,
    body: { id: 'x', choices: [{ index: 0, message: { role: 'assistant', content: '' }, finish_reason: 'stop' }] },
    code: 'EMPTY_OUTPUT',
  },
  {
    name: '200 with null content',
    status: 200,
    body: { id: 'x', choices: [{ index: 0, message: { role: 'assistant', content: null }, finish_reason: 'length' }] },
    code: 'EMPTY_OUTPUT',
    message: '"length"',
  },
  {
    name: '200 with content null and the text in reasoning_content (a reasoning model out of room)',
    status: 200,
    body: { id: 'x', choices: [{ index: 0, message: { role: 'assistant', content: null, reasoning_content: 'Let me think about the page.' }, finish_reason: 'length' }] },
    code: 'EMPTY_OUTPUT',
    message: 'the model wrote 28 characters of reasoning (reasoning_content) and no answer',
  },
  {
    name: '200 finished by abort',
    status: 200,
    body: { id: 'x', choices: [{ index: 0, message: { role: 'assistant', content: 'half a sen' }, finish_reason: 'abort' }] },
    code: 'ENGINE_DOWN',
    message: 'abort',
  },
];
