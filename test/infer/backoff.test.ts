/**
 * Review findings 5 and 6: a unit that backs off (503 "server busy", 429 rate limit) gives up its
 * slot at the engine's gate and its rate-limit entry before it sleeps, and sleeps no longer than
 * ENGINE_RETRY_AFTER_MAX_MS whatever Retry-After says; a unit that runs out of its sends through
 * out-of-memory answers fails with ENGINE_OOM, saying so, not ENGINE_BUSY.
 *
 * The engine is a real node:http server in front of the emulator that refuses requests naming a
 * marker and forwards everything else.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_SENDS } from '../../src/infer/unit-faults.ts';
import { json, startScripted, type Scripted, type Seen } from '../engine/scripted-server.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { until } from '../helpers/until.ts';

let p: Pipeline | undefined;
let front: Scripted | undefined;
afterEach(async () => {
  await p?.stop();
  await front?.close();
  p = undefined;
  front = undefined;
});

type Answer = { status: number; body: unknown; headers?: Record<string, string> } | 'forward';

/**
 * A server in front of `target`: chat requests go to `decide` (which may wait), everything else
 * (models, health, metrics, the image probe) is forwarded unchanged.
 */
async function frontOf(target: string, decide: (body: string) => Promise<Answer> | Answer): Promise<Scripted> {
  const forward = async (seen: Seen, res: Parameters<Parameters<typeof startScripted>[0]>[1]) => {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(seen.headers)) if (typeof v === 'string' && k !== 'host' && k !== 'content-length' && k !== 'connection') headers[k] = v;
    const r = await fetch(`${target}${seen.path}`, { method: seen.method, headers, ...(seen.method === 'GET' || seen.method === 'HEAD' ? {} : { body: seen.body }) });
    const text = await r.text();
    res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'text/plain', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  return startScripted(async (_req, res, seen) => {
    const chat = seen.method === 'POST' && seen.path === '/v1/chat/completions' && seen.headers['x-request-id'] !== 'docbatch-image-probe';
    const answer = chat ? await decide(seen.body) : 'forward';
    if (answer === 'forward') return forward(seen, res);
    json(res, answer.status, answer.body, answer.headers);
  });
}

function exportOf(dir: string, name: string, contents: string[]): string {
  const path = join(dir, name);
  writeFileSync(path, `${contents.map((c, i) => JSON.stringify({ id: `c${i}`, title: `T${i}`, messages: [{ role: 'user', content: c }, { role: 'assistant', content: `Answer ${i}.` }] })).join('\n')}\n`);
  return path;
}

const BUSY = { error: { message: 'server busy, please try again. maximum pending requests exceeded', type: 'api_error', code: null } };
const LIMITED = { error: { message: 'Rate limit reached for requests', type: 'rate_limit_exceeded', code: 'rate_limit_exceeded' } };

describe('a unit backing off', () => {
  it('gives up its gate slot and its rate-limit entry while it sleeps, and sleeps at most ENGINE_RETRY_AFTER_MAX_MS', async () => {
    p = await startPipeline({ file: import.meta.filename, worker: false });
    const events: Array<{ at: number; what: 'refused' | 'resent' | 'limited' | 'relimited' }> = [];
    front = await frontOf(p.engine.url, (body) => {
      if (body.includes('SLOW-BUSY-4c1a')) {
        if (!events.some((e) => e.what === 'refused')) {
          events.push({ at: Date.now(), what: 'refused' });
          return { status: 503, body: BUSY, headers: { 'retry-after': '3600' } };
        }
        events.push({ at: Date.now(), what: 'resent' });
      }
      if (body.includes('SLOW-LIMIT-77b0')) {
        if (!events.some((e) => e.what === 'limited')) {
          events.push({ at: Date.now(), what: 'limited' });
          return { status: 429, body: LIMITED, headers: { 'retry-after': '3600' } };
        }
        events.push({ at: Date.now(), what: 'relimited' });
      }
      return 'forward';
    });
    const at = (what: string) => events.find((e) => e.what === what)?.at;
    // One request at a time; a paid endpoint's limiter in use (generous: it never holds anyone).
    const capMs = 12_000;
    const limits = { engineUrl: front.url, initialInFlight: 1, maxInFlight: 1, engineRpm: 10_000, engineRetryAfterMaxMs: capMs };
    const worker = await p.startWorker({ ...limits, workerName: 'w1' });
    const [a] = acceptedIds(await p.enqueue([exportOf(p.dir, 'a.jsonl', ['Please look at SLOW-BUSY-4c1a now.'])]));
    await until('the busy refusal', () => at('refused') !== undefined);

    // While it sleeps, its rate-limit entry is finished (score: when the answer came), not
    // provisional (now + the request timeout) as for a request still in flight.
    const rateKeys = async () => (await p!.redis.keys(`${p!.config.prefix}:rate:*`)).filter((k) => !k.endsWith(':hold'));
    await until('the sleeping unit no longer counts as in flight at the endpoint', async () => {
      const keys = await rateKeys();
      if (keys.length === 0) return false;
      const scores = (await p!.redis.zrange(keys[0]!, '0', '-1', 'WITHSCORES')).filter((_, i) => i % 2 === 1).map(Number);
      return scores.length > 0 && scores.every((s) => s <= Date.now() + 5000);
    }, 8000);
    expect(at('resent')).toBeUndefined();

    // Its gate slot is free: another document's five units go through the window of 1 meanwhile.
    const [b] = acceptedIds(await p.enqueue([exportOf(p.dir, 'b.jsonl', ['Question 0?', 'Question 1?', 'Question 2?', 'Question 3?', 'Question 4?'])]));
    const [doneB] = await p.wait([b!], capMs - 2000);
    expect(doneB!.record).toMatchObject({ state: 'written', done: 5, failed: 0 });
    expect(at('resent')).toBeUndefined();

    // Retry-After: 3600 is capped: the unit is sent again after about the cap, not an hour.
    const [doneA] = await p.wait([a!], capMs + 20_000);
    expect(doneA!.record).toMatchObject({ state: 'written', done: 1, failed: 0 });
    const slept = at('resent')! - at('refused')!;
    expect(slept).toBeGreaterThanOrEqual(capMs - 500);
    expect(slept).toBeLessThan(capMs + 8000);
    await worker.close({ deadlineMs: 2000 });

    // A 429 with Retry-After: 3600 holds every worker of the endpoint only as long as the cap.
    await p.startWorker({ ...limits, engineRetryAfterMaxMs: 1500, workerName: 'w2' });
    const [c] = acceptedIds(await p.enqueue([exportOf(p.dir, 'c.jsonl', ['Please look at SLOW-LIMIT-77b0 now.'])]));
    const [doneC] = await p.wait([c!], 25_000);
    expect(doneC!.record).toMatchObject({ state: 'written', done: 1, failed: 0 });
    expect(at('relimited')! - at('limited')!).toBeGreaterThanOrEqual(1000);
  }, 90_000);
});

