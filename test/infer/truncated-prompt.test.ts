/**
 * The sign of a prompt a server cut to its context without a word (src/infer/truncated-prompt.ts,
 * pure), and the context Ollama says it holds (EngineClient.loadedContextLength, against real
 * node:http servers on port 0).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { EngineClient } from '../../src/engine/client.ts';
import { promptWasCut } from '../../src/infer/truncated-prompt.ts';
import { json, startScripted, type Scripted } from '../engine/scripted-server.ts';

let server: Scripted | undefined;
let client: EngineClient | undefined;
afterEach(async () => {
  vi.useRealTimers();
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

  describe('a probe that fails (5xx, no answer in time): remembered for a while, so units do not each wait for it again', () => {
    const ollama = { models: [{ name: 'qwen3:8b', model: 'qwen3:8b', context_length: 8192 }] };
    /** What /api/ps does now: hang (no answer), 503, or Ollama's list. */
    let mode: 'hang' | '503' | 'ok' = 'hang';
    const start = async () => {
      mode = 'hang';
      server = await startScripted((_req, res, seen) => {
        if (seen.path !== '/api/ps' || mode === 'hang') return;
        if (mode === '503') json(res, 503, { error: 'server busy, please try again.' });
        else json(res, 200, ollama);
      });
      client = new EngineClient({ url: server.url, model: 'qwen3:8b', probeTimeoutMs: 300 });
    };
    const timed = async () => {
      const started = performance.now();
      const said = await client!.loadedContextLength('qwen3:8b');
      return { said, ms: performance.now() - started };
    };
    const asked = () => server!.seen.filter((s) => s.path === '/api/ps').length;

    it('no answer within the probe timeout: the units after it do not wait it out again; a recovery 30 s later is seen', async () => {
      await start();
      vi.useFakeTimers({ toFake: ['Date'] });
      const first = await timed();
      expect(first.said).toBeNull();
      expect(first.ms).toBeGreaterThanOrEqual(250);
      // Five more answers that look cut, at once: before, each waited 300 ms (the default: 10 s) and asked again.
      for (let i = 0; i < 5; i++) {
        const next = await timed();
        expect(next.said).toBeNull();
        expect(next.ms).toBeLessThan(100);
      }
      expect(asked()).toBe(1);
      mode = 'ok';
      vi.setSystemTime(Date.now() + 29_000);
      expect((await timed()).said).toBeNull();
      expect(asked()).toBe(1);
      vi.setSystemTime(Date.now() + 2_000);
      expect((await timed()).said).toEqual({ context: 8192 });
      expect(asked()).toBe(2);
    });

    it('failures in a row are remembered longer (30 s, 60 s, ... up to 10 min); an answer starts the row again', async () => {
      await start();
      mode = '503';
      vi.useFakeTimers({ toFake: ['Date'] });
      const at = (ms: number) => vi.setSystemTime(Date.now() + ms);
      expect(await client!.loadedContextLength('qwen3:8b')).toBeNull();
      expect(asked()).toBe(1);
      at(31_000);
      expect(await client!.loadedContextLength('qwen3:8b')).toBeNull(); // the second failure in a row: 60 s
      at(31_000);
      expect(await client!.loadedContextLength('qwen3:8b')).toBeNull();
      expect(asked()).toBe(2);
      at(30_000);
      mode = 'ok';
      expect(await client!.loadedContextLength('qwen3:8b')).toEqual({ context: 8192 });
      expect(asked()).toBe(3);
      // Answered: asked each time again (the model may be loaded again with another num_ctx), and a failure is 30 s again.
      expect(await client!.loadedContextLength('qwen3:8b')).toEqual({ context: 8192 });
      mode = '503';
      expect(await client!.loadedContextLength('qwen3:8b')).toBeNull();
      at(31_000);
      mode = 'ok';
      expect(await client!.loadedContextLength('qwen3:8b')).toEqual({ context: 8192 });
      expect(asked()).toBe(6);
      // A server that still answers 503 after ten failures is asked every 10 min, not less often.
      mode = '503';
      for (let i = 0; i < 10; i++) {
        await client!.loadedContextLength('qwen3:8b');
        at(600_001);
      }
      const before = asked();
      await client!.loadedContextLength('qwen3:8b');
      expect(asked()).toBe(before + 1);
    });

    it('units asking at the same moment share one probe; one giving up (its signal) does not fail the others', async () => {
      await start();
      const quitter = new AbortController();
      const all = Array.from({ length: 6 }, (_, i) => client!.loadedContextLength('qwen3:8b', i === 0 ? quitter.signal : undefined));
      quitter.abort(new Error('lock lost'));
      const settled = await Promise.allSettled(all);
      expect(settled[0]).toMatchObject({ status: 'rejected', reason: { code: 'ABORTED' } });
      expect(settled.slice(1)).toEqual(Array(5).fill({ status: 'fulfilled', value: null }));
      expect(asked()).toBe(1);
    });
  });
});

