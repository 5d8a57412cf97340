/**
 * A worker with EXIT_WHEN_IDLE_SECONDS and a fallback engine stops once it has had no work for
 * that long. Since an idle worker asks /health (engine-monitor.ts), it sees its engines die while
 * idle (the end of a run: the engines are stopped first), pauses intake for 'engine', and a
 * paused worker never counted as idle: it ran for ever with nothing to do, its GPU node billed.
 * Real worker, two real emulators killed (kept down), real Redis.
 */
import { afterEach, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '../../src/emulator/index.ts';
import { startPipeline, type Pipeline } from '../helpers/pipeline.ts';

let p: Pipeline | undefined;
let fallback: Emulator | undefined;
afterEach(async () => {
  await p?.stop();
  await fallback?.close();
  p = undefined;
  fallback = undefined;
});

it('a worker whose engines die while it is idle still stops when idle', async () => {
  p = await startPipeline({ file: import.meta.filename, worker: false, emulator: { restartDelayMs: 600_000 } });
  fallback = await startEmulator({ speed: 50, restartDelayMs: 600_000 });
  const worker = await p.startWorker({ fallbackEngineUrls: [fallback.url], fallbackAfterMs: 0, exitWhenIdleS: 3 });
  let idle = false;
  worker.on('idle', () => (idle = true));
  p.engine.kill();
  fallback.kill();
  for (const end = Date.now() + 15_000; !idle && Date.now() < end; ) await new Promise((r) => setTimeout(r, 100));
  expect(worker.engine.monitor.isDown).toBe(true); // it did see the engine down
  expect(idle).toBe(true);
}, 40_000);
