/**
 * The worker's renderers: a pool of child processes (child.ts), one page at a time each. Pages
 * are drawn by `renderer` (PDFium by default); a page that fails, crashes or times out there is
 * queued again, first in line, for the other engine (pdf.js), and fails only if that fails too.
 * The page says which engine drew it (`renderer`, `fallbackFrom`).
 *
 * Limits, all enforced from here because a child stuck in native code cannot enforce anything:
 * - wall clock per page: kill, fail with RENDER_TIMEOUT, respawn on demand;
 * - resident memory (read from /proc while a page renders): kill above `maxRssMb`, fail with
 *   RENDER_CRASHED "out of memory"; a renderer that ends a page above 3/4 of it is recycled;
 * - resident memory of all renderers together: above `maxTotalRssMb` idle renderers are let
 *   go, then the largest busy one is killed;
 * - pages per renderer: recycled after `maxPagesPerRenderer` (pdf.js caches grow);
 * - pixels per page: checked in the child before a canvas exists (geometry.ts).
 * A renderer that dies fails its own page only. Pages of a blob go to a free renderer that
 * already has that blob open (affinity), so a long book is parsed once per renderer.
 */
import { availableParallelism } from 'node:os';
import { DocbatchError } from '../errors.ts';
import type { PageJob, PageOutput, RendererName } from './image.ts';
import { memoryVerdicts } from './memory.ts';
import { RendererProcess } from './renderer-process.ts';
import { otherRenderer, validatePoolOptions, validateRequest, type RenderPoolOptions, type RenderRequest, type ResolvedPoolOptions } from './options.ts';

export type { RenderPoolOptions, RenderRequest } from './options.ts';

/** What a render returns: the renderer's own output, as it crossed the IPC channel. */
export type RenderedPage = PageOutput;

export interface RenderPoolStats {
  renderers: number;
  busy: number;
  queued: number;
  rendered: number;
  crashed: number;
  timedOut: number;
  recycled: number;
  /** Documents opened by renderers (a page of a document already open in its renderer opens nothing). */
  documentsOpened: number;
  /** Pages sent to the fallback engine after the first failed (each also counted above as it ended). */
  fallbacks: number;
}

interface Task {
  request: RenderRequest;
  job: PageJob;
  /** The engine asked to draw the page now. */
  renderer: RendererName;
  /** How the first engine failed, once the page went to the fallback. */
  fallbackFrom: DocbatchError | undefined;
  signal: AbortSignal | undefined;
  resolve: (page: RenderedPage) => void;
  reject: (err: unknown) => void;
  onAbort: (() => void) | undefined;
  slot: Slot | undefined;
  timer: NodeJS.Timeout | undefined;
}

interface Slot {
  proc: RendererProcess;
  state: 'starting' | 'idle' | 'busy' | 'leaving';
  task: Task | undefined;
}

/** Consecutive renderers that die before they are ready, after which queued pages fail. */
const MAX_START_FAILURES = 3;
/** The longest a renderer may take to say ready (or the page limit, if longer): ~0.8 s on a busy 2-core machine. */
const START_MS = 30_000;

/** How far down the queue a free renderer looks for a document no other renderer holds. */
const SPREAD_LOOKAHEAD = 64;

/** Failures of one engine that the other may not share. */
const FALLBACK_CODES = new Set(['RENDER_FAILED', 'RENDER_CRASHED', 'RENDER_TIMEOUT']);

export class RenderPool {
  readonly #options: ResolvedPoolOptions;
  readonly #slots = new Set<Slot>();
  readonly #queue: Task[] = [];
  #rssTimer: NodeJS.Timeout | undefined;
  #pumpScheduled: NodeJS.Immediate | undefined;
  #startFailures = 0;
  #closing: Promise<void> | undefined;
  #counts = { rendered: 0, crashed: 0, timedOut: 0, recycled: 0, documentsOpened: 0, fallbacks: 0 };

  constructor(options: RenderPoolOptions = {}) {
    this.#options = validatePoolOptions(options, availableParallelism());
  }

