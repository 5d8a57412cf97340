/**
 * A gateway whose `/health` is not a liveness probe but a health check of every model behind it:
 * LiteLLM's proxy answers `GET /health` by sending a real request to each configured model
 * (slow, and paid for on a paid endpoint) and returns `{"healthy_endpoints": [...],
 * "unhealthy_endpoints": [...]}`. The worker asks /health at start, every 5 s while idle and
 * while an outage lasts: such a route is asked once, then `/v1/models` (answered from the
 * gateway's own list) stands in from then on, as for a server without /health. A real node:http
 * server on port 0.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { EngineClient } from '../../src/engine/client.ts';
import { json, startScripted, type Scripted } from './scripted-server.ts';

let server: Scripted | undefined;
let client: EngineClient | undefined;
afterEach(async () => {
  await client?.destroy();
  await server?.close();
  server = client = undefined;
});

describe("a gateway's /health that checks every model (LiteLLM)", () => {
  it('is asked once; /v1/models says whether the endpoint is up from then on', async () => {
    server = await startScripted((_req, res, seen) => {
      if (seen.path === '/health') {
        return json(res, 200, { healthy_endpoints: [{ model: 'openai/gpt-4o-mini', api_base: 'https://api.openai.com' }], unhealthy_endpoints: [], healthy_count: 1, unhealthy_count: 0 });
      }
      if (seen.path === '/v1/models') return json(res, 200, { object: 'list', data: [{ id: 'gpt-4o-mini', object: 'model', owned_by: 'openai' }] });
      return json(res, 404, { detail: 'Not Found' });
    });
    client = new EngineClient({ url: `${server.url}/v1`, apiKey: 'sk-litellm' });
    expect([await client.health(), await client.health(), await client.health()]).toEqual(['up', 'up', 'up']);
    expect(server.seen.map((s) => s.path)).toEqual(['/health', '/v1/models', '/v1/models', '/v1/models']);
  });

  it("vLLM's /health (200, empty body) stays the probe", async () => {
    server = await startScripted((_req, res, seen) => (seen.path === '/health' ? res.writeHead(200).end() : json(res, 404, { detail: 'Not Found' })));
    client = new EngineClient({ url: server.url });
    expect([await client.health(), await client.health()]).toEqual(['up', 'up']);
    expect(server.seen.map((s) => s.path)).toEqual(['/health', '/health']);
  });
});
