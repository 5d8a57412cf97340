/**
 * A unit waiting for the endpoint's rate limit (ENGINE_RPM / ENGINE_TPM, shared through Redis)
 * holds no slot at the engine's gate: the window counts only requests really at the engine, and
 * `docbatch_worker_rate_waiting` says how many units wait for the limiter. Units wait for the
 * limiter in the order they came (one line per worker), an abandoned wait lets the next go, and
 * a pass never used (the engine went down before the request left) counts for nothing. A model
 * whose replies the endpoint caps reserves, once the cap is learnt, the capped max_tokens its
 * requests carry.
 *
 * Real Redis, the engine emulator, a real worker.
 */
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { shownUrl } from '../../src/infer/engine.ts';
import { EngineRateLimiter } from '../../src/infer/rate-limit.ts';
import { json, startScripted } from '../engine/scripted-server.ts';
import { WorkerMetrics } from '../../src/observe/metrics.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { deletePrefix, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.ts';
import { startRedisProxy } from '../helpers/redis-proxy.ts';
import { parseMetrics, sumOf } from '../observe/fixtures.ts';

let p: Pipeline | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
});

const prefix = uniquePrefix(import.meta.filename);
const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
afterAll(async () => {
  redis.disconnect();
  await deletePrefix(prefix);
});

const until = async (what: string, ok: () => Promise<boolean> | boolean, ms = 30_000) => {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 25))) if (await ok()) return;
  throw new Error(`timed out waiting for ${what}`);
};

function chats(dir: string, n: number): string {
  const path = join(dir, 'chats.jsonl');
  writeFileSync(path, `${Array.from({ length: n }, (_, i) => JSON.stringify({ id: `c${i}`, title: `T${i}`, messages: [{ role: 'user', content: `Question ${i}?` }, { role: 'assistant', content: `Answer ${i}.` }] })).join('\n')}\n`);
  return path;
}

describe('a worker whose units wait for the rate limit', () => {
  it('holds no gate slot for them: nothing counts as in flight while they wait, and the gauge counts them', async () => {
    p = await startPipeline({ file: import.meta.filename, worker: false });
    // Three sends per 10 s window (the image probe at the worker's start takes one; a long
    // window, so that none of the three leaves it while we look), a window of 4 held fixed.
    const worker = await p.startWorker({ engineRpm: 3, engineRateWindowMs: 10_000, initialInFlight: 4, maxInFlight: 4, workerName: 'limited' });
    const metrics = new WorkerMetrics({ processMetrics: false });
    metrics.attach(worker);
    const ids = acceptedIds(await p.enqueue([chats(p.dir, 5)]));
    const engine = p.engine;
    // The window's sends are used; the next units wait for the limiter, nothing at the engine.
    await until('units waiting for the limiter with nothing at the engine', () => engine.stats().completed >= 3 && engine.stats().running + engine.stats().waiting === 0 && worker.activeUnits >= 2);
    // The last answers sent are read and their slots given back (the emulator counts an answer
    // once it is sent; the worker holds the slot until it has read it).
    await new Promise((r) => setTimeout(r, 500));
    // For a second (the limiter holds them for several more): every sample the same.
    const windowInFlight = () => worker.engine.window.snapshot().inFlight;
    for (const end = Date.now() + 1000; Date.now() < end; await new Promise((r) => setTimeout(r, 50))) {
      expect(worker.engine.gate.inFlight, 'gate slots held by units waiting for the rate limit').toBe(0);
      expect(windowInFlight(), 'in flight as the window sees it').toBe(0);
    }
    const scrape = parseMetrics(await metrics.metrics());
    expect(sumOf(scrape, 'docbatch_worker_in_flight')).toBe(0);
    expect(sumOf(scrape, 'docbatch_worker_rate_waiting')).toBeGreaterThanOrEqual(2);
    const [done] = await p.wait(ids, 60_000);
    expect(done!.record).toMatchObject({ done: 5, failed: 0 });
    expect(sumOf(parseMetrics(await metrics.metrics()), 'docbatch_worker_rate_waiting')).toBe(0);
  }, 90_000);
});

