/**
 * Runs an emulator as a process until SIGTERM or SIGINT, then closes it (sockets, timers) and
 * returns, so the process can exit 0 on its own. A second signal while closing exits 130 at once.
 */
import { startEmulator } from './index.ts';
import type { EmulatorOptions } from './options.ts';

export interface ServeIo {
  /** Receives the one line with the URL (stdout by default). */
  out: (line: string) => void;
  /** Receives a human description (stderr by default). */
  err: (line: string) => void;
  /**
   * Calls `stop` when whoever started the process is gone, returning a function that stops
   * watching (`docbatch engine` passes src/launcher.ts's; the emulator itself imports nothing
   * else of src/).
   */
  whenLauncherGone?: (stop: () => void) => () => void;
}

const defaultIo: ServeIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

export async function serveUntilSignal(options: EmulatorOptions, io: ServeIo = defaultIo): Promise<void> {
  const emulator = await startEmulator(options);
  io.out(emulator.url);
  const f = emulator.faults();
  const faults = [
    f.oomAtConcurrentImages !== null ? `oom above ${f.oomAtConcurrentImages} concurrent image requests (${f.oomMode})` : '',
    f.hang ? `hang ${JSON.stringify(f.hang)}` : '',
    f.errorStyle !== 'vllm' ? `${f.errorStyle} errors` : '',
    ...(['cutoff', 'loop', 'invalidJson', 'alterFields'] as const).map((k) => (f[k] > 0 ? `${k} ${f[k]}` : '')),
    f.reject ? `reject ${JSON.stringify(f.reject.matchText)}` : '',
    f.rateLimit ? `rate limit ${JSON.stringify(f.rateLimit)}` : '',
    options.acceptsImages ? '' : 'text-only model',
  ].filter(Boolean);
  io.err(
    `engine emulator: model ${options.model}, speed x${options.speed}, max ${options.maxNumSeqs} running, context ${options.maxModelLen}` +
      (faults.length > 0 ? `; faults: ${faults.join(', ')}` : ''),
  );
  await new Promise<void>((resolve) => {
    let closing = false;
    let unwatch = () => {};
    const onSignal = (signal: NodeJS.Signals): void => {
      unwatch();
      if (closing) {
        io.err(`engine emulator: second ${signal}, exiting now`);
        process.exit(130);
      }
      closing = true;
      emulator.close().then(
        () => {
          process.off('SIGTERM', onSignal);
          process.off('SIGINT', onSignal);
          resolve();
        },
        (err: unknown) => {
          io.err(`engine emulator: close failed: ${(err as Error).message}`);
          process.exitCode = 1;
          resolve();
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    // Started by npm, whose SIGTERM does not reach this process: stop when npm is gone.
    unwatch = io.whenLauncherGone?.(() => {
      io.err('engine emulator: npm, which started it, is gone: stopping');
      onSignal('SIGTERM');
    }) ?? unwatch;
  });
}
