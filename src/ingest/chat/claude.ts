/**
 * One Claude conversation (an element of Claude's `conversations.json`) → the conversation.
 * Claude's messages are already linear. A message's `content` list is preferred over its flat
 * `text` (which repeats the text blocks); attachments with extracted text are part of what the
 * user sent, so their text is kept.
 */
import { FieldError, bounded, expectArray, expectObject, expectString, isObject, kindOf, optionalString, optionalTime, MAX_ID_CHARS, MAX_ROLE_CHARS, MAX_TITLE_CHARS } from './fields.ts';
import type { ChatMessage, Conversation, SkipCounter } from './types.ts';

export function readClaudeConversation(value: unknown, skips: SkipCounter): Conversation {
  const conv = expectObject(value, '(conversation)');
  const id = bounded(expectString(conv['uuid'], 'uuid'), 'uuid', MAX_ID_CHARS);
  const title = bounded(optionalString(conv['name'], 'name'), 'name', MAX_TITLE_CHARS) ?? '';
  const createTime = optionalTime(conv['created_at']);
  const list = expectArray(conv['chat_messages'], 'chat_messages');
  const messages: ChatMessage[] = [];
  for (let i = 0; i < list.length; i++) {
    const at = `chat_messages[${i}]`;
    const msg = expectObject(list[i], at);
    const sender = bounded(expectString(msg['sender'], `${at}.sender`), `${at}.sender`, MAX_ROLE_CHARS);
    const pieces: string[] = [];
    const content = msg['content'];
    if (Array.isArray(content) && content.length > 0) renderBlocks(content, `${at}.content`, pieces, skips);
    else {
      const text = optionalString(msg['text'], `${at}.text`);
      if (text !== undefined && text.trim() !== '') pieces.push(text);
    }
    for (const list of ['attachments', 'files'] as const) {
      const items = msg[list];
      if (items === undefined || items === null) continue;
      const arr = expectArray(items, `${at}.${list}`);
      for (let k = 0; k < arr.length; k++) {
        const item = expectObject(arr[k], `${at}.${list}[${k}]`);
        const name = optionalString(item['file_name'], `${at}.${list}[${k}].file_name`) ?? 'unnamed';
        const extracted = optionalString(item['extracted_content'], `${at}.${list}[${k}].extracted_content`);
        pieces.push(extracted && extracted.trim() ? `[attachment: ${name}]\n${extracted}` : `[file: ${name}]`);
      }
    }
    const text = pieces.join('\n');
    if (text.trim() === '') {
      skips.add('empty');
      continue;
    }
    const role = sender === 'human' ? 'user' : sender;
    messages.push({ id: bounded(optionalString(msg['uuid'], `${at}.uuid`), `${at}.uuid`, MAX_ID_CHARS) ?? String(i), role, text });
  }
  return { id, title, createTime, messages };
}

function renderBlocks(blocks: unknown[], at: string, out: string[], skips: SkipCounter): void {
  for (let i = 0; i < blocks.length; i++) {
    const block = blocks[i];
    if (block === null) continue;
    if (!isObject(block)) throw new FieldError(`${at}[${i}]`, `expected an object, found ${kindOf(block)}`);
    const type = typeof block['type'] === 'string' ? block['type'] : '(none)';
    switch (type) {
      case 'text': {
        const text = optionalString(block['text'], `${at}[${i}].text`);
        if (text !== undefined && text.trim() !== '') out.push(text);
        break;
      }
      case 'tool_use': {
        const name = typeof block['name'] === 'string' ? block['name'] : 'tool';
        out.push(`[tool use: ${name}]\n${JSON.stringify(block['input'] ?? null)}`);
        break;
      }
      case 'tool_result': {
        const inner = block['content'];
        if (typeof inner === 'string') out.push(inner);
        else if (Array.isArray(inner)) renderBlocks(inner, `${at}[${i}].content`, out, skips);
        break;
      }
      case 'image':
        out.push('[image]');
        break;
      default:
        skips.add(`content_type:${type}`); // thinking, redacted_thinking, and newer types
    }
  }
}
