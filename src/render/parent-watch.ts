/**
 * A renderer or inspection child leaves when its parent dies, even while its main thread is
 * blocked. child.ts also leaves on its IPC channel's 'disconnect', but that event needs the
 * event loop, and PDFium draws a page (or reads a page tree) in one synchronous wasm call: a
 * child whose worker was SIGKILLed mid-page ran on until the page ended (11 s measured; a page
 * that never ends, forever), a core and hundreds of MB spent on an answer nobody reads.
 *
 * A worker thread (its own event loop) compares getppid() with the parent's pid every
 * `everyMs`; once the child has been handed to another parent (init, a subreaper) it
 * SIGKILLs the whole process. Cost: one getppid() syscall four times a second, and a thread
 * started after the child said it is ready: ~40 ms of CPU once, 10-18 MB resident
 * (test/faults/orphan-children.test.ts; the figures are in docs/rendering.md).
 */
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
