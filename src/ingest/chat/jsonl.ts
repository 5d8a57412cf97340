/**
 * One line of generic JSONL (`{"id","title","messages":[{"role","content"}]}`, the shape of
 * fine-tuning data sets) → the conversation. `content` is a string or a list of parts; text
 * parts are kept (`text`, and the Responses API's `input_text`, `output_text`), a refusal as
 * `[refusal] ...`, images become `[image]`, other part types are skipped with a count. The calls
 * an assistant message makes (`tool_calls`, the older `function_call`; its `content` is then
 * usually null) are part of what it said: `[tool call: name]` and the arguments.
 */
import { FieldError, bounded, expectArray, expectObject, expectString, isObject, kindOf, optionalString, optionalTime, MAX_ID_CHARS, MAX_ROLE_CHARS, MAX_TITLE_CHARS } from './fields.ts';
import type { ChatMessage, Conversation, SkipCounter } from './types.ts';

export function readJsonlConversation(value: unknown, skips: SkipCounter, line: number): Conversation {
  const conv = expectObject(value, '(conversation)');
  const rawId = conv['id'];
  const id = typeof rawId === 'number' ? String(rawId) : (bounded(optionalString(rawId, 'id'), 'id', MAX_ID_CHARS) ?? `line-${line}`);
  const title = bounded(optionalString(conv['title'], 'title'), 'title', MAX_TITLE_CHARS) ?? '';
  const createTime = optionalTime(conv['create_time'] ?? conv['created_at']);
  const list = expectArray(conv['messages'], 'messages');
  const messages: ChatMessage[] = [];
  for (let i = 0; i < list.length; i++) {
    const at = `messages[${i}]`;
    const msg = expectObject(list[i], at);
    const role = bounded(expectString(msg['role'], `${at}.role`), `${at}.role`, MAX_ROLE_CHARS);
    const text = [renderContent(msg['content'], `${at}.content`, skips), ...renderCalls(msg, at)].filter((s) => s.trim() !== '').join('\n');
    if (text.trim() === '') {
      skips.add('empty');
      continue;
    }
    const mid = msg['id'];
    messages.push({ id: typeof mid === 'string' ? bounded(mid, `${at}.id`, MAX_ID_CHARS) : typeof mid === 'number' ? String(mid) : String(i), role, text });
  }
  return { id, title, createTime, messages };
}

/**
 * `tool_calls: [{function: {name, arguments}}]` and `function_call: {name, arguments}`, in order.
 * A call of another type (`{type: "code_interpreter", code_interpreter: {...}}`) is shown by its
 * type and payload: these fields are optional, and a shape we do not know never refuses an export.
 */
function renderCalls(msg: Record<string, unknown>, at: string): string[] {
  const calls: Array<{ call: unknown; field: string }> = [];
  const list = msg['tool_calls'];
  if (list !== undefined && list !== null) {
    expectArray(list, `${at}.tool_calls`).forEach((call, k) => {
      const entry = expectObject(call, `${at}.tool_calls[${k}]`);
      const type = typeof entry['type'] === 'string' && entry['type'] !== '' ? entry['type'] : 'function';
      // The payload under the key its type names, an own key only: a type such as `constructor`
      // or `toString` would otherwise find Object.prototype's function, which JSON.stringify
      // turns into undefined (a TypeError that stopped the whole enqueue, not an error of this file).
      const payload = entry['function'] ?? (Object.hasOwn(entry, type) ? entry[type] : undefined);
      const fn = payload !== null && typeof payload === 'object' && !Array.isArray(payload) ? (payload as Record<string, unknown>) : {};
      calls.push({ call: entry['function'] !== undefined ? entry['function'] : { name: typeof fn['name'] === 'string' ? fn['name'] : type, arguments: payload ?? '' }, field: `${at}.tool_calls[${k}].function` });
    });
  }
  if (msg['function_call'] !== undefined && msg['function_call'] !== null) calls.push({ call: msg['function_call'], field: `${at}.function_call` });
  return calls.map(({ call, field }) => {
    const fn = call !== null && typeof call === 'object' && !Array.isArray(call) ? (call as Record<string, unknown>) : expectObject(call, field);
    const name = typeof fn['name'] === 'string' && fn['name'] !== '' ? fn['name'] : 'function';
    const args = fn['arguments'];
    const shown = typeof args === 'string' ? args : args === undefined || args === null ? '' : JSON.stringify(args);
    return shown.trim() === '' ? `[tool call: ${name}]` : `[tool call: ${name}]\n${shown}`;
  });
}

function renderContent(content: unknown, at: string, skips: SkipCounter): string {
  if (content === null || content === undefined) return '';
  if (typeof content === 'string') return content;
  const parts = expectArray(content, at);
  const out: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i];
    if (typeof part === 'string') {
      out.push(part);
      continue;
    }
    if (!isObject(part)) throw new FieldError(`${at}[${i}]`, `expected a string or an object, found ${kindOf(part)}`);
    const type = typeof part['type'] === 'string' ? part['type'] : '(none)';
    // OpenAI's Responses API (and logs, evals and agent traces kept in its shape) writes
    // `input_text` and `output_text` parts where Chat Completions writes `text`.
    if (type === 'text' || type === 'input_text' || type === 'output_text') out.push(expectString(part['text'], `${at}[${i}].text`));
    else if (type === 'image_url' || type === 'image' || type === 'input_image') out.push('[image]');
    else if (type === 'refusal') out.push(`[refusal] ${expectString(part['refusal'], `${at}[${i}].refusal`)}`);
    else skips.add(`content_type:${type}`);
  }
  return out.filter((s) => s.trim() !== '').join('\n');
}
