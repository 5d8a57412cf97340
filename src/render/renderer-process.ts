/**
 * One child process running child.ts: spawn, one request at a time, RSS as the kernel sees
 * it, and a kill that says why. The pool (pool.ts) and the inspector (src/ingest/pdf.ts)
 * decide when to kill; this class only makes sure the pending request fails with that reason.
 *
 * Every child starts with an environment of one variable, NODE_COMPILE_CACHE (a folder, for
 * Node itself): it parses hostile PDFs, and must hold none of the parent's secrets (REDIS_URL
 * with its password, ENGINE_API_KEY, cloud keys). Nothing in a child reads the environment (its
 * settings come in argv, its requests over IPC); Node adds only its IPC channel variables.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DocbatchError } from '../errors.ts';
import { ROOT_URL } from '../root.ts';
import { childCompileCacheDir } from './compile-cache.ts';
import { deathSignalLauncher } from './parent-watch.ts';
import {
  encodeSettings,
  type ChildSettings,
  type FromChild,
  type InspectMessage,
  type RenderMessage,
  type ToChild,
} from './protocol.ts';

const CHILD_ENTRY = fileURLToPath(new URL('src/render/child.ts', ROOT_URL));
const STDERR_TAIL = 4096;

export interface RendererProcessOptions {
  mode: 'render' | 'inspect';
  settings: ChildSettings;
  /** V8 heap limit of the child (`--max-old-space-size`), in MB. */
  heapMb: number;
  /**
   * How the child dies with this process (parent-watch.ts): the kernel's parent-death signal
   * where there is one, else a watchdog thread in the child. 'thread' forces the thread (tests).
   * @defaultValue 'signal'
   */
  parentWatch?: 'signal' | 'thread';
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

type Reply = Extract<FromChild, { type: 'rendered' | 'inspected' }>;
type Request = Omit<RenderMessage, 'id'> | Omit<InspectMessage, 'id'>;

export class RendererProcess {
  readonly #child: ChildProcess;
  readonly ready: Promise<void>;
  readonly exited: Promise<ExitInfo>;
  /** Blob ids the child holds open, as of its last answer. */
  open: readonly string[] = [];
  /** Pages (or inspections) answered, successfully or not. */
  answered = 0;
  /** The child asked to be let go (its engine is unusable); the pool retires it. */
  wantsRetire = false;
  #nextId = 1;
  #pending: { id: number; resolve: (reply: Reply) => void; reject: (err: DocbatchError) => void } | undefined;
  #killReason: DocbatchError | undefined;
  #stderr = '';
  #exitInfo: ExitInfo | undefined;
  /** Set on kill() and on 'exit' (before stderr has drained): from then on nothing is sent to the child. */
  #gone = false;
  #retireTimer: NodeJS.Timeout | undefined;

