/** `docbatch demo`: the main job on embedded defaults (see src/demo/run.ts). */
import { Command } from 'commander';
import { createLogger } from '../observe/log.ts';
import { positiveNumber } from './number-options.ts';
import { settingSources } from './options.ts';

export function demoCommand(): Command {
  const command = new Command('demo')
    .description('Run the whole pipeline on the shipped samples against the built-in engine emulator, then stop.')
    .option('--speed <x>', 'emulated engine speed-up (a number > 0)', positiveNumber('--speed'), 10);
  const load = settingSources(command, ['redisUrl', 'prefix', 'outDir', 'blobDir', 'logLevel', 'logFormat']);
  return command.action(async (opts: Record<string, unknown>) => {
    const { config, sources } = load(opts);
    // Quiet unless a log level was asked for: --log-level or LOG_LEVEL.
    const log = createLogger({ level: sources.logLevel.kind === 'default' ? 'warn' : config.logLevel, pretty: config.logFormat === 'pretty' });
    const { runDemo } = await import('../demo/run.ts');
    process.exitCode = await runDemo(config, log, { speed: opts.speed as number });
  });
}
