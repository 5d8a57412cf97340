/**
 * The sign of a prompt a server cut to its context without a word (src/infer/truncated-prompt.ts,
 * pure), and the context Ollama says it holds (EngineClient.loadedContextLength, against real
 * node:http servers on port 0).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { EngineClient } from '../../src/engine/client.ts';
import { promptWasCut } from '../../src/infer/truncated-prompt.ts';
import { json, startScripted, type Scripted } from '../engine/scripted-server.ts';

let server: Scripted | undefined;
let client: EngineClient | undefined;
afterEach(async () => {
  await client?.destroy();
  await server?.close();
  server = client = undefined;
});

describe('promptWasCut', () => {
  it('the count reported equals the known context while our estimate is well over it: cut', () => {
    expect(promptWasCut(4096, 6000, 4096)).toBe(true);
    expect(promptWasCut(2000, 2500, 2000)).toBe(true);
  });

  it('a count under the context, or an estimate not well over it: not cut (our estimate is rough)', () => {
    expect(promptWasCut(1500, 6000, 4096)).toBe(false); // a vision encoder cheaper than our estimate
    expect(promptWasCut(4096, 4200, 4096)).toBe(false);
    expect(promptWasCut(null, 9000, 4096)).toBe(false);
  });

  it('an Ollama that does not say its context: a power of two of 1024 or more, at most two thirds of the estimate', () => {
    expect(promptWasCut(2048, 3500, null)).toBe(true);
    expect(promptWasCut(2048, 2600, null)).toBe(false);
    expect(promptWasCut(2000, 3500, null)).toBe(false);
    expect(promptWasCut(512, 3500, null)).toBe(false);
  });
});

describe('loadedContextLength (Ollama\'s GET /api/ps)', () => {
  it("Ollama's list: the context of the model asked, else of the only one loaded", async () => {
    server = await startScripted((_req, res) => json(res, 200, { models: [{ name: 'llava:latest', model: 'llava:latest', context_length: 4096 }, { name: 'qwen3:8b', model: 'qwen3:8b', context_length: 8192 }] }));
    client = new EngineClient({ url: server.url, model: 'm' });
    expect(await client.loadedContextLength('qwen3:8b')).toEqual({ context: 8192 });
    expect(await client.loadedContextLength('other')).toEqual({ context: null });
  });

  it("a model named without its tag is Ollama's :latest of it (two models loaded)", async () => {
    // Ollama serves "llava" as "llava:latest" and lists it so: the context was not found by name,
    // and with two models loaded not known at all (the cut then judged by a guess, or not).
    server = await startScripted((_req, res) => json(res, 200, { models: [{ name: 'llava:latest', model: 'llava:latest', context_length: 6144 }, { name: 'qwen3:8b', model: 'qwen3:8b', context_length: 8192 }] }));
    client = new EngineClient({ url: server.url, model: 'm' });
    expect(await client.loadedContextLength('llava')).toEqual({ context: 6144 });
    expect(await client.loadedContextLength('qwen3')).toEqual({ context: null }); // qwen3:latest is not loaded
  });

  it('a server that is no Ollama (404, or a page for any path): null, and not asked again', async () => {
    for (const answer of [(res: Parameters<typeof json>[0]) => json(res, 404, { detail: 'Not Found' }), (res: Parameters<typeof json>[0]) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>dashboard</html>')]) {
      server = await startScripted((_req, res) => answer(res));
      client = new EngineClient({ url: server.url, model: 'm' });
      expect(await client.loadedContextLength('m')).toBeNull();
      expect(await client.loadedContextLength('m')).toBeNull();
      expect(server.seen).toHaveLength(1);
      await client.destroy();
      await server.close();
    }
    server = client = undefined;
  });
});
