/**
 * A worker whose ENGINE_URL has nothing listening waits for it (vLLM takes minutes to load), but
 * says where it looks, that the URL may be wrong, and how long it will wait: it said only
 * "engine does not answer yet (loading?)" and then nothing for ENGINE_START_TIMEOUT_MS (10 min).
 * A real client to a real closed port.
 */
import { expect, it } from 'vitest';
import { EngineClient } from '../../src/engine/client.ts';
import { checkEngine, type EnvironmentParts } from '../../src/infer/environment.ts';
import type { Logger } from '../../src/observe/log.ts';
import { closedPort, startScripted } from '../engine/scripted-server.ts';

it('says the URL it waits on, that it may be wrong, and for how long; then refuses with WORKER_UNFIT', async () => {
  const port = await closedPort();
  const client = new EngineClient({ url: `http://127.0.0.1:${port}` });
  const warnings: string[] = [];
  const log = { warn: (_o: unknown, msg: string) => warnings.push(msg), info() {}, debug() {}, error() {} } as unknown as Logger;
  const err = await checkEngine({ client, log, model: null, textOnly: false } as unknown as EnvironmentParts, 2500).catch((e: unknown) => e);
  await client.destroy();
  expect((err as { code?: string }).code).toBe('WORKER_UNFIT');
  expect(warnings).toHaveLength(1);
  expect(warnings[0]).toContain(`http://127.0.0.1:${port}/v1/models`);
  expect(warnings[0]).toMatch(/ENGINE_URL is wrong/);
  expect(warnings[0]).toMatch(/up to 3 s in all \(ENGINE_START_TIMEOUT_MS\)/);
});

it('a Vercel host with no deployment (404 DEPLOYMENT_NOT_FOUND) is a wrong ENGINE_URL, refused at once naming it; not a model the engine lacks, waited out', async () => {
  // It was MODEL_NOT_FOUND: /v1/models answering so was taken for an engine still loading, and
  // the worker waited out ENGINE_START_TIMEOUT_MS (10 min) to say "no answer from /v1/models".
  const vercel = await startScripted((_req, res) => {
    const body = 'The deployment could not be found on Vercel.\n\nDEPLOYMENT_NOT_FOUND\n\nfra1::m7x2k-1764800000000-1a2b3c4d5e6f\n';
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', 'x-vercel-error': 'DEPLOYMENT_NOT_FOUND', 'content-length': Buffer.byteLength(body) }).end(body);
  });
  const client = new EngineClient({ url: `${vercel.url}/v1` });
  const log = { warn() {}, info() {}, debug() {}, error() {} } as unknown as Logger;
  const started = performance.now();
  const err = await checkEngine({ client, log, model: 'gpt-oss-20b', textOnly: false } as unknown as EnvironmentParts, 4000).catch((e: unknown) => e);
  const tookMs = performance.now() - started;
  await client.destroy();
  await vercel.close();
  expect((err as { code?: string }).code).toBe('WORKER_UNFIT');
  expect((err as Error).message).toContain(`${vercel.url}/v1/models`);
  expect((err as Error).message).toMatch(/no deployment .*DEPLOYMENT_NOT_FOUND.*check ENGINE_URL/s);
  expect(tookMs).toBeLessThan(2000);
});
