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
import { closedPort } from '../engine/scripted-server.ts';

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
