/**
 * A Vercel-hosted endpoint whose deployment goes away while a worker runs: every request is
 * answered 404 `x-vercel-error: DEPLOYMENT_NOT_FOUND`. That is ENGINE_URL naming no engine (not a
 * model the engine lacks, nor the unit's fault): a real worker over real HTTP hands its units
 * back and stops taking work, saying which URL to check, and takes work again once the
 * deployment answers; no page fails for it.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { startScripted, type Scripted } from '../engine/scripted-server.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

let p: Pipeline;
let proxy: Scripted;
let gone = false;

beforeAll(async () => {
  p = await startPipeline({ file: import.meta.filename, worker: false, config: { attempts: 1 } });
  proxy = await startScripted(async (_req, res, seen) => {
    if (gone) {
      const body = 'The deployment could not be found on Vercel.\n\nDEPLOYMENT_NOT_FOUND\n\nfra1::m7x2k-1764800000000-1a2b3c4d5e6f\n';
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', 'x-vercel-error': 'DEPLOYMENT_NOT_FOUND', 'content-length': Buffer.byteLength(body) }).end(body);
      return;
    }
    const r = await fetch(`${p.engine.url}${seen.path}`, { method: seen.method, headers: { 'content-type': 'application/json' }, ...(seen.method === 'POST' ? { body: seen.body } : {}) });
    const text = Buffer.from(await r.arrayBuffer());
    res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'application/json', 'content-length': text.length }).end(text);
  });
});
afterAll(async () => {
  await p?.stop();
  await proxy?.close();
});

it('units are handed back and intake stops, naming the URL; once the deployment answers again every page is written, none failed', async () => {
  const worker = await p.startWorker({ engineUrl: proxy.url });
  gone = true;
  const file = join(p.dir, 'gone.pdf');
  writeFileSync(file, numberedPdf(3, 7));
  const ids = acceptedIds(await p.enqueue([file]));
  for (let i = 0; i < 400 && worker.unhealthy === null; i++) await new Promise((r) => setTimeout(r, 25));
  expect(worker.pauseReasons).toContain('environment');
  expect(worker.unhealthy?.message).toContain(`no deployment at ${proxy.url}/v1/`);
  gone = false;
  const [done] = await p.wait(ids, 60_000);
  expect(done!.record).toMatchObject({ state: 'written', done: 3, failed: 0 });
}, 90_000);
