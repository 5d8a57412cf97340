/** Process entry: one GPU worker (`docbatch worker`). */
import type { Config } from '../src/config.ts';
import { InferWorker } from '../src/infer/worker.ts';
import { createLogger } from '../src/observe/log.ts';
import { untilSignal } from './lifecycle.ts';

export async function runWorker(config: Config): Promise<number> {
  const log = createLogger({ level: config.logLevel, pretty: config.logFormat === 'pretty', base: { role: 'worker' } });
  const worker = new InferWorker(config, log);
  await worker.start();
  return untilSignal({ close: (o) => worker.close(o ?? {}) }, log, config.shutdownTimeoutMs);
}
