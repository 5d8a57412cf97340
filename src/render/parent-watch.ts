/**
 * A renderer or inspection child leaves when its parent dies, even while its main thread is
 * blocked. child.ts also leaves on its IPC channel's 'disconnect', but that event needs the
 * event loop, and PDFium draws a page (or reads a page tree) in one synchronous wasm call: a
 * child whose worker was SIGKILLed mid-page ran on until the page ended (11 s measured; a page
 * that never ends, forever), a core and hundreds of MB spent on an answer nobody reads.
 *
 * Two ways, the first where it exists:
 * - The kernel's parent-death signal (Linux): the child is started through util-linux's
 *   `setpriv --pdeathsig KILL`, which sets it and then execs Node in the same process, so the
 *   kernel SIGKILLs the child the moment the process that forked it dies. Free: no thread, no
 *   polling; the exec costs ~1 ms (`deathSignalLauncher`).
 * - Elsewhere (no setpriv, or one without --pdeathsig: macOS, a minimal image), a worker thread
 *   (its own event loop) compares getppid() with the parent's pid every `everyMs`; once the
 *   child has been handed to another parent (init, a subreaper) it SIGKILLs the whole process.
 *   Cost: a thread started after the child said it is ready: ~40 ms of CPU once, 10-18 MB
 *   resident, one getppid() four times a second (`dieWithParent`).
 * test/faults/orphan-children.test.ts holds both to it; the figures are in docs/rendering.md.
 */
import { spawnSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';

/** How often the parent is looked for, in ms. */
export const PARENT_CHECK_MS = 250;

// CommonJS, evaluated: no module loader, no TypeScript stripping, nothing read from disk.
const WATCHDOG = `
const { workerData } = require('node:worker_threads');
setInterval(() => {
  if (process.ppid !== workerData.parent) process.kill(process.pid, 'SIGKILL');
}, workerData.everyMs);
`;

/**
 * Starts the watchdog for `parentPid` (the pid the parent passed in argv: a parent already gone
 * when the child starts is caught too). It does not keep the process alive.
 */
export function dieWithParent(parentPid: number, everyMs = PARENT_CHECK_MS): void {
  if (!Number.isInteger(parentPid) || parentPid < 1) throw new TypeError(`dieWithParent: parentPid must be a pid, got ${parentPid}`);
  const watchdog = new Worker(WATCHDOG, {
    eval: true,
    workerData: { parent: parentPid, everyMs },
    // A cap, not a saving (its heap holds ~6 MB; 4 MB is too little to start): the renderer's
    // heap limit is for pages.
    resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 2 },
    stdout: false,
    stderr: false,
  });
  watchdog.unref();
  // Without the watchdog the child still leaves on 'disconnect' whenever its loop is free: say
  // why it is missing rather than end a renderer for it.
  watchdog.on('error', (err) => process.stderr.write(`parent watchdog failed: ${String(err?.stack ?? err)}\n`));
}

/** Where util-linux installs setpriv (absolute: the child's PATH is empty, and so is this lookup's). */
const SETPRIV_PATHS = ['/usr/bin/setpriv', '/bin/setpriv'];

let launcher: string[] | null | undefined;

/**
 * The command that starts a child with the kernel's parent-death signal set (`setpriv
 * --pdeathsig KILL`, to be followed by Node's path and arguments), or undefined where there is
 * none: then the child runs `dieWithParent`. Found once per process (one `setpriv --help`, ~2 ms).
 */
export function deathSignalLauncher(): readonly string[] | undefined {
  if (launcher === undefined) {
    launcher = null;
    if (process.platform === 'linux') {
      for (const path of SETPRIV_PATHS) {
        const help = spawnSync(path, ['--help'], { encoding: 'utf8', env: {}, timeout: 5000 });
        if (help.status === 0 && help.stdout.includes('--pdeathsig')) {
          launcher = [path, '--pdeathsig', 'KILL'];
          break;
        }
      }
    }
  }
  return launcher ?? undefined;
}
