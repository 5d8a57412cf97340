/**
 * An event stream sent back to a request that asked for none (`"stream": false`): some proxies
 * and gateways force streaming. The body is `text/event-stream`, `data: {chunk}` events (blank
 * line between) ending `data: [DONE]`. It is assembled here into the chat completion the request
 * asked for: the text of choice 0 joined from its deltas, its last finish_reason, the usage of the
 * chunk that carries one (`stream_options.include_usage`), the first id and model, and a content
 * filter's results (Azure OpenAI's `prompt_filter_results`, a choice's `content_filter_results`).
 *
 * - An event that carries `{"error": ...}` (an engine failing mid-stream) is returned as that
 *   error body: the client classifies it like the HTTP error it stands for.
 * - A stream cut off before its end (no `[DONE]` and no finish_reason) is ENGINE_ERROR: the text
 *   is partial, and the request is sent again.
 * - Tool calls' arguments are joined per `index` (kept in a Map: an index is the server's word, and
 *   a huge one must not make a huge array); more than MAX_TOOL_CALLS of them is ENGINE_ERROR.
 */
import { EngineError } from './classify.ts';

/** Distinct tool calls one assembled answer may hold: docbatch asks for none (a gateway's forced tool call is one). */
const MAX_TOOL_CALLS = 64;

/** Whether a 2xx answer is an event stream: its Content-Type says so, or its body starts like one (a mislabelling proxy). */
export function isEventStream(contentType: string | string[] | undefined, text: string): boolean {
  const type = Array.isArray(contentType) ? contentType.join(',') : (contentType ?? '');
  // A JSON body is JSON whatever its label (a proxy that marks every answer as a stream).
  if (/^\uFEFF?\s*[{[]/.test(text.slice(0, 64))) return false;
  return /text\/event-stream/i.test(type) || /^\s*(?:data|event|id):/.test(text.slice(0, 64));
}

function record(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

/**
 * The `data` of each event, in order: several `data:` lines of one event joined by a newline, as
 * the standard says, unless they do not read as one JSON value that way while each line does (a
 * server that ends its events with a single newline).
 */
function events(text: string): string[] {
  const out: string[] = [];
  let data: string[] = [];
  const flush = (): void => {
    if (data.length === 0) return;
    if (data.length > 1 && !parses(data.join('\n')) && data.every((d) => parses(d) || d.trim() === '[DONE]')) out.push(...data);
    else out.push(data.join('\n'));
    data = [];
  };
  for (const line of text.split(/\r\n|\r|\n/)) {
    if (line === '') flush();
    else if (line.startsWith('data:')) data.push(line.slice(line.startsWith('data: ') ? 6 : 5));
    // `event:`, `id:`, `retry:` and `:` comments carry nothing we read.
  }
  flush();
  return out;
}

function parses(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * The chat completion (as JSON text) an event stream adds up to, or the error body one of its
 * events carries. Throws ENGINE_ERROR for a stream that is not one, or was cut off.
 */
export function assembleEventStream(text: string, status: number): string {
  let content = '';
  let reasoning = '';
  let sawChoice = false;
  let finish: string | null = null;
  let usage: unknown;
  let id: unknown;
  let model: unknown;
  let done = false;
  /** Tool calls' arguments by their `index` in the stream: a Map, so an index of 2^31 costs one entry, not a sparse array of that length. */
  const toolArgs = new Map<number, string>();
  /** A content filter's results (Azure OpenAI): the prompt's, in a chunk of their own; the answer's, on its choice. */
  let promptFilter: unknown;
  let answerFilter: unknown;
  for (const data of events(text)) {
    if (data.trim() === '[DONE]') {
      done = true;
      break;
    }
    let chunk: Record<string, unknown> | undefined;
    try {
      chunk = record(JSON.parse(data));
    } catch (err) {
      throw new EngineError('ENGINE_ERROR', `engine answered a non-streaming request with an event stream, and one of its events is not JSON: ${JSON.stringify(data.slice(0, 200))}`, { status, cause: err });
    }
    if (!chunk) continue;
    if (chunk.error !== undefined && chunk.error !== null) return JSON.stringify(chunk);
    id ??= chunk.id;
    model ??= chunk.model;
    if (record(chunk.usage)) usage = chunk.usage;
    promptFilter ??= chunk.prompt_filter_results;
    for (const c of Array.isArray(chunk.choices) ? chunk.choices : []) {
      const choice = record(c);
      if (!choice || (typeof choice.index === 'number' && choice.index !== 0)) continue;
      sawChoice = true;
      const delta = record(choice.delta) ?? record(choice.message) ?? {};
      if (typeof delta.content === 'string') content += delta.content;
      else if (typeof choice.text === 'string') content += choice.text; // a /v1/completions-style chunk
      const thought = delta.reasoning_content ?? delta.reasoning;
      if (typeof thought === 'string') reasoning += thought;
      for (const call of Array.isArray(delta.tool_calls) ? delta.tool_calls : []) {
        const fn = record(record(call)?.function);
        const index = record(call)?.index;
        const at = typeof index === 'number' && Number.isFinite(index) ? index : 0;
        if (typeof fn?.arguments !== 'string') continue;
        if (!toolArgs.has(at) && toolArgs.size >= MAX_TOOL_CALLS) {
          throw new EngineError('ENGINE_ERROR', `engine answered a non-streaming request with an event stream of more than ${MAX_TOOL_CALLS} tool calls (index ${at}): not an answer docbatch asked for`, { status });
        }
        toolArgs.set(at, (toolArgs.get(at) ?? '') + fn.arguments);
      }
      if (typeof choice.finish_reason === 'string') finish = choice.finish_reason;
      if (choice.content_filter_results !== undefined) answerFilter = choice.content_filter_results;
    }
  }
  if (!done && finish === null) {
    throw new EngineError('ENGINE_ERROR', `engine answered a non-streaming request with an event stream that ended before its end (no [DONE], no finish_reason): the answer is partial (${content.length} characters)`, { status });
  }
  const message: Record<string, unknown> = { role: 'assistant', content };
  if (reasoning !== '') message.reasoning_content = reasoning;
  if (toolArgs.size > 0) {
    // In the order of their indexes, numbered from 0: the indexes a server gives need not start at 0 or be dense.
    message.tool_calls = [...toolArgs.entries()].sort(([a], [b]) => a - b).map(([, args], index) => ({ index, type: 'function', function: { arguments: args } }));
  }
  return JSON.stringify({
    ...(id !== undefined ? { id } : {}),
    object: 'chat.completion',
    ...(model !== undefined ? { model } : {}),
    choices: sawChoice ? [{ index: 0, message, finish_reason: finish, ...(answerFilter !== undefined ? { content_filter_results: answerFilter } : {}) }] : [],
    ...(usage !== undefined ? { usage } : {}),
    ...(promptFilter !== undefined ? { prompt_filter_results: promptFilter } : {}),
  });
}
