/**
 * A long-running verb started through npm (`npx docbatch worker &`, an npm script) runs as
 * npm → `sh -c docbatch …` → node. A SIGTERM to npm ends the shell, not node: the worker would
 * go on, orphaned, and never drain. So a process started that way (npm's environment, and a
 * parent that is a `sh -c` naming docbatch) stops as if sent SIGTERM once that parent is gone.
 * Otherwise (bin/docbatch, systemd, nohup, a Procfile, a test) nothing changes: a parent that
 * exits is no reason to stop.
 */
import { readFileSync } from 'node:fs';

/** Whether this process runs under npm's `sh -c` (read from /proc; false where there is none). */
export function startedByNpm(env: NodeJS.ProcessEnv = process.env, ppid = process.ppid): boolean {
  if (env.npm_command === undefined && env.npm_lifecycle_event === undefined) return false;
  try {
    const argv = readFileSync(`/proc/${ppid}/cmdline`, 'utf8').split('\0');
    return /(?:^|\/)(?:ba|da|z)?sh$/.test(argv[0] ?? '') && argv[1] === '-c' && /\bdocbatch\b/.test(argv[2] ?? '');
  } catch {
    return false;
  }
}

/**
 * The parent this process started under, read when this module is first imported (src/cli/main.ts
 * imports it first thing): npm's shell may be gone by the time a verb starts watching.
 */
const launcher = { ppid: process.ppid, npm: startedByNpm() };

/** Calls `stop` once npm's shell that started this process is gone; returns a function that stops watching. */
export function whenLauncherGone(stop: () => void, options: { intervalMs?: number } = {}): () => void {
  if (!launcher.npm) return () => undefined;
  const parent = launcher.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    stop();
  }, options.intervalMs ?? 1000);
  timer.unref();
  return () => clearInterval(timer);
}
