/**
 * docbatch processes for the benches that run it as a user does (pipeline-pages, s3-storage,
 * two-models): start a verb, learn the URL it prints (the engine's), stop it with SIGTERM.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';

export const BIN = resolve(import.meta.dirname, '../../bin/docbatch');

/**
 * `docbatch ARGS` with JSON logs at warn, stderr shown. The environment is this process's plus
 * `env`, or only PATH plus `env` with `clean` (nothing of the caller's settings leaks in).
 */
export function startDocbatch(args: string[], env: Record<string, string>, options: { clean?: boolean } = {}): { child: ChildProcess; url: Promise<string> } {
  const base = options.clean ? { PATH: process.env.PATH } : process.env;
  const child = spawn(BIN, args, { env: { ...base, LOG_FORMAT: 'json', LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  const url = new Promise<string>((resolveUrl, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d;
      const m = /http:\/\/[\d.:]+/.exec(out);
      if (m) resolveUrl(m[0]);
    });
    child.once('exit', (code) => reject(new Error(`${args[0]} exited ${code} before printing its URL`)));
  });
  url.catch(() => {});
  return { child, url };
}

/** SIGTERM, and wait until it has exited. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}
