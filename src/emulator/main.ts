/**
 * The emulator on its own: `node_modules/.bin/node src/emulator/main.ts --port 8000 [flags]`.
 * Same flags as `docbatch engine` (src/emulator/flags.ts). Prints the URL on stdout.
 */
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import { FLAGS, optionsFromFlags, type FlagValue } from './flags.ts';
import { serveUntilSignal } from './serve.ts';

function usage(): string {
  const lines = FLAGS.map((f) => `  --${f.name}${f.arg ? ` <${f.arg}>` : ''}`.padEnd(34) + f.help + (f.choices ? ` [${f.choices.join('|')}]` : ''));
  return `usage: node src/emulator/main.ts [flags]\n\nAn emulated vLLM OpenAI-compatible server.\n\n${lines.join('\n')}\n`;
}

const config: ParseArgsOptionsConfig = { help: { type: 'boolean', short: 'h' } };
for (const f of FLAGS) config[f.name] = f.kind === 'bool' ? { type: 'boolean' } : { type: 'string', multiple: f.multiple === true };

try {
  const { values } = parseArgs({ options: config, strict: true, allowPositionals: false });
  if (values.help) {
    process.stdout.write(usage());
  } else {
    await serveUntilSignal(optionsFromFlags(values as Record<string, FlagValue>));
  }
} catch (err) {
  const e = err as Error & { code?: string };
  if (e instanceof TypeError || e.code?.startsWith('ERR_PARSE_ARGS')) {
    process.stderr.write(`${e.message}\n\n${usage()}`);
    process.exitCode = 2;
  } else {
    process.stderr.write(`engine emulator: ${e.message}\n`);
    process.exitCode = 1;
  }
}
