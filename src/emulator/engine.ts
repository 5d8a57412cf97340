/**
 * The emulated GPU: continuous batching in real time.
 *
 * The engine runs steps back to back while it has work. A step begins by scheduling, within a
 * budget of `maxNumBatchedTokens`: one decode token for every running sequence that has finished
 * its prefill, then prefill chunks for running sequences still prefilling, then admissions from the
 * FCFS waiting queue (up to `maxNumSeqs` running and while the KV cache has room). It lasts
 *
 *     (stepBaseMs + stepPerSeqMs * running + prefillPerTokenMs * prefillTokens) / speed
 *
 * and when it ends every scheduled sequence gains its token (a prefill that completes yields the
 * first token). A sequence that reaches its output length is answered.
 *
 * Admission (`admission`): `budget` is vLLM V1's scheduler: a waiting sequence is admitted only
 * while the step's token budget has room, with its first prefill chunk. `all` admits every waiting
 * sequence at once, up to `maxNumSeqs` and while the KV cache holds its prompt, and prefills the
 * running ones oldest first within the budget: nothing waits until the engine is full, and
 * `running` counts sequences that have not had a prefill chunk yet.
 *
 * Time is virtual but pinned to a clock (EngineClock): each step starts where the previous ended,
 * one timer waits for the current step's end, and a late timer catches up by running every step
 * that has ended since (so a fast `speed` is not capped by timer resolution, and no busy-waiting).
 * An idle engine has no timer. The emulator uses the wall clock; a simulation may pass a virtual
 * one and run the very same scheduler without I/O or real time.
 *
 * Faults live here too: the KV cache preempts (recompute) the newest sequence when full, and too
 * many image sequences at once is an OOM: one failed sequence ('request' mode) or, in 'death' mode,
 * a call to `onOom` so the server can run the death sequence (it calls `die()`).
 */
import { newCounters, type EngineCounters, type EngineGauges } from './metrics.ts';
import type { Admission, Faults, Timing } from './options.ts';

export interface EngineLimits {
  maxNumSeqs: number;
  maxNumBatchedTokens: number;
  kvCacheTokens: number;
  /** How waiting sequences are admitted (see above). @defaultValue 'budget' */
  admission?: Admission;
}

/** Time and deferral, so a simulation can run the engine on a virtual clock. */
export interface EngineClock {
  /** Milliseconds on a monotonic clock. */
  now(): number;
  /** Calls `fn` once, `ms` from now; returns a handle for clearTimer. */
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
  /** Runs `fn` after the current call stack (a microtask on the real clock). */
  defer(fn: () => void): void;
}

export const REAL_CLOCK: EngineClock = {
  now: () => performance.now(),
  setTimer: (fn, ms) => setTimeout(fn, ms),
  clearTimer: (handle) => clearTimeout(handle as NodeJS.Timeout | undefined),
  defer: (fn) => queueMicrotask(fn),
};

export interface EngineSettings {
  timing(): Timing;
  faults(): Faults;
  /** Death-mode OOM happened inside a step; the owner runs the death sequence. */
  onOom(): void;
}

export type SeqFailure = 'oom' | 'dead';

export interface SeqInit {
  promptTokens: number;
  /** Images in this sequence's prompt (what the OOM fault counts). */
  images: number;
  /** Tokens to generate before the sequence finishes (>= 1). */
  outputTokens: number;
  /** Why it will finish (counted in vllm:request_success_total). */
  finishReason: 'stop' | 'length';
  /** Holds its slot and never progresses, until aborted. */
  hung: boolean;
  /** Called after each generated token that did not finish the sequence (for streaming). */
  onToken?: (generated: number) => void;
  onDone: (result: SeqResult) => void;
  onFail: (why: SeqFailure) => void;
}

export interface SeqResult {
  generated: number;
  ttftSec: number;
  e2eSec: number;
}

export interface SeqHandle {
  /** The client went away: free the slot. No callback follows. */
  abort(): void;
}

interface Seq {
  init: SeqInit;
  arrival: number;
  state: 'waiting' | 'running' | 'done';
  prefillLeft: number;
  generated: number;
  /** KV cache tokens held. */
  kv: number;
  firstTokenAt: number | undefined;
}

interface Plan {
  start: number;
  end: number;
  decode: Seq[];
  prefill: [Seq, number][];
}

/** A timer that fires late runs at most this many steps, then rebases the clock to now. */
const MAX_CATCH_UP_STEPS = 5000;

export class Engine {
  readonly counters: EngineCounters = newCounters();
  /** Peaks since this engine started (or since resetPeaks). */
  maxRunning = 0;
  maxRunningImages = 0;
  maxWaiting = 0;
  /** When the first sequence arrived and the last one was answered (clock ms), or null. */
  firstArrivalAt: number | null = null;
  lastDoneAt: number | null = null;

