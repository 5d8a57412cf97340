/**
 * Issue 8, item 4: a poison unit must not loop forever. A chunk whose request a proxy always
 * drops (a real TCP proxy in front of the emulator) fails with UNIT_CRASHES_ENGINE after at most
 * 10 sends, and the rest of its export is done and written; the same for a unit an overloaded
 * server keeps refusing while it serves the others (503 "server busy").
 */
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_SENDS } from '../../src/infer/unit-faults.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';

let p: Pipeline | undefined;
let proxy: TcpProxy | undefined;
let busy: Server | undefined;
afterEach(async () => {
  await p?.stop();
  await proxy?.close();
  await new Promise((r) => (busy ? busy.close(r) : r(undefined)));
  p = undefined;
  proxy = undefined;
  busy = undefined;
});

/** A JSONL export of `n` conversations; conversation `poison` says `marker`. */
function exportWith(dir: string, n: number, poison: number, marker: string): string {
  const lines = Array.from({ length: n }, (_, i) =>
    JSON.stringify({ id: `c${i}`, title: `Conversation ${i}`, messages: [{ role: 'user', content: i === poison ? `Please look at ${marker} now.` : `Question number ${i}?` }, { role: 'assistant', content: `Answer number ${i}.` }] }),
  );
  const path = join(dir, 'export.jsonl');
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

describe('a poison unit', () => {
  it('whose connection is always dropped fails alone with UNIT_CRASHES_ENGINE within 10 sends; the export finishes', async () => {
    p = await startPipeline({ file: import.meta.filename, worker: false, emulator: { speed: 20 } });
    proxy = await startTcpProxy({ target: p.engine.url, dropMarkers: ['POISON-7f3a'] });
    const ids = acceptedIds(await p.enqueue([exportWith(p.dir, 12, 5, 'POISON-7f3a')]));
    await p.startWorker({ engineUrl: proxy.url });
    const [done] = await p.wait(ids, 90_000);
    expect(done!.record).toMatchObject({ state: 'written', done: 11, failed: 1 });
    expect(proxy.stats().drops).toBeGreaterThanOrEqual(1);
    expect(proxy.stats().drops).toBeLessThanOrEqual(MAX_SENDS);
    const lines = readFileSync(join(p.config.outDir, 'export.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const failed = lines.filter((l) => l.error);
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ conversation_id: 'c5', error: { code: 'UNIT_CRASHES_ENGINE' } });
  }, 120_000);

  it('that an overloaded server keeps refusing while serving the others fails with ENGINE_BUSY within 10 sends', async () => {
    p = await startPipeline({ file: import.meta.filename, worker: false, emulator: { speed: 20 } });
    const target = new URL(p.engine.url);
    let refusals = 0;
    // An HTTP proxy that answers Ollama's 503 "server busy" to requests naming the marker.
    busy = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        if (body.includes('BUSY-91c2')) {
          refusals++;
          res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'server busy, please try again. maximum pending requests exceeded', type: 'api_error', code: null } }));
          return;
        }
        const out = request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        });
        out.on('error', () => res.destroy());
        out.end(body);
      });
    });
    await new Promise<void>((r) => busy!.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(busy.address() as AddressInfo).port}`;
    const ids = acceptedIds(await p.enqueue([exportWith(p.dir, 8, 2, 'BUSY-91c2')]));
    await p.startWorker({ engineUrl: url });
    const [done] = await p.wait(ids, 120_000);
    expect(done!.record).toMatchObject({ state: 'written', done: 7, failed: 1 });
    expect(refusals).toBeLessThanOrEqual(MAX_SENDS);
    const failed = readFileSync(join(p.config.outDir, 'export.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((l) => l.error);
    expect(failed).toMatchObject([{ conversation_id: 'c2', error: { code: 'ENGINE_BUSY' } }]);
  }, 150_000);
});
