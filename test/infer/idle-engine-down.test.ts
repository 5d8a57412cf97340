/**
 * An engine that dies while its worker sends it nothing showed as up (status "all taking work",
 * docbatch_engine_up 1) until work came: only requests reported an engine down. An idle worker
 * now asks /health once /metrics finds no engine, and shows the engine down, then up again when
 * it is back. A real worker and a real emulator that dies and restarts on its port.
 */
import { afterEach, expect, it } from 'vitest';
import { startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { until } from '../helpers/until.ts';

let p: Pipeline | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
});

it('an idle worker sees its engine die and come back', async () => {
  p = await startPipeline({ file: import.meta.filename });
  const monitor = p.worker!.engine.monitor;
  expect(monitor.isDown).toBe(false);
  p.engine.setFaults({ restartDelayMs: 6000 });
  p.engine.kill();
  const killedAt = Date.now();
  await until('the worker to see the engine down', () => monitor.isDown, 5000);
  expect(Date.now() - killedAt).toBeLessThan(5000);
  await until('the worker to see the engine back', () => !monitor.isDown, 20_000);
}, 40_000);
