/** Process entry: the dashboard (`docbatch dashboard`). */
import type { Config } from '../src/config.ts';
import { startDashboard } from '../src/observe/dashboard.ts';
import { createLogger } from '../src/observe/log.ts';
import { untilSignal } from './lifecycle.ts';

export async function runDashboard(config: Config): Promise<number> {
  const log = createLogger({ level: config.logLevel, pretty: config.logFormat === 'pretty', base: { role: 'dashboard' } });
  const dashboard = await startDashboard(config, log);
  // Printed on stdout (logs go to stderr) so scripts and tests can read where it listens.
  process.stdout.write(`${dashboard.url}\n`);
  return untilSignal({ close: () => dashboard.close() }, log, 5000);
}