describe('a unit that runs out of sends through out-of-memory answers', () => {
  it('fails with ENGINE_OOM and a message that says so, within MAX_SENDS', async () => {
    p = await startPipeline({ file: import.meta.filename, worker: false });
    // Four units go out together; the marked one's first answer waits until the three others are
    // at the engine, so the window halves from 4 to 2 and the episode stays open (no request sent
    // after it succeeds): the marked unit is sent again alone at window 2, never "alone at window
    // 1", each out-of-memory answer folded into the open episode.
    const others: Array<() => void> = [];
    let arrived = 0;
    let ooms = 0;
    const othersHere = new Promise<void>((resolve) => others.push(resolve));
    front = await frontOf(p.engine.url, async (body) => {
      if (body.includes('HUGE-OOM-2b9e')) {
        await Promise.race([othersHere, new Promise((r) => setTimeout(r, 20_000))]);
        ooms++;
        return { status: 500, body: { error: { message: 'CUDA out of memory. Tried to allocate 2.00 GiB', type: 'InternalServerError', code: 500 } } };
      }
      arrived++;
      if (arrived === 3) others[0]!();
      await othersHere;
      return 'forward';
    });
    await p.startWorker({ engineUrl: front.url, initialInFlight: 4, maxInFlight: 4, workerName: 'oom' });
    const ids = acceptedIds(await p.enqueue([exportOf(p.dir, 'oom.jsonl', ['Please look at HUGE-OOM-2b9e now.', 'Question 1?', 'Question 2?', 'Question 3?'])]));
    const [done] = await p.wait(ids, 60_000);
    expect(done!.record).toMatchObject({ state: 'written', done: 3, failed: 1 });
    expect(ooms).toBeLessThanOrEqual(MAX_SENDS);
    const failed = readFileSync(join(p.config.outDir, 'oom.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { conversation_id: string; error?: { code: string; message: string } }).filter((l) => l.error);
    expect(failed).toMatchObject([{ conversation_id: 'c0', error: { code: 'ENGINE_OOM' } }]);
    expect(failed[0]!.error!.message).toMatch(/out of memory/i);
  }, 90_000);
});

describe('a Retry-After of 0 or a date gone by', () => {
  it('is no hint: a unit refused so waits as if none was given, instead of resending at once', async () => {
    p = await startPipeline({ file: import.meta.filename, worker: false });
    const refusals = { limited: 0, busy: 0 };
    let openAt = Number.POSITIVE_INFINITY;
    front = await frontOf(p.engine.url, (body) => {
      if (Date.now() < openAt && body.includes('ZERO-LIMIT-5e21')) {
        refusals.limited++;
        return { status: 429, body: LIMITED, headers: { 'retry-after': '0' } };
      }
      if (Date.now() < openAt && body.includes('ZERO-BUSY-0b9d')) {
        refusals.busy++;
        return { status: 503, body: BUSY, headers: { 'retry-after': new Date(Date.now() - 60_000).toUTCString() } };
      }
      return 'forward';
    });
    await p.startWorker({ engineUrl: front.url, initialInFlight: 2, maxInFlight: 2, workerName: 'w0' });
    openAt = Date.now() + 2500;
    const ids = acceptedIds(await p.enqueue([
      exportOf(p.dir, 'limited.jsonl', ['Please look at ZERO-LIMIT-5e21 now.']),
      exportOf(p.dir, 'busy.jsonl', ['Please look at ZERO-BUSY-0b9d now.']),
    ]));
    const done = await p.wait(ids, 30_000);
    for (const d of done) expect(d!.record).toMatchObject({ state: 'written', done: 1, failed: 0 });
    // About 2.5 s of refusals: a second apart for the rate limit, 0.5-1.5 s for the busy engine.
    expect(refusals.limited).toBeGreaterThan(0);
    expect(refusals.limited).toBeLessThanOrEqual(5);
    expect(refusals.busy).toBeGreaterThan(0);
    expect(refusals.busy).toBeLessThanOrEqual(8);
  }, 60_000);
});
