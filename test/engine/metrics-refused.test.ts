/**
 * A gateway in front of the engine whose /metrics is not ours to read (admin-only: 401, 403)
 * while completions pass: the worker's monitor, which reads /metrics every second, reads it once,
 * says so once, and follows the answers as for an engine without /metrics. A real node:http
 * server on port 0 and the real EngineMonitor and WindowController.
 */
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { EngineClient } from '../../src/engine/client.ts';
import { WindowController } from '../../src/engine/window.ts';
import { EngineMonitor } from '../../src/infer/engine-monitor.ts';
import { createLogger } from '../../src/observe/log.ts';
import { until } from '../helpers/until.ts';
import { json, startScripted, type Scripted } from './scripted-server.ts';

let server: Scripted | undefined;
let client: EngineClient | undefined;
let monitor: EngineMonitor | undefined;
afterEach(async () => {
  monitor?.close();
  await client?.destroy();
  await server?.close();
  server = client = monitor = undefined;
});

describe('a /metrics that refuses us (401, 403)', () => {
  it.each([
    [401, { error: 'Unauthorized' }],
    [403, '<html><head><title>403 Forbidden</title></head><body>nginx</body></html>'],
  ])('%s: read once, said once, not polled again', async (status, body) => {
    server = await startScripted((_req, res, seen) => {
      if (seen.path === '/metrics') return typeof body === 'string' ? (res.writeHead(status, { 'content-type': 'text/html' }), res.end(body)) : json(res, status, body);
      if (seen.path === '/health') return json(res, 200, {});
      return json(res, 200, { object: 'list', data: [{ id: 'm', object: 'model' }] });
    });
    const lines: Array<{ msg: string; level: string }> = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) lines.push(JSON.parse(l) as { msg: string; level: string });
        done();
      },
    });
    client = new EngineClient({ url: server.url, model: 'm' });
    monitor = new EngineMonitor(client, new WindowController({ initial: 4, max: 64 }), createLogger({ level: 'info', destination: sink }), { metricsIntervalMs: 20 });
    monitor.start();
    // Read first, however slow the machine (a fixed wait saw none under load); then 400 ms of its
    // 20 ms ticks, none asking again.
    const metricsSeen = () => server!.seen.filter((s) => s.path === '/metrics').length;
    await until('/metrics read', () => metricsSeen() >= 1, 20_000, 10);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(metricsSeen()).toBe(1);
    const said = lines.filter((l) => /metrics/.test(l.msg));
    expect(said).toHaveLength(1);
    expect(said[0]!.msg).toMatch(new RegExp(`/metrics.*${status}`));
  });
});
