/**
 * `docbatch <verb>`: parses the command line and hands over to the verb. Usage errors and bad
 * settings exit 2 with a message that says what is wrong (no verb at all: the help, exit 2;
 * `--help` and `help` exit 0); anything unexpected exits 1. Redis
 * going away in the middle of a verb is one line with its code, not a stack. A reader that
 * closes the pipe early (`docbatch status | head -1`) ends the output quietly: what is left is
 * not written, and the verb finishes as usual.
 */
import type { Command } from 'commander';
import { readFileSync, statSync } from 'node:fs';
import { DocbatchError } from '../errors.ts';
import '../launcher.ts'; // notes the process's launcher before anything else (whenLauncherGone)
import type { PdfInspector } from '../ingest/pdf.ts';
import { printable } from '../printable.ts';
import { ROOT_URL } from '../root.ts';

// Only small modules are imported above: `enqueue` starts its PDF inspection child (startEarly)
// before anything big loads. commander and the Redis error helpers (ioredis: ~130 ms) come after.

const pkg = JSON.parse(readFileSync(new URL('package.json', ROOT_URL), 'utf8')) as { version: string };

/**
 * The verbs, in help order, each loaded only when needed: a command starts by loading its own
 * verb's code (and what that imports), not every verb's (the AWS SDK, the dashboard, the emulator).
 */
const VERBS: Record<string, (early: EarlyStart) => Promise<Command>> = {
  enqueue: async (early) => (await import('./enqueue.ts')).enqueueCommand(early.inspector),
  retry: async () => (await import('./retry.ts')).retryCommand(),
  worker: async () => (await import('./worker.ts')).workerCommand(),
  writer: async () => (await import('./writer.ts')).writerCommand(),
  engine: async () => (await import('./engine.ts')).engineCommand(),
  demo: async () => (await import('./demo.ts')).demoCommand(),
  status: async () => (await import('./status.ts')).statusCommand(),
  config: async () => (await import('./config.ts')).configCommand(),
  dashboard: async () => (await import('./dashboard.ts')).dashboardCommand(),
  gc: async () => (await import('./gc.ts')).gcCommand(),
  eval: async () => (await import('./eval.ts')).evalCommand(),
  compare: async () => (await import('./compare.ts')).compareCommand(),
};

/** What a verb is handed already started, before its modules load (see `startEarly`). */
interface EarlyStart {
  inspector?: PdfInspector;
}

/**
 * `enqueue` (not its help) of inputs that may hold PDFs (a `.pdf` or a local folder) gets its PDF
 * inspection child started first: the child's start-up (Node, then PDFium's wasm: ~0.3 s) then
 * overlaps the verb's own module loading instead of following it, and the first page is queued
 * that much sooner. Chat exports alone would only pay for it (the two start-ups share the cores),
 * so other inputs start the child when a PDF turns up, as before. The verb closes it when done.
 */
async function startEarly(argv: string[]): Promise<EarlyStart> {
  if (argv[0] !== 'enqueue' || argv.includes('--help') || argv.includes('-h')) return {};
  const mayHoldPdfs = argv.slice(1).some((arg) => !arg.startsWith('-') && (/\.pdf$/i.test(arg) || isFolder(arg)));
  if (!mayHoldPdfs) return {};
  const { PdfInspector } = await import('../ingest/pdf.ts');
  const inspector = new PdfInspector();
  inspector.warm();
  return { inspector };
}

function isFolder(path: string): boolean {
  try {
    return statSync(path, { throwIfNoEntry: false })?.isDirectory() === true;
  } catch {
    return false; // the verb says what is wrong with it
  }
}

/** The command line: with `verb` (a known one), only that verb is loaded; otherwise all (help, errors). */
export async function program(verb?: string, early: EarlyStart = {}): Promise<Command> {
  const { Command } = await import('commander');
  const root = new Command('docbatch')
    .description('PDFs, images and chat exports → model output on GPUs through vLLM, on Redis queues.')
    .version(pkg.version)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  const names = verb !== undefined && Object.hasOwn(VERBS, verb) ? [verb] : Object.keys(VERBS);
  for (const sub of await Promise.all(names.map((name) => VERBS[name]!(early)))) root.addCommand(sub.exitOverride());
  return root;
}

/** After EPIPE on a standard stream, further writes to it are dropped instead of failing. */
function quietOnClosedPipe(stream: NodeJS.WriteStream): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    stream.write = (() => true) as typeof stream.write;
  });
}

export async function main(argv: string[]): Promise<number> {
  quietOnClosedPipe(process.stdout);
  quietOnClosedPipe(process.stderr);
  const early = await startEarly(argv);
  try {
    await (await program(argv[0], early)).parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    const { CommanderError } = await import('commander');
    const { isRedisConnectionError, redisFullProblem } = await import('../../queues/redis-link.ts');
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
      // Help asked for (`help`, `help VERB`) is 0; help shown because no verb was given is a
      // usage error (2), as for any conventional CLI: a script calling `docbatch $VERB` with an
      // empty variable must not pass.
      if (err.code === 'commander.help') return err.exitCode === 0 ? 0 : 2;
      return 2;
    }
    // Redis at its maxmemory, however far up the error came (as itself, or wrapped as INTERNAL).
    const full = redisFullProblem(err instanceof DocbatchError && err.code === 'INTERNAL' ? err.cause : err);
    if (full) {
      process.stderr.write(`docbatch: ${full.describe()}\n`);
      return 2;
    }
    if (err instanceof DocbatchError) {
      process.stderr.write(`docbatch: ${err.describe()}\n`);
      return err.action === 'usage' || err.action === 'reject' ? 2 : 1;
    }
    if (isRedisConnectionError(err)) {
      process.stderr.write(`docbatch: REDIS_UNREACHABLE: Redis stopped answering (${printable((err as Error).message)}): check that it runs, and REDIS_URL\n`);
      return 2;
    }
    const text = err instanceof Error ? (err.stack ?? err.message) : String(err);
    process.stderr.write(`docbatch: unexpected error: ${text.split('\n').map(printable).join('\n')}\n`);
    return 1;
  } finally {
    // The verb closes it when it is done with it; a usage error never reached the verb.
    await early.inspector?.close();
  }
}

if (import.meta.main) {
  const code = await main(process.argv.slice(2));
  process.exitCode = code;
  // Everything has been closed by now; a handle still open would be a leak, and must not keep
  // a stopped worker alive past its deadline.
  setTimeout(() => process.exit(code), 3000).unref();
}
