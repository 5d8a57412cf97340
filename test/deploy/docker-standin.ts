/**
 * A stand-in for the `docker` CLI, so the SkyPilot task's `run` script can be run in tests on a
 * machine without Docker or GPUs. Its containers are real local processes: the vLLM image
 * ($VLLM_IMAGE) becomes the engine emulator on the `--port` vLLM was given
 * (`bin/docbatch engine --port P`), the docbatch image ($DOCBATCH_IMAGE) becomes `bin/docbatch
 * ARGS` with the container's `-e` environment. Any other image is refused.
 *
 * Commands: `pull`, `run -d`, `logs [-f]`, `inspect -f '{{.State.Running}}'`, `wait`,
 * `stop [--time S]` (SIGTERM, SIGKILL after S seconds), `rm -f`. Each container is watched by a
 * keeper process that records its exit code. State lives in $DOCKER_STANDIN_DIR; every call and
 * every exit is appended to calls.jsonl there, for the test to read.
 *
 * Usage: a `docker` file on PATH that runs `node test/deploy/docker-standin.ts "$@"`
 * (see installDockerStandin).
 */
import { spawn } from 'node:child_process';
import { appendFileSync, chmodSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');
const BIN = join(ROOT, 'bin', 'docbatch');

export interface DockerCall {
  t: number;
  argv?: string[];
  event?: 'exited';
  name?: string;
  code?: number | null;
}

/** Writes a `docker` executable into `binDir` that runs this stand-in with the Node running now. */
export function installDockerStandin(binDir: string): string {
  mkdirSync(binDir, { recursive: true });
  const file = join(binDir, 'docker');
  writeFileSync(file, `#!/bin/sh\nexec "${process.execPath}" "${join(import.meta.dirname, 'docker-standin.ts')}" "$@"\n`);
  chmodSync(file, 0o755);
  return file;
}

/** The calls and exits recorded in `dir`, in order. */
export function dockerCalls(dir: string): DockerCall[] {
  const file = join(dir, 'calls.jsonl');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as DockerCall);
}

// ---- the CLI ---------------------------------------------------------------------------------

const VALUE_OPTIONS = new Set(['--name', '--gpus', '-v', '--volume', '-e', '--env', '--entrypoint', '--stop-timeout', '--shm-size']);

function stateDir(): string {
  const dir = process.env.DOCKER_STANDIN_DIR;
  if (!dir) throw new Error('DOCKER_STANDIN_DIR is not set');
  mkdirSync(dir, { recursive: true });
  return dir;
}

function record(entry: Omit<DockerCall, 't'>): void {
  appendFileSync(join(stateDir(), 'calls.jsonl'), `${JSON.stringify({ t: Date.now(), ...entry })}\n`);
}

const file = (name: string, ext: string) => join(stateDir(), `${name}.${ext}`);
const exitOf = (name: string): string | null => (existsSync(file(name, 'exit')) ? readFileSync(file(name, 'exit'), 'utf8') : null);
const pidOf = (name: string, which: 'pid' | 'keeper'): number | null => (existsSync(file(name, which)) ? Number(readFileSync(file(name, which), 'utf8')) : null);

function alive(pid: number | null): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function fail(message: string): never {
  process.stderr.write(`docker (stand-in): ${message}\n`);
  process.exit(125);
}

function run(args: string[]): void {
  const env: Record<string, string> = {};
  const opts: Record<string, string[]> = {};
  let i = 0;
  for (; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('-')) break;
    const eq = a.indexOf('=');
    const [key, inline] = a.startsWith('--') && eq > 0 ? [a.slice(0, eq), a.slice(eq + 1)] : [a, undefined];
    if (VALUE_OPTIONS.has(key)) {
      const value = inline ?? args[++i]!;
      (opts[key] ??= []).push(value);
      if (key === '-e' || key === '--env') {
        const e = value.indexOf('=');
        if (e > 0) env[value.slice(0, e)] = value.slice(e + 1);
        else if (process.env[value] !== undefined) env[value] = process.env[value]!;
      }
    } else (opts[key] ??= []).push(inline ?? 'true');
  }
  const image = args[i];
  const rest = args.slice(i + 1);
  const name = opts['--name']?.[0];
  if (!opts['-d']) fail('only detached runs (-d) are modelled');
  if (!name || !image) fail('run needs --name and an image');
  let command: string[];
  if (image === process.env.VLLM_IMAGE) {
    if (opts['--entrypoint']?.[0] !== 'vllm' || rest[0] !== 'serve') fail(`the vLLM image runs \`vllm serve\`, not ${opts['--entrypoint']?.[0]} ${rest[0]}`);
    const port = rest[rest.indexOf('--port') + 1];
    if (!port) fail('vllm serve without --port');
    // The name vLLM serves: --served-model-name, else the model it loads (`vllm serve MODEL`).
    const named = rest.indexOf('--served-model-name');
    const served = named >= 0 ? rest[named + 1] : rest[1];
    if (!served || served.startsWith('-')) fail('vllm serve without a model');
    command = [BIN, 'engine', '--port', port, '--model', served];
  } else if (image === process.env.DOCBATCH_IMAGE) {
    command = [BIN, ...rest];
  } else fail(`no stand-in for image ${image}`);
  if (existsSync(file(name, 'keeper'))) fail(`a container named ${name} exists`);
  const log = openSync(file(name, 'log'), 'a');
  const keeper = spawn(process.execPath, [import.meta.filename, '__keep', name], {
    detached: true,
    stdio: ['ignore', log, log],
    env: { PATH: process.env.PATH, HOME: process.env.HOME, DOCKER_STANDIN_DIR: stateDir(), DOCKER_STANDIN_COMMAND: JSON.stringify(command), DOCKER_STANDIN_ENV: JSON.stringify(env) },
  });
  writeFileSync(file(name, 'keeper'), String(keeper.pid));
  keeper.unref();
  process.stdout.write(`${name}\n`);
}

