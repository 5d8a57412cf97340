/**
 * A long-running verb started through npm (`npx docbatch worker &`, an npm script) runs as
 * npm → `sh -c docbatch …` → node. A SIGTERM to npm ends the shell, not node: the worker would
 * go on, orphaned, and never drain. So a process started that way (npm's environment, and a
 * parent that is a `sh -c` naming docbatch, whose foreground command it is) stops as if sent
 * SIGTERM once that parent is gone.
 * Otherwise (bin/docbatch, systemd, nohup, a Procfile, a test) nothing changes: a parent that
 * exits is no reason to stop.
 */
import { readFileSync, statSync } from 'node:fs';

/** Whether this process runs under npm's `sh -c` (read from /proc; false where there is none). */
export function startedByNpm(env: NodeJS.ProcessEnv = process.env, ppid = process.ppid): boolean {
  if (env.npm_command === undefined && env.npm_lifecycle_event === undefined) return false;
  try {
    const argv = readFileSync(`/proc/${ppid}/cmdline`, 'utf8').split('\0');
    if (!(/(?:^|\/)(?:ba|da|z)?sh$/.test(argv[0] ?? '') && argv[1] === '-c' && /\bdocbatch\b/.test(argv[2] ?? ''))) return false;
    // The shell's own command, not one it put in the background (`nohup docbatch … &` in an npm
    // script: meant to outlive the script): POSIX gives an asynchronous command /dev/null as its
    // stdin, so a stdin that is not the shell's says so.
    return sameFile('/proc/self/fd/0', `/proc/${ppid}/fd/0`);
  } catch {
    return false;
  }
}

/** Whether two paths name the same open file (device and inode); false if either cannot be read. */
function sameFile(a: string, b: string): boolean {
  try {
    const [x, y] = [statSync(a), statSync(b)];
    return x.dev === y.dev && x.ino === y.ino;
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