  constructor(options: RendererProcessOptions) {
    // Tied to this process's life by the kernel where it can be (parent-watch.ts); otherwise the
    // child is given this pid and watches for it itself.
    const launcher = options.parentWatch === 'thread' ? undefined : deathSignalLauncher();
    const args = [options.mode, encodeSettings(options.settings), launcher ? '' : String(process.pid)];
    // The child's one variable: Node's compile cache folder (a path, no secret), read by Node
    // before it loads child.ts. Enabled from child.ts's own code instead, the cache came too late
    // for child.ts itself, and stripping its types loaded Node's TypeScript stripper: ~95 ms of
    // CPU every start (a renderer, the inspection child `enqueue` waits for).
    const compileCache = childCompileCacheDir();
    // Not the parent's execArgv: a test runner's or debugger's flags have no place here.
    const nodeArgs = [`--max-old-space-size=${options.heapMb}`];
    this.#child = fork(CHILD_ENTRY, args, {
      // fork() runs `execPath ...execArgv child.ts ...args`: setpriv then execs Node in place.
      execPath: launcher ? launcher[0]! : process.execPath,
      execArgv: launcher ? [...launcher.slice(1), process.execPath, ...nodeArgs] : nodeArgs,
      env: compileCache ? { NODE_COMPILE_CACHE: compileCache } : {},
      serialization: 'advanced',
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    this.#child.stderr?.setEncoding('utf8');
    this.#child.stderr?.on('data', (chunk: string) => {
      this.#stderr = (this.#stderr + chunk).slice(-STDERR_TAIL);
    });

    let markReady: () => void;
    let failReady: (err: Error) => void;
    this.ready = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      failReady = reject;
    });
    this.ready.catch(() => {});

    this.exited = new Promise<ExitInfo>((resolve) => {
      const done = (info: ExitInfo) => {
        if (this.#exitInfo) return;
        this.#exitInfo = info;
        failReady(new DocbatchError('RENDER_CRASHED', `the renderer did not start: ${this.#describeExit(info)}`));
        const pending = this.#pending;
        this.#pending = undefined;
        pending?.reject(this.#killReason ?? new DocbatchError('RENDER_CRASHED', `the renderer died: ${this.#describeExit(info)}`));
        resolve(info);
      };
      // Wait for stderr to drain so the tail is complete. Not the 'close' event: after the
      // parent calls disconnect() Node never emits it for a child with an IPC channel.
      const stderrClosed = new Promise<void>((r) => (this.#child.stderr ? this.#child.stderr.once('close', r) : r()));
      this.#child.once('exit', (code, signal) => {
        this.#gone = true;
        clearTimeout(this.#retireTimer);
        let timer: NodeJS.Timeout | undefined;
        const drained = new Promise<void>((r) => (timer = setTimeout(r, 250)));
        void Promise.race([stderrClosed, drained]).then(() => {
          clearTimeout(timer);
          done({ code, signal });
        });
      });
      this.#child.once('error', (err) => {
        this.#stderr += `\n${err.message}`;
        if (this.#child.exitCode === null && this.#child.signalCode === null && this.#child.pid === undefined) {
          done({ code: null, signal: null });
        }
      });
    });

    this.#child.on('message', (message: FromChild) => {
      if (message.type === 'ready') {
        markReady();
        return;
      }
      const pending = this.#pending;
      if (!pending || pending.id !== message.id) return;
      this.#pending = undefined;
      this.answered += 1;
      if (message.type === 'failed') {
        this.open = message.open;
        if (message.retire) this.wantsRetire = true;
        pending.reject(new DocbatchError(message.code, message.message));
      } else {
        if (message.type === 'rendered') this.open = message.open;
        pending.resolve(message);
      }
    });
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  get alive(): boolean {
    return !this.#gone && this.#exitInfo === undefined;
  }

  get busy(): boolean {
    return this.#pending !== undefined;
  }

  /** Sends one request; rejects with the child's code, or with the reason it was killed. */
  request<R extends Reply['type']>(message: Request): Promise<Extract<Reply, { type: R }>> {
    if (this.#pending) return Promise.reject(new Error('renderer is busy (one request at a time)'));
    if (!this.alive) return Promise.reject(new DocbatchError('RENDER_CRASHED', 'the renderer has exited'));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending = { id, resolve: resolve as (reply: Reply) => void, reject };
      this.#child.send({ ...message, id } as ToChild, (err) => {
        if (err && this.#pending?.id === id) this.kill(new DocbatchError('RENDER_CRASHED', `cannot reach the renderer: ${err.message}`, { cause: err }));
      });
    });
  }

  /**
   * Resident memory in MB as the kernel counts it (heap, canvases, decoded images, wasm), or
   * undefined where /proc is not available.
   */
  rssMb(): number | undefined {
    if (this.#child.pid === undefined || !this.alive) return undefined;
    try {
      const status = readFileSync(`/proc/${this.#child.pid}/status`, 'latin1');
      const kb = /VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1];
      return kb === undefined ? undefined : Number(kb) / 1024;
    } catch {
      return undefined;
    }
  }

  /** SIGKILL (a renderer stuck in native code ignores anything gentler); `reason` fails the pending request. */
  kill(reason?: DocbatchError): void {
    if (this.#exitInfo) return;
    this.#killReason ??= reason;
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill('SIGKILL');
    this.#gone = true;
  }

  /**
   * Lets an idle child exit by itself (it leaves when its IPC channel closes), with a kill
   * after `graceMs` in case it does not.
   */
  retire(graceMs = 5000): void {
    if (!this.alive) return;
    if (!this.#child.connected) {
      this.kill();
      return;
    }
    this.#child.disconnect();
    this.#retireTimer = setTimeout(() => this.kill(), graceMs);
    this.#retireTimer.unref();
  }

  stderrTail(): string {
    return this.#stderr.trim();
  }

  #describeExit(info: ExitInfo): string {
    const how = info.signal ? `killed by ${info.signal}` : `exit code ${info.code}`;
    const lines = this.stderrTail().split('\n').filter((l) => l.trim() !== '');
    // V8's own verdict ("FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap
    // out of memory") says more than the native stack printed after it.
    const fatal = lines.find((l) => /FATAL ERROR|out of memory|heap limit|allocation failed/i.test(l));
    if (fatal) return `${how}, out of memory: ${fatal.trim().slice(0, 300)}`;
    const last = lines.slice(-3).join(' | ');
    return `${how}${last ? `: ${last.slice(0, 500)}` : ''}`;
  }
}
