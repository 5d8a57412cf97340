/**
 * What real servers and the proxies in front of them do to the bytes of an answer, met by a real
 * worker over real HTTP: a proxy in front of the emulator rewrites each answer as a test says.
 * The worker runs with ATTEMPTS=1, so an answer it cannot read (a retry) fails its page at once.
 *
 * - every answer gzip-compressed, unasked (a proxy with `gzip on`, a gateway that always
 *   compresses): undici's `request` does not decode it;
 * - junk after the JSON (a proxy appending a newline and a comment or a NUL).
 */
import { writeFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import type { InferWorker } from '../../src/infer/worker.ts';
import { startScripted, type Scripted, type Seen } from '../engine/scripted-server.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

let p: Pipeline;
let worker: InferWorker | null = null;
let proxy: Scripted | null = null;

beforeAll(async () => {
  p = await startPipeline({ file: import.meta.filename, worker: false, config: { engineStartTimeoutMs: 5_000, attempts: 1 } });
});
afterEach(async () => {
  await worker?.close({ deadlineMs: 2000 });
  worker = null;
  await proxy?.close();
  proxy = null;
});
afterAll(async () => {
  await p?.stop();
});

function pdf(name: string, pages: number, seed: number): string {
  const file = join(p.dir, name);
  writeFileSync(file, numberedPdf(pages, seed));
  return file;
}

interface Upstream {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** A proxy in front of the emulator; `rewrite` turns the emulator's answer into what the worker gets. */
async function startProxy(rewrite: (seen: Seen, upstream: Upstream) => Upstream): Promise<Scripted> {
  return startScripted(async (_req, res: ServerResponse, seen) => {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(seen.headers)) if (typeof v === 'string' && !['host', 'content-length', 'connection'].includes(k)) headers[k] = v;
    const r = await fetch(`${p.engine.url}${seen.path}`, { method: seen.method, headers, ...(seen.method === 'POST' ? { body: seen.body } : {}) });
    const upstream: Upstream = { status: r.status, headers: { 'content-type': r.headers.get('content-type') ?? 'text/plain' }, body: Buffer.from(await r.arrayBuffer()) };
    const out = rewrite(seen, upstream);
    res.writeHead(out.status, { ...out.headers, 'content-length': out.body.length });
    res.end(out.body);
  });
}

async function runPages(name: string, pages: number, seed: number): Promise<void> {
  worker = await p.startWorker({ engineUrl: proxy!.url });
  const [docId] = acceptedIds(await p.enqueue([pdf(name, pages, seed)]));
  const [done] = await p.wait([docId!], 60_000);
  expect(done!.record).toMatchObject({ state: 'written', done: pages, failed: 0 });
}

describe('a worker reads what proxies do to the bytes of an answer', () => {
  it('every answer gzip-compressed although the worker did not ask: every page written', async () => {
    let compressed = 0;
    proxy = await startProxy((_seen, up) => {
      if (up.body.length === 0) return up;
      compressed++;
      return { ...up, headers: { ...up.headers, 'content-encoding': 'gzip' }, body: gzipSync(up.body) };
    });
    await runPages('gzip.pdf', 3, 1);
    expect(compressed).toBeGreaterThan(3);
  }, 60_000);

  it('junk after the JSON of every chat answer: every page written', async () => {
    proxy = await startProxy((seen, up) =>
      seen.path === '/v1/chat/completions' ? { ...up, body: Buffer.concat([up.body, Buffer.from('\n\u0000<!-- served by proxy -->\n')]) } : up,
    );
    await runPages('junk.pdf', 3, 2);
  }, 60_000);
});