describe('a request sent again for a setting the endpoint refused', () => {
  it.each([
    ['a unit', false],
    ["the worker's start-up probe", true],
  ])('takes its own rate pass (%s): every request the endpoint saw is counted in the limits', async (_what, probeRefused) => {
    p = await startPipeline({ file: import.meta.filename, worker: false });
    // A reasoning model's endpoint: any temperature but the default is refused (400); the request
    // goes again without it (refused-params.ts). Both reach the endpoint and count in its RPM.
    // Refused for the units only, or for the start-up probe only (the model then learnt).
    const target = p.engine.url;
    let refused = 0;
    const fake = await startScripted(async (_req, res, seen) => {
      if (seen.path === '/v1/chat/completions') {
        const body = JSON.parse(seen.body) as Record<string, unknown>;
        const probe = seen.headers['x-request-id'] === 'docbatch-image-probe';
        if ('temperature' in body && body.temperature !== 1 && probe === probeRefused) {
          refused++;
          return json(res, 400, { error: { message: `Unsupported value: 'temperature' does not support ${String(body.temperature)} with this model. Only the default (1) value is supported.`, type: 'invalid_request_error', param: 'temperature', code: 'unsupported_value' } });
        }
      }
      const r = await fetch(`${target}${seen.path}`, { method: seen.method, headers: { 'content-type': 'application/json' }, ...(seen.method === 'POST' ? { body: seen.body } : {}) });
      const text = await r.text();
      res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'application/json' });
      res.end(text);
    });
    try {
      await p.startWorker({ engineUrl: fake.url, engineRpm: 1000, engineRateWindowMs: 60_000, workerName: 'resends' });
      const ids = acceptedIds(await p.enqueue([chats(p.dir, 3)]));
      const [done] = await p.wait(ids, 60_000);
      expect(done!.record).toMatchObject({ done: 3, failed: 0 });
      const sent = fake.seen.filter((s) => s.path === '/v1/chat/completions').length;
      expect(refused).toBeGreaterThanOrEqual(1);
      const key = `${p.config.prefix}:rate:${createHash('sha256').update(shownUrl(fake.url)).digest('hex').slice(0, 16)}`;
      expect(await redis.zcard(key), 'sends counted by the limiter (the start-up probe and its resend included)').toBe(sent);
    } finally {
      await p.stop();
      p = undefined;
      await fake.close();
    }
  }, 90_000);
});

/** The limiter's log for an endpoint: the tokens each send reserved ("nonce:tokens" members: prompt estimate + max_tokens). */
async function reservations(url: string): Promise<number[]> {
  const key = `${p!.config.prefix}:rate:${createHash('sha256').update(shownUrl(url)).digest('hex').slice(0, 16)}`;
  return (await redis.zrange(key, '0', '-1')).map((m: string) => Number(m.slice(m.lastIndexOf(':') + 1)));
}

/**
 * An endpoint in front of the emulator that caps replies at 50 tokens and refuses more (OpenAI's
 * words); chat units ask CHAT_MAX_TOKENS, 1024. What the requests asked and the refusals are kept.
 */
async function cappedEndpoint(target: string) {
  const seenAsks = { sent: [] as number[], refused: 0 };
  const server = await startScripted(async (_req, res, seen) => {
    if (seen.path === '/v1/chat/completions' && seen.headers['x-request-id'] !== 'docbatch-image-probe') {
      const asked = Number((JSON.parse(seen.body) as Record<string, unknown>).max_tokens);
      seenAsks.sent.push(asked);
      if (asked > 50) {
        seenAsks.refused++;
        return json(res, 400, { error: { message: `max_tokens is too large: ${asked}. This model supports at most 50 completion tokens, whereas you provided ${asked}.`, type: 'invalid_request_error', param: 'max_tokens', code: 'invalid_value' } });
      }
    }
    const r = await fetch(`${target}${seen.path}`, { method: seen.method, headers: { 'content-type': 'application/json' }, ...(seen.method === 'POST' ? { body: seen.body } : {}) });
    const text = await r.text();
    res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'application/json' });
    res.end(text);
  });
  return Object.assign(seenAsks, { url: server.url, close: () => server.close() });
}