  private readonly limits: EngineLimits;
  private readonly settings: EngineSettings;
  private readonly clock: EngineClock;
  private waiting: Seq[] = [];
  private running: Seq[] = [];
  private plan: Plan | null = null;
  private timer: unknown;
  private kvUsed = 0;
  private runningImages = 0;
  private oomPending = false;
  private stopped = false;

  constructor(limits: EngineLimits, settings: EngineSettings, clock: EngineClock = REAL_CLOCK) {
    this.limits = limits;
    this.settings = settings;
    this.clock = clock;
  }

  get dead(): boolean {
    return this.stopped;
  }

  /** Sequences queued or running. */
  get pending(): number {
    return this.waiting.length + this.running.length;
  }

  gauges(): EngineGauges {
    return { running: this.running.length, waiting: this.waiting.length, kvUsage: this.kvUsed / this.limits.kvCacheTokens };
  }

  submit(init: SeqInit): SeqHandle {
    const seq: Seq = { init, arrival: this.clock.now(), state: 'waiting', prefillLeft: init.promptTokens, generated: 0, kv: 0, firstTokenAt: undefined };
    if (this.stopped) {
      seq.state = 'done';
      this.clock.defer(() => init.onFail('dead'));
      return { abort: () => {} };
    }
    this.firstArrivalAt ??= seq.arrival;
    this.waiting.push(seq);
    this.maxWaiting = Math.max(this.maxWaiting, this.waiting.length);
    this.kick(seq.arrival);
    return { abort: () => this.abort(seq) };
  }

  /** Engine death: every sequence fails, nothing runs any more. */
  die(): void {
    if (this.stopped) return;
    const victims = [...this.running, ...this.waiting];
    this.stop();
    for (const s of victims) s.init.onFail('dead');
  }

  /** Stops without answering anyone (the emulator is closing and destroys the sockets). */
  close(): void {
    this.stop();
  }

  resetPeaks(): void {
    this.maxRunning = this.running.length;
    this.maxRunningImages = this.runningImages;
    this.maxWaiting = this.waiting.length;
  }

  private stop(): void {
    this.stopped = true;
    this.clock.clearTimer(this.timer);
    this.timer = undefined;
    this.plan = null;
    for (const s of this.running) s.state = 'done';
    for (const s of this.waiting) s.state = 'done';
    this.running = [];
    this.waiting = [];
    this.kvUsed = 0;
    this.runningImages = 0;
  }

  private abort(seq: Seq): void {
    if (seq.state === 'done') return;
    if (seq.state === 'waiting') {
      this.waiting.splice(this.waiting.indexOf(seq), 1);
    } else {
      this.release(seq);
      this.running.splice(this.running.indexOf(seq), 1);
    }
    seq.state = 'done';
    this.counters.success.abort++;
    // A freed slot may let a waiting sequence in, or the engine may be idle with only hung ones.
    this.kick(this.clock.now());
  }

  /** Starts stepping if the engine is idle and has something to do. */
  private kick(now: number): void {
    if (this.stopped || this.plan) return;
    this.plan = this.beginStep(now);
    if (this.afterBegin()) this.schedule();
  }

  private schedule(): void {
    if (!this.plan || this.timer) return;
    this.timer = this.clock.setTimer(this.tick, Math.max(0, this.plan.end - this.clock.now()));
  }

  private readonly tick = (): void => {
    this.timer = undefined;
    const now = this.clock.now();
    let steps = 0;
    while (this.plan && this.plan.end <= now) {
      const ended = this.plan;
      this.finishStep(ended);
      if (this.stopped) return;
      this.plan = this.beginStep(ended.end);
      if (!this.afterBegin()) return;
      if (++steps >= MAX_CATCH_UP_STEPS && this.plan) {
        // The event loop stalled for long: do not replay all of it in one go.
        const length = this.plan.end - this.plan.start;
        this.plan.start = now;
        this.plan.end = now + length;
        break;
      }
    }
    // Nothing progressing (e.g. only hung sequences): idle until a submit or abort kicks.
    this.schedule();
  };

  /** Handles a death-mode OOM found while scheduling; false if the engine is gone. */
  private afterBegin(): boolean {
    if (!this.oomPending) return true;
    this.oomPending = false;
    this.plan = null;
    this.settings.onOom();
    if (!this.stopped) this.die();
    return false;
  }

