/**
 * An engine whose chat answers a test scripts, in front of the emulator: a real node:http server
 * on port 0 that answers `POST /v1/chat/completions` with what `script` returns for the request
 * body, and forwards everything else (models, health, metrics, the worker's start-up image
 * probe, and chat requests the script passes on with `null`) to the emulator unchanged. Every
 * chat request body is kept, so a test can check exactly what a worker sent.
 */
import type { ServerResponse } from 'node:http';
import { json, startScripted, type Scripted } from '../engine/scripted-server.ts';

export interface ChatBody {
  model?: string;
  messages: Array<{ role: string; content: string | Array<{ type: string; text?: string; image_url?: { url: string } }> }>;
  max_tokens?: number;
  temperature?: number;
  response_format?: unknown;
  [key: string]: unknown;
}

export interface ScriptedAnswer {
  content: string;
  finishReason?: string;
  usage?: { prompt: number; completion: number };
  /** Answer with this status and error body instead of a completion. */
  status?: number;
}

export interface ScriptedEngine {
  url: string;
  /** Chat request bodies the script answered or passed on (the image probe aside), in order. */
  chats: ChatBody[];
  close(): Promise<void>;
}

/** The text parts of a chat body's messages, joined. */
export function chatText(body: ChatBody): string {
  return body.messages.map((m) => (typeof m.content === 'string' ? m.content : m.content.map((p) => p.text ?? '').join('\n'))).join('\n');
}

export async function startScriptedEngine(target: string, script: (body: ChatBody) => ScriptedAnswer | null | Promise<ScriptedAnswer | null>): Promise<ScriptedEngine> {
  const chats: ChatBody[] = [];
  const forward = async (method: string, path: string, headers: Record<string, string>, body: string, res: ServerResponse) => {
    const r = await fetch(`${target}${path}`, { method, headers, ...(method === 'GET' || method === 'HEAD' ? {} : { body }) });
    const text = await r.text();
    res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'text/plain', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  const server: Scripted = await startScripted(async (req, res, seen) => {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(seen.headers)) if (typeof v === 'string' && k !== 'host' && k !== 'content-length' && k !== 'connection') headers[k] = v;
    if (seen.method !== 'POST' || seen.path !== '/v1/chat/completions' || seen.headers['x-request-id'] === 'docbatch-image-probe') {
      return forward(seen.method, seen.path, headers, seen.body, res);
    }
    const body = JSON.parse(seen.body) as ChatBody;
    chats.push(body);
    const answer = await script(body);
    if (answer === null) return forward(seen.method, seen.path, headers, seen.body, res);
    if (answer.status) return json(res, answer.status, { error: { message: answer.content, type: 'BadRequestError', param: null, code: answer.status } });
    const usage = answer.usage ?? { prompt: 100, completion: 10 };
    json(res, 200, {
      id: `chatcmpl-${String(seen.headers['x-request-id'] ?? 'scripted')}`,
      object: 'chat.completion',
      created: 0,
      model: body.model ?? 'docbatch/emulated-vl',
      choices: [{ index: 0, message: { role: 'assistant', content: answer.content }, finish_reason: answer.finishReason ?? 'stop' }],
      usage: { prompt_tokens: usage.prompt, completion_tokens: usage.completion, total_tokens: usage.prompt + usage.completion },
    });
  });
  return { url: server.url, chats, close: () => server.close() };
}