describe("a model whose replies the endpoint caps below the max_tokens asked", () => {
  it('reserves tokens in ENGINE_TPM for the capped max_tokens the requests carry once the cap is learnt, not the max_tokens asked', async () => {
    p = await startPipeline({ file: import.meta.filename, worker: false });
    const fake = await cappedEndpoint(p.engine.url);
    try {
      await p.startWorker({ engineUrl: fake.url, engineTpm: 1_000_000, engineRateWindowMs: 60_000, chatMaxTokens: 1024, workerName: 'capped' });
      const ids = acceptedIds(await p.enqueue([chats(p.dir, 4)]));
      const [done] = await p.wait(ids, 60_000);
      expect(done!.record).toMatchObject({ done: 4, failed: 0 });
      expect(fake.refused).toBeGreaterThanOrEqual(1);
      expect(fake.sent.filter((t) => t === 50)).toHaveLength(4);
      const reserved = await reservations(fake.url);
      // Only the sends refused at 1024 reserved 1024; the four at 50 reserved their prompt and 50.
      expect(reserved.filter((t) => t >= 1024), `reservations ${reserved.join(', ')}`).toHaveLength(fake.refused);
      expect(reserved.filter((t) => t < 1024 && t > 50).length).toBeGreaterThanOrEqual(4);
    } finally {
      await p.stop();
      p = undefined;
      await fake.close();
    }
  }, 90_000);
});

