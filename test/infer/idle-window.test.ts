/**
 * A worker with nothing to do must not grow its window: the engine "has room" only because
 * nobody sends, and a window grown while idle would dump a burst on the engine (shared with
 * other workers) when units arrive.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startPipeline, type Pipeline } from '../helpers/pipeline.ts';

let p: Pipeline;
beforeAll(async () => {
  p = await startPipeline({ file: import.meta.filename });
});
afterAll(async () => {
  await p?.stop();
});

it('keeps the initial window while idle, though /metrics say the engine has room', async () => {
  const worker = p.worker!;
  expect(worker.engine.window.size).toBe(p.config.initialInFlight);
  // Metrics are read every second and decided on every two: three decisions' worth.
  await new Promise((r) => setTimeout(r, 6500));
  expect(worker.engine.window.snapshot()).toMatchObject({ size: p.config.initialInFlight, state: 'probing', inFlight: 0 });
}, 20_000);
