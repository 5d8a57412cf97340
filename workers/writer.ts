/** Process entry: the document writer (`docbatch writer`). */
import type { Config } from '../src/config.ts';
import { createLogger } from '../src/observe/log.ts';
import { createWriter } from '../src/write/writer.ts';
import { untilSignal } from './lifecycle.ts';

export async function runWriter(config: Config): Promise<number> {
  const log = createLogger({ level: config.logLevel, pretty: config.logFormat === 'pretty', base: { role: 'writer' } });
  const writer = createWriter(config, log);
  try {
    await writer.start();
  } catch (err) {
    await writer.close().catch(() => undefined);
    throw err;
  }
  return untilSignal({ close: () => writer.close() }, log, config.shutdownTimeoutMs);
}