  /** Starts every renderer now and waits until they are ready (so the first pages do not wait). */
  async warm(): Promise<void> {
    while (!this.#closing && this.#slots.size < this.#options.size) this.#spawn();
    await Promise.allSettled([...this.#slots].map((s) => s.proc.ready));
  }

  /**
   * Renders one page. Rejects with a DocbatchError (codes in docs/rendering.md), or with a
   * TypeError naming the field of a malformed request.
   */
  render(request: RenderRequest, signal?: AbortSignal): Promise<RenderedPage> {
    if (this.#closing) return Promise.reject(new DocbatchError('ABORTED', 'the render pool is closed'));
    let job: PageJob;
    try {
      job = validateRequest(request, this.#options);
    } catch (err) {
      return Promise.reject(err);
    }
    if (signal?.aborted) return Promise.reject(abortError(signal, request));
    return new Promise<RenderedPage>((resolve, reject) => {
      const task: Task = {
        request,
        job,
        renderer: this.#options.renderer,
        fallbackFrom: undefined,
        signal,
        resolve,
        reject,
        onAbort: undefined,
        slot: undefined,
        timer: undefined,
      };
      if (signal) {
        task.onAbort = () => this.#abort(task);
        signal.addEventListener('abort', task.onAbort, { once: true });
      }
      this.#queue.push(task);
      this.#schedulePump();
    });
  }

  stats(): RenderPoolStats {
    let busy = 0;
    let renderers = 0;
    for (const slot of this.#slots) {
      if (slot.state === 'leaving') continue;
      renderers += 1;
      if (slot.state === 'busy') busy += 1;
    }
    return { renderers, busy, queued: this.#queue.length, ...this.#counts };
  }

  /** Fails queued and running pages with ABORTED, kills every renderer, waits for them to exit. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      clearImmediate(this.#pumpScheduled);
      for (const task of this.#queue.splice(0)) this.#fail(task, new DocbatchError('ABORTED', 'the render pool is closing'));
      const exits: Promise<unknown>[] = [];
      for (const slot of this.#slots) {
        slot.proc.kill(new DocbatchError('ABORTED', 'the render pool is closing'));
        exits.push(slot.proc.exited);
      }
      this.#stopRssWatch();
      await Promise.all(exits);
    })();
    return this.#closing;
  }

  // ---- scheduling ----

  /**
   * Pages handed in one after another in the same tick (a worker taking a batch) are queued
   * together before any is assigned, so the spread below sees every document among them.
   */
  #schedulePump(): void {
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = setImmediate(() => {
      this.#pumpScheduled = undefined;
      this.#pump();
    });
  }

  #pump(): void {
    if (this.#closing) return;
    const idle = [...this.#slots].filter((s) => s.state === 'idle' && s.proc.alive);
    // Affinity first, looking only a little way down the queue so no page waits for long.
    const window = this.#queue.slice(0, this.#options.size * 4);
    for (const slot of idle) {
      const match = window.find((t) => t.slot === undefined && slot.proc.open.includes(t.request.blobId));
      if (match) this.#assign(slot, match);
    }
    // Then spread: a renderer without work of its own takes a page of a document no other
    // renderer holds (open, or being opened for the page it draws), so each document is opened
    // and warmed (fonts, images) by one renderer while others are left. The oldest page
    // otherwise.
    for (const slot of idle) {
      if (slot.state !== 'idle') continue;
      const held = new Set<string>();
      for (const other of this.#slots) {
        if (other === slot || other.state === 'leaving' || !other.proc.alive) continue;
        for (const id of other.proc.open) held.add(id);
        if (other.task) held.add(other.task.request.blobId);
      }
      const next = this.#queue.slice(0, SPREAD_LOOKAHEAD).find((t) => !held.has(t.request.blobId)) ?? this.#queue[0];
      if (!next) break;
      this.#assign(slot, next);
    }
    const starting = [...this.#slots].filter((s) => s.state === 'starting' && s.proc.alive).length;
    let live = [...this.#slots].filter((s) => s.state !== 'leaving' && s.proc.alive).length;
    for (let waiting = this.#queue.length - starting; waiting > 0 && live < this.#options.size; waiting--, live++) {
      this.#spawn();
    }
  }

  #spawn(): Slot {
    const proc = new RendererProcess({
      mode: 'render',
      heapMb: this.#options.maxHeapMb,
      settings: {
        maxOpenDocuments: this.#options.maxOpenDocuments,
        maxImagePixels: this.#options.maxImagePixels,
        fonts: this.#options.fontRendering,
        renderer: this.#options.renderer,
      },
    });
    const slot: Slot = { proc, state: 'starting', task: undefined };
    this.#slots.add(slot);
    // A renderer that never says ready (stuck importing) would hold queued pages forever. Not
    // RENDER_TIMEOUT_MS alone: a page limit under the start time failed every page.
    const startMs = Math.max(START_MS, this.#options.pageTimeoutMs);
    const startTimer = setTimeout(() => proc.kill(new DocbatchError('RENDER_CRASHED', `the renderer did not start within ${startMs} ms`)), startMs);
    startTimer.unref();
    void proc.exited.then(() => clearTimeout(startTimer));
    proc.ready.then(
      () => {
        clearTimeout(startTimer);
        if (slot.state !== 'starting') return;
        this.#startFailures = 0;
        slot.state = 'idle';
        this.#pump();
      },
      () => {},
    );
    void proc.exited.then(() => this.#onExit(slot));
    return slot;
  }

  #assign(slot: Slot, task: Task): void {
    this.#queue.splice(this.#queue.indexOf(task), 1);
    slot.state = 'busy';
    slot.task = task;
    task.slot = slot;
    task.timer = setTimeout(() => {
      this.#counts.timedOut += 1;
      slot.proc.kill(
        new DocbatchError('RENDER_TIMEOUT', `page ${task.request.page} took longer than ${this.#options.pageTimeoutMs} ms; the renderer was killed`),
      );
    }, this.#options.pageTimeoutMs);
    this.#startRssWatch();
    const { path, blobId, password } = task.request;
    slot.proc.request<'rendered'>({ type: 'render', path, blobId, password, job: task.job, renderer: task.renderer }).then(
      (reply) => {
        this.#counts.rendered += 1;
        if (reply.opened) this.#counts.documentsOpened += 1;
        this.#finish(slot, task);
        const page = reply.page;
        if (task.fallbackFrom) page.fallbackFrom = `${task.fallbackFrom.code}: ${task.fallbackFrom.message}`;
        this.#succeed(task, page);
      },
      (err: unknown) => {
        this.#finish(slot, task);
        if (!this.#fallBack(task, err)) this.#fail(task, err);
      },
    );
  }

  /** The renderer's page is over (answered or killed): free it, recycle it, or let it go. */
  #finish(slot: Slot, task: Task): void {
    clearTimeout(task.timer);
    slot.task = undefined;
    if (!slot.proc.alive || slot.state === 'leaving') return;
    const rss = slot.proc.rssMb();
    const worn = slot.proc.answered >= this.#options.maxPagesPerRenderer || slot.proc.wantsRetire;
    const heavy = rss !== undefined && rss > this.#options.maxRssMb * 0.75;
    if (worn || heavy) {
      this.#counts.recycled += 1;
      slot.state = 'leaving';
      slot.proc.retire();
    } else {
      slot.state = 'idle';
    }
    this.#checkMemory();
    if (![...this.#slots].some((s) => s.state === 'busy')) this.#stopRssWatch();
    queueMicrotask(() => this.#pump());
  }

  /**
   * Puts a page that failed in its first engine back at the head of the queue for the other.
   * False when it may not: fallback off, already the fallback, closing, aborted, or a failure
   * both engines share (a missing file, a password, a page too large, an abort).
   */
  #fallBack(task: Task, reason: unknown): boolean {
    if (!this.#options.fallback || task.fallbackFrom || this.#closing || task.signal?.aborted) return false;
    if (!(reason instanceof DocbatchError) || !FALLBACK_CODES.has(reason.code)) return false;
    if (reason.code === 'RENDER_CRASHED') this.#counts.crashed += 1;
    this.#counts.fallbacks += 1;
    task.fallbackFrom = reason;
    task.renderer = otherRenderer(task.renderer);
    task.slot = undefined;
    this.#queue.unshift(task);
    queueMicrotask(() => this.#pump());
    return true;
  }

  #onExit(slot: Slot): void {
    const wasStarting = slot.state === 'starting';
    this.#slots.delete(slot);
    slot.state = 'leaving';
    if (![...this.#slots].some((s) => s.state === 'busy')) this.#stopRssWatch();
    if (this.#closing) return;
    // A page in progress fails through its own request (RendererProcess rejects it with the
    // kill reason or RENDER_CRASHED); here the pool only replaces the renderer.
    if (wasStarting) {
      this.#startFailures += 1;
      if (this.#startFailures >= MAX_START_FAILURES) {
        this.#startFailures = 0;
        const why = new DocbatchError('RENDER_CRASHED', `renderers fail to start: ${slot.proc.stderrTail().slice(-500) || 'no output'}`);
        for (const queued of this.#queue.splice(0)) this.#fail(queued, why);
      }
    }
    this.#pump();
  }

  #abort(task: Task): void {
    const err = abortError(task.signal, task.request);
    if (task.slot) {
      task.slot.proc.kill(err); // mid-page: only a kill frees the renderer at once
      return;
    }
    const index = this.#queue.indexOf(task);
    if (index >= 0) this.#queue.splice(index, 1);
    this.#fail(task, err);
  }

  #detach(task: Task): void {
    if (task.onAbort) task.signal?.removeEventListener('abort', task.onAbort);
    task.onAbort = undefined;
  }

  #succeed(task: Task, page: RenderedPage): void {
    this.#detach(task);
    task.resolve(page);
  }

  #fail(task: Task, reason: unknown): void {
    this.#detach(task);
    let err = reason instanceof DocbatchError ? reason : new DocbatchError('RENDER_FAILED', String(reason), { cause: reason });
    if (err.code === 'RENDER_CRASHED') this.#counts.crashed += 1;
    const first = task.fallbackFrom;
    if (first && err.code !== 'ABORTED') {
      // Both engines failed: the fallback's code decides; the message tells both stories.
      const firstName = otherRenderer(task.renderer);
      err = new DocbatchError(err.code, `${task.renderer}: ${err.message} (after ${firstName} failed: ${first.code}: ${first.message})`, {
        cause: err,
        ...(err.place ? { place: err.place } : {}),
      });
    }
    task.reject(withPage(err, task.request));
  }

  // ---- memory watch ----

  #startRssWatch(): void {
    if (this.#rssTimer) return;
    this.#rssTimer = setInterval(() => this.#checkMemory(), this.#options.rssPollMs);
    this.#rssTimer.unref();
  }

  /** Reads every live renderer's resident set and applies memory.ts's verdicts. */
  #checkMemory(): void {
    const live = [...this.#slots]
      .filter((s) => s.state !== 'leaving' && s.proc.alive)
      .map((slot) => ({ key: slot, rss: slot.proc.rssMb(), busy: slot.state === 'busy' }));
    for (const verdict of memoryVerdicts(live, this.#options)) {
      const slot = verdict.key;
      if (verdict.action === 'kill') {
        slot.proc.kill(new DocbatchError('RENDER_CRASHED', verdict.reason));
      } else {
        this.#counts.recycled += 1;
        slot.state = 'leaving';
        slot.proc.retire();
      }
    }
  }

  #stopRssWatch(): void {
    clearInterval(this.#rssTimer);
    this.#rssTimer = undefined;
  }
}

function abortError(signal: AbortSignal | undefined, request: RenderRequest): DocbatchError {
  const reason = signal?.reason as unknown;
  const why = reason instanceof Error ? reason.message : reason === undefined ? 'aborted' : String(reason);
  return new DocbatchError('ABORTED', `rendering page ${request.page} was aborted: ${why}`, { cause: reason });
}

/** The page as a place, so logs and reports say which page failed. */
function withPage(err: DocbatchError, request: RenderRequest): DocbatchError {
  if (err.place?.page !== undefined) return err;
  return new DocbatchError(err.code, err.message, { cause: err.cause, place: { ...err.place, page: request.page } });
}
