/**
 * What must never reach the engine, refused before anything is sent (BAD_REQUEST): an empty
 * conversation, a max_tokens that is not a positive integer, an image that is not a base64
 * `data:` URL (vLLM would fetch an http(s) URL: an SSRF risk).
 */
import { EngineError } from './classify.ts';
import { DataUrl } from './data-url.ts';
import type { ChatMessage, ChatRequest } from './types.ts';

const DATA_URL = /^data:[\w.+-]+\/[\w.+-]+(?:;[\w.+-]+=[\w.+-]+)*;base64,/i;

export function validateChat(request: ChatRequest): void {
  validateMessages(request.messages);
  if (!Number.isInteger(request.maxTokens) || request.maxTokens < 1) {
    throw new EngineError('BAD_REQUEST', `maxTokens must be a positive integer, got ${String(request.maxTokens)}`);
  }
}

/** Refuses what must never reach the engine: an empty conversation, an image that is not a data URL. */
export function validateMessages(messages: ChatMessage[]): void {
  if (!Array.isArray(messages) || messages.length === 0) {
    throw new EngineError('BAD_REQUEST', 'a chat request needs at least one message');
  }
  for (const message of messages) {
    if (typeof message.content === 'string') continue;
    for (const part of message.content) {
      if (part.type !== 'image_url') continue;
      const url = part.image_url.url;
      if (url instanceof DataUrl) continue; // made from bytes: a data URL by construction
      if (!DATA_URL.test(url)) {
        const shown = url.length > 40 ? `${url.slice(0, 40)}…` : url;
        throw new EngineError('BAD_REQUEST', `refusing to send an image that is not a base64 data: URL (${JSON.stringify(shown)})`);
      }
    }
  }
}