describe('the rate limiter of one worker', () => {
  it('lets waiting units through in the order they came, and counts them while they wait', async () => {
    const limiter = new EngineRateLimiter(redis, prefix, 'http://order.example', { rpm: 1, windowMs: 150, requestTimeoutMs: 1000 });
    const order: number[] = [];
    const signal = AbortSignal.timeout(20_000);
    const passes = Array.from({ length: 6 }, (_, i) =>
      limiter.acquire(10, signal).then(async (pass) => {
        order.push(i);
        await pass.finish();
      }),
    );
    await until('five waiting behind the first', () => limiter.waiting === 5, 2000);
    await Promise.all(passes);
    expect(order).toEqual([0, 1, 2, 3, 4, 5]);
    expect(limiter.waiting).toBe(0);
  }, 30_000);

  it('a unit that stops waiting leaves the line; the ones behind it go on', async () => {
    const limiter = new EngineRateLimiter(redis, prefix, 'http://abort.example', { rpm: 1, windowMs: 300, requestTimeoutMs: 1000 });
    const first = await limiter.acquire(10, AbortSignal.timeout(5000));
    await first.finish();
    const gone = new AbortController();
    const abandoned = limiter.acquire(10, gone.signal);
    const next = limiter.acquire(10, AbortSignal.timeout(5000));
    await until('two waiting', () => limiter.waiting === 2, 2000);
    gone.abort(new Error('lock lost'));
    await expect(abandoned).rejects.toMatchObject({ code: 'ABORTED' });
    await (await next).finish();
    expect(limiter.waiting).toBe(0);
  }, 30_000);

  it('a pass given back unused (the request never left) counts for nothing', async () => {
    const limiter = new EngineRateLimiter(redis, prefix, 'http://cancel.example', { rpm: 1, windowMs: 60_000, requestTimeoutMs: 1000 });
    const unused = await limiter.acquire(10, AbortSignal.timeout(5000));
    await unused.cancel();
    // With one send a minute, a second pass right away proves the first was not counted.
    const started = Date.now();
    await (await limiter.acquire(10, AbortSignal.timeout(5000))).finish();
    expect(Date.now() - started).toBeLessThan(1000);
  }, 30_000);

  it('a pass held longer than the request timeout plus the window (a long wait at the gate) still counts once its request is sent', async () => {
    const limiter = new EngineRateLimiter(redis, prefix, 'http://late.example', { rpm: 1, windowMs: 2000, requestTimeoutMs: 100 });
    const late = await limiter.acquire(10, AbortSignal.timeout(5000));
    // Its provisional entry (now + 100 ms) leaves the log after 2.1 s: a unit still at the gate.
    await new Promise((r) => setTimeout(r, 2300));
    await limiter.acquire(10, AbortSignal.timeout(5000)).then((p) => p.cancel()); // prunes the log
    await late.finish(); // the request went and came back now: it counts for a window from now
    const started = Date.now();
    await (await limiter.acquire(10, AbortSignal.timeout(10_000))).finish();
    expect(Date.now() - started, 'the next send waited for the late one to leave the window').toBeGreaterThanOrEqual(1500);
  }, 30_000);
  it('a request that reserved the max_tokens asked, then waited at the gate while the cap was learnt, counts only what it carries', async () => {
    // One request at the engine at a time: the four units reserve (1024 + prompt) at once, then
    // wait at the gate while the first is refused and learns the cap of 50.
    p = await startPipeline({ file: import.meta.filename, worker: false });
    const fake = await cappedEndpoint(p.engine.url);
    try {
      await p.startWorker({ engineUrl: fake.url, engineTpm: 1_000_000, engineRateWindowMs: 60_000, chatMaxTokens: 1024, maxInFlight: 1, initialInFlight: 1, workerName: 'gated' });
      const ids = acceptedIds(await p.enqueue([chats(p.dir, 4)]));
      const [done] = await p.wait(ids, 60_000);
      expect(done!.record).toMatchObject({ done: 4, failed: 0 });
      expect(fake.refused).toBe(1);
      const reserved = await reservations(fake.url);
      expect(reserved.filter((t) => t >= 1024), `reservations ${reserved.join(', ')}`).toHaveLength(1);
      expect(reserved.filter((t) => t < 1024 && t > 50).length).toBeGreaterThanOrEqual(4);
    } finally {
      await p.stop();
      p = undefined;
      await fake.close();
    }
  }, 90_000);
});

describe('a pass lowered while its reply was lost', () => {
  it('counts the lowered tokens once: ioredis sends the lowering again on reconnect, and the finish moves the lowered entry', async () => {
    // The worker's connection to Redis drops after the lowering ran, before its reply came back;
    // ioredis sends it again once reconnected (autoResendUnfulfilledCommands). Was: the second run
    // found the old entry gone and answered 0, so the pass kept the old entry's name, and its
    // finish added that back: 1000 + 300 tokens held for one request of 300.
    const proxy = await startRedisProxy();
    const viaProxy = new Redis(proxy.url, { maxRetriesPerRequest: null, retryStrategy: () => 50 });
    viaProxy.on('error', () => {});
    try {
      const limiter = new EngineRateLimiter(viaProxy, `${prefix}:lower`, 'http://lowered', { tpm: 100_000, windowMs: 60_000 });
      const pass = await limiter.acquire(1000, AbortSignal.timeout(10_000));
      proxy.dropReplyOf((chunk) => chunk.includes('ZSCORE'));
      await pass.lower(300);
      expect(proxy.dropped).toBe(1);
      await pass.finish();
      const key = `${prefix}:lower:rate:${createHash('sha256').update('http://lowered').digest('hex').slice(0, 16)}`;
      const reserved = (await redis.zrange(key, '0', '-1')).map((m: string) => Number(m.slice(m.lastIndexOf(':') + 1)));
      expect(reserved).toEqual([300]);
    } finally {
      viaProxy.disconnect();
      await proxy.close();
    }
  }, 30_000);
});