/** The keeper: runs the container's process in the foreground, forwards SIGTERM, records the exit. */
function keep(name: string): void {
  const [cmd, ...argv] = JSON.parse(process.env.DOCKER_STANDIN_COMMAND!) as string[];
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, ...(JSON.parse(process.env.DOCKER_STANDIN_ENV!) as Record<string, string>) };
  const child = spawn(cmd!, argv, { stdio: 'inherit', env });
  writeFileSync(file(name, 'pid'), String(child.pid));
  process.on('SIGTERM', () => child.kill('SIGTERM'));
  child.on('exit', (code, signal) => {
    const value = code ?? 128 + (signal === 'SIGKILL' ? 9 : 15);
    record({ event: 'exited', name, code: value });
    writeFileSync(file(name, 'exit'), String(value));
    process.exit(0);
  });
}

async function stop(args: string[]): Promise<void> {
  let seconds = 10;
  const names: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--time' || args[i] === '-t') seconds = Number(args[++i]);
    else names.push(args[i]!);
  }
  await Promise.all(names.map(async (name) => {
    if (!existsSync(file(name, 'keeper'))) fail(`no container ${name}`);
    if (exitOf(name) !== null) return;
    const keeper = pidOf(name, 'keeper');
    if (alive(keeper)) process.kill(keeper!, 'SIGTERM');
    const end = Date.now() + seconds * 1000;
    while (exitOf(name) === null && Date.now() < end) await sleep(50);
    if (exitOf(name) === null) {
      const pid = pidOf(name, 'pid');
      if (alive(pid)) process.kill(pid!, 'SIGKILL');
      while (exitOf(name) === null && alive(keeper)) await sleep(50);
    }
  }));
  process.stdout.write(names.join('\n') + '\n');
}

function remove(args: string[]): void {
  for (const name of args.filter((a) => a !== '-f' && a !== '--force')) {
    for (const which of ['pid', 'keeper'] as const) {
      const pid = pidOf(name, which);
      if (exitOf(name) === null && alive(pid)) process.kill(pid!, 'SIGKILL');
    }
    for (const ext of ['pid', 'keeper', 'exit', 'log']) rmSync(file(name, ext), { force: true });
  }
}

async function main(argv: string[]): Promise<void> {
  const [verb, ...args] = argv;
  if (verb === '__keep') return keep(args[0]!);
  record({ argv });
  switch (verb) {
    case 'pull':
      return;
    case 'run':
      return run(args);
    case 'logs': {
      const name = args.filter((a) => !a.startsWith('-')).at(-1)!;
      let shown = 0;
      for (;;) {
        const text = existsSync(file(name, 'log')) ? readFileSync(file(name, 'log'), 'utf8') : '';
        process.stdout.write(text.slice(shown));
        shown = text.length;
        if (!args.includes('-f') || !existsSync(file(name, 'keeper')) || exitOf(name) !== null) return;
        await sleep(200);
      }
    }
    case 'inspect': {
      const name = args.at(-1)!;
      if (!args.includes('{{.State.Running}}')) fail('only inspect -f {{.State.Running}} is modelled');
      if (!existsSync(file(name, 'keeper'))) fail(`no container ${name}`);
      process.stdout.write(exitOf(name) === null ? 'true\n' : 'false\n');
      return;
    }
    case 'wait': {
      const name = args[0]!;
      if (!existsSync(file(name, 'keeper'))) fail(`no container ${name}`);
      while (exitOf(name) === null) await sleep(100);
      process.stdout.write(`${exitOf(name)}\n`);
      return;
    }
    case 'stop':
      return stop(args);
    case 'rm':
      return remove(args);
    default:
      fail(`'${verb}' is not modelled`);
  }
}

if (import.meta.main) await main(process.argv.slice(2));
