/**
 * The vLLM routes other than inference, and the router that sends each request where it goes,
 * applying the server look-alike switches (missing endpoints, API key) on the way.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ApiContext } from './context.ts';
import { ApiError, badRequest, routeNotFound, unauthorized } from './errors.ts';
import { readJsonObject, sendJson, sendText } from './http.ts';
import { checkModel, handleInference, sendError } from './inference.ts';
import { prepareChat, tokenParts } from './prompt.ts';
import { chatTokenIds, encodeText } from './tokens.ts';

const startedSec = Math.floor(Date.now() / 1000);

function handleModels(ctx: ApiContext, res: ServerResponse): void {
  const id = ctx.options.model;
  sendJson(res, 200, {
    object: 'list',
    data: [
      {
        id,
        object: 'model',
        created: startedSec,
        owned_by: 'vllm',
        root: id,
        parent: null,
        // Ollama's list names no context (its /api/ps does).
        ...(ctx.faults().truncatePrompts ? {} : { max_model_len: ctx.options.maxModelLen }),
        permission: [],
      },
    ],
  });
}

async function handleTokenize(ctx: ApiContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = await readJsonObject(req, ctx.options.maxBodyBytes);
  checkModel(ctx, body.model);
  let tokens: number[];
  if (typeof body.prompt === 'string') tokens = encodeText(body.prompt);
  else if (body.messages !== undefined) {
    const prompt = await prepareChat(body.messages, ctx.options);
    tokens = chatTokenIds(tokenParts(prompt.messages ?? []));
  } else throw badRequest('Either prompt (a string) or messages is required.');
  sendJson(res, 200, { count: tokens.length, max_model_len: ctx.options.maxModelLen, tokens, token_strs: null });
}

/** Routes under /v1 need the API key when one is set (vLLM's middleware guards only /v1). */
function authorized(ctx: ApiContext, req: IncomingMessage, path: string): boolean {
  const key = ctx.faults().apiKey;
  if (key === null || !path.startsWith('/v1')) return true;
  return req.headers.authorization === `Bearer ${key}`;
}

type Handler = (ctx: ApiContext, req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

const ROUTES: Record<string, { method: string; handler: Handler; hidden?: (ctx: ApiContext) => boolean }> = {
  '/health': {
    method: 'GET',
    hidden: (ctx) => ctx.faults().noHealth,
    handler: (ctx, _req, res) => {
      res.writeHead(ctx.state() === 'alive' ? 200 : 503, { 'content-length': 0 });
      res.end();
    },
  },
  '/v1/models': { method: 'GET', handler: (ctx, _req, res) => handleModels(ctx, res) },
  '/v1/chat/completions': { method: 'POST', handler: (ctx, req, res) => handleInference(ctx, 'chat', req, res) },
  '/v1/chat/completions/batch': { method: 'POST', handler: (ctx, req, res) => handleInference(ctx, 'batch', req, res) },
  '/v1/completions': { method: 'POST', handler: (ctx, req, res) => handleInference(ctx, 'completions', req, res) },
  '/tokenize': { method: 'POST', hidden: (ctx) => ctx.faults().noTokenize, handler: handleTokenize },
  // Ollama's own API: the models loaded and the context each holds (num_ctx).
  '/api/ps': {
    method: 'GET',
    hidden: (ctx) => !ctx.faults().truncatePrompts,
    handler: (ctx, _req, res) => sendJson(res, 200, { models: [{ name: ctx.options.model, model: ctx.options.model, size: 0, size_vram: 0, context_length: ctx.options.maxModelLen }] }),
  },
  '/metrics': {
    method: 'GET',
    hidden: (ctx) => ctx.faults().noMetrics,
    handler: (ctx, _req, res) => sendText(res, 200, ctx.metricsText(), 'text/plain; version=0.0.4; charset=utf-8'),
  },
};

/** Serves one request of the vLLM API. Returns false if the path is not one of its routes. */
export async function routeApi(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, path: string): Promise<boolean> {
  const route = ROUTES[path];
  if (!route || route.hidden?.(ctx)) return false;
  try {
    if (req.method !== route.method && !(route.method === 'GET' && req.method === 'HEAD')) {
      sendJson(res, 405, { detail: 'Method Not Allowed' }, { allow: route.method });
      return true;
    }
    if (!authorized(ctx, req, path)) throw unauthorized();
    await route.handler(ctx, req, res);
  } catch (err) {
    if (err instanceof ApiError) sendError(ctx, res, err);
    else if (!res.headersSent && !res.destroyed) throw err;
  }
  return true;
}

export function notFound(ctx: ApiContext, res: ServerResponse): void {
  sendError(ctx, res, routeNotFound());
}