  private beginStep(at: number): Plan | null {
    if (this.stopped) return null;
    const timing = this.settings.timing();
    const faults = this.settings.faults();
    let start = at;
    const first = this.waiting[0];
    let active = 0;
    for (const s of this.running) if (!s.init.hung) active++;
    if (active === 0) {
      // Nothing running makes progress: the next step starts when the next request arrived
      // (only later than `at` while catching up).
      if (!first) return null;
      if (first.arrival > start) start = first.arrival;
    }

    // Decode: one token (and one KV slot) for every sequence past its prefill; preempt the
    // newest sequences while the cache cannot hold them.
    let decodeCount = 0;
    for (const s of this.running) if (s.prefillLeft === 0 && !s.init.hung) decodeCount++;
    while (this.kvUsed + decodeCount > this.limits.kvCacheTokens && this.running.length > 1) {
      const victim = this.running[this.running.length - 1] as Seq;
      if (victim.prefillLeft === 0 && !victim.init.hung) decodeCount--;
      this.preempt(victim);
    }
    let budget = this.limits.maxNumBatchedTokens - decodeCount;
    const decode: Seq[] = [];
    const prefill: [Seq, number][] = [];
    for (const s of this.running) {
      if (s.init.hung) continue;
      if (s.prefillLeft === 0) decode.push(s);
      else if (budget > 0) {
        const chunk = Math.min(s.prefillLeft, budget);
        prefill.push([s, chunk]);
        budget -= chunk;
      }
    }

    // Admit FCFS: within the token budget (vLLM), or everything that fits ('all').
    const all = this.limits.admission === 'all';
    const oomAt = faults.oomAtConcurrentImages;
    while (this.running.length < this.limits.maxNumSeqs) {
      const s = this.waiting[0];
      if (!s || s.arrival > start) break;
      if (!all && !s.init.hung && budget <= 0) break;
      if (this.kvUsed + s.prefillLeft > this.limits.kvCacheTokens) break;
      this.waiting.shift();
      if (s.init.images > 0 && oomAt !== null && this.runningImages + 1 > oomAt) {
        if (faults.oomMode === 'request') {
          s.state = 'done';
          // Deferred: the owner may abort sibling sequences, which must not re-enter scheduling.
          this.clock.defer(() => s.init.onFail('oom'));
          continue;
        }
        this.admit(s);
        this.oomPending = true;
        break;
      }
      this.admit(s);
      if (!s.init.hung && budget > 0) {
        const chunk = Math.min(s.prefillLeft, budget);
        prefill.push([s, chunk]);
        budget -= chunk;
      }
    }
    this.maxRunning = Math.max(this.maxRunning, this.running.length);
    this.maxRunningImages = Math.max(this.maxRunningImages, this.runningImages);
    if (this.oomPending) return null;
    if (decode.length === 0 && prefill.length === 0) return null;

    let prefillTokens = 0;
    for (const [, n] of prefill) prefillTokens += n;
    const ms = (timing.stepBaseMs + timing.stepPerSeqMs * this.running.length + timing.prefillPerTokenMs * prefillTokens) / timing.speed;
    return { start, end: start + ms, decode, prefill };
  }

  private admit(s: Seq): void {
    s.state = 'running';
    s.kv = s.prefillLeft;
    this.kvUsed += s.kv;
    if (s.init.images > 0) this.runningImages++;
    this.running.push(s);
  }

  private release(s: Seq): void {
    this.kvUsed -= s.kv;
    s.kv = 0;
    if (s.init.images > 0) this.runningImages--;
  }

  /** Recompute preemption: back to the head of the queue, to prefill prompt and output again. */
  private preempt(s: Seq): void {
    this.release(s);
    this.running.pop();
    s.state = 'waiting';
    s.prefillLeft = s.init.promptTokens + s.generated;
    this.waiting.unshift(s);
    this.counters.preemptions++;
  }

  private finishStep(plan: Plan): void {
    const finished: Seq[] = [];
    const progressed: Seq[] = [];
    const gain = (s: Seq): void => {
      s.generated++;
      s.kv++;
      this.kvUsed++;
      this.counters.generationTokens++;
      if (s.firstTokenAt === undefined) {
        s.firstTokenAt = plan.end;
        this.counters.ttft.observe((plan.end - s.arrival) / 1000);
      }
      if (s.generated >= s.init.outputTokens) finished.push(s);
      else if (s.init.onToken) progressed.push(s);
    };
    for (const [s, chunk] of plan.prefill) {
      if (s.state !== 'running') continue;
      s.prefillLeft -= chunk;
      this.counters.promptTokens += chunk;
      if (s.prefillLeft === 0) gain(s);
    }
    for (const s of plan.decode) if (s.state === 'running') gain(s);

    if (finished.length > 0) {
      for (const s of finished) {
        s.state = 'done';
        this.release(s);
      }
      this.running = this.running.filter((s) => s.state === 'running');
    }
    for (const s of progressed) s.init.onToken?.(s.generated);
    if (finished.length > 0) this.lastDoneAt = plan.end;
    for (const s of finished) {
      const e2eSec = (plan.end - s.arrival) / 1000;
      this.counters.e2e.observe(e2eSec);
      this.counters.success[s.init.finishReason]++;
      s.init.onDone({ generated: s.generated, ttftSec: ((s.firstTokenAt ?? plan.end) - s.arrival) / 1000, e2eSec });
    }
  }
}
