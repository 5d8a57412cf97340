/**
 * `docbatch engine`: runs the vLLM-compatible engine emulator (src/emulator) until SIGTERM/SIGINT.
 * Prints one line with its URL on stdout. Flags: src/emulator/flags.ts (shared with
 * `node src/emulator/main.ts`).
 */
import { Command, Option } from 'commander';
import { FLAGS, optionsFromFlags, type FlagValue } from '../emulator/flags.ts';

export function engineCommand(): Command {
  const command = new Command('engine').description(
    'Run an emulated vLLM OpenAI-compatible server (for the demo, tests and benchmarks); prints its URL.',
  );
  const options = FLAGS.map((f) => {
    // Choices are listed, not enforced by commander: optionsFromFlags checks them so every bad
    // value exits 2 with the same message as the standalone entry point.
    const option = new Option(`--${f.name}${f.arg ? ` <${f.arg}>` : ''}`, f.help + (f.choices ? ` [${f.choices.join('|')}]` : ''));
    if (f.multiple) option.argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value]);
    command.addOption(option);
    return [f.name, option] as const;
  });
  command.action(async (opts: Record<string, FlagValue>) => {
    const values = Object.fromEntries(options.map(([name, option]) => [name, opts[option.attributeName()]]));
    let parsed: ReturnType<typeof optionsFromFlags>;
    try {
      parsed = optionsFromFlags(values);
    } catch (err) {
      return command.error((err as Error).message, { exitCode: 2, code: 'docbatch.engine.badFlag' });
    }
    const { serveUntilSignal } = await import('../emulator/serve.ts');
    const { whenLauncherGone } = await import('../launcher.ts');
    try {
      await serveUntilSignal(parsed, {
        out: (line) => process.stdout.write(`${line}\n`),
        err: (line) => process.stderr.write(`${line}\n`),
        whenLauncherGone,
      });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EADDRINUSE' && code !== 'EACCES' && code !== 'EADDRNOTAVAIL') throw err;
      const why = code === 'EADDRINUSE' ? 'is in use (another engine or vLLM there?): choose another --port' : code === 'EACCES' ? 'needs privileges: choose a --port above 1023' : 'is not an address of this machine: check --host';
      return command.error(`CONFIG_INVALID: docbatch engine: ${parsed.host}:${parsed.port} ${why}`, { exitCode: 2, code: 'docbatch.engine.listen' });
    }
  });
  return command;
}
