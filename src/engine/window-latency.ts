/**
 * The engine's queue as this worker's own answers show it, for engines without /metrics. Pure:
 * answers in, a reading out; no clock, no I/O.
 *
 * A continuous-batching engine answers a request after it waited in the queue, prefilled its
 * prompt, and decoded its output one step at a time:
 *
 *     latency = wait + prefill + outputTokens × step
 *
 * Two requests sent at about the same time met about the same wait (the queue is FIFO), so the
 * difference of their latencies over the difference of their lengths is the step: the median of
 * these slopes over recent pairs is the step the engine runs at, whatever the queue. No answer is
 * quicker per token than one step, so the least latency per token bounds it from above; the
 * step is kept between half that bound and the bound. What an answer took beyond its
 * tokens at that step is the time it spent waiting or prefilling; summed over recent answers,
 *
 *     queued = 1 − step × Σ outputTokens / Σ latency
 *
 * is the share of their time our requests spent not decoding: by Little's law, the share of our
 * requests in flight that sit in the engine's queue (or prefill). Answers show the wait they met
 * when they were sent: a request's lifetime late.
 *
 * Answers of one length cannot tell a steady queue from slow steps (every answer waited the
 * same): then there is no reading, and the controller compares latency with the best it saw.
 */

export interface Answer {
  /** When the request was sent (ms). */
  sentAt: number;
  latencyMs: number;
  outputTokens: number;
}

export interface QueueReading {
  /** The step (ms per output token): the median slope of pairs sent together, within [bound / 2, bound] (bound: the least latency per token). */
  stepMs: number;
  /** Share (0..1) of our requests' time spent waiting or prefilling, not decoding. */
  queued: number;
  /** How many answers the reading rests on. */
  samples: number;
}

/** Least relative spread of output lengths for a reading (coefficient of variation). */
const MIN_SPREAD = 0.15;

export class QueueEstimator {
  private readonly keep: number;
  private readonly answers: Answer[] = [];

  /** `keep`: how many recent answers a reading rests on at most. */
  constructor(keep: number) {
    this.keep = Math.max(4, keep);
  }

  add(a: Answer): void {
    if (!(a.outputTokens > 0) || !(a.latencyMs > 0)) return;
    this.answers.push(a);
    if (this.answers.length > this.keep) this.answers.shift();
  }

  clear(): void {
    this.answers.length = 0;
  }

  /** A reading from the answers to requests sent at or after `sentAfter`, or null (too few, or lengths too alike). */
  read(sentAfter = Number.NEGATIVE_INFINITY, minSamples = 8): QueueReading | null {
    const xs = this.answers.filter((a) => a.sentAt >= sentAfter).sort((a, b) => a.sentAt - b.sentAt);
    const n = xs.length;
    if (n < Math.max(3, minSamples)) return null;
    let tokens = 0;
    let latency = 0;
    let squares = 0;
    let bound = Number.POSITIVE_INFINITY;
    for (const a of xs) {
      tokens += a.outputTokens;
      latency += a.latencyMs;
      squares += a.outputTokens ** 2;
      bound = Math.min(bound, a.latencyMs / a.outputTokens);
    }
    const mean = tokens / n;
    if (squares / n - mean ** 2 < (MIN_SPREAD * mean) ** 2) return null;
    // Slopes between answers to requests sent close together (within a tenth of their latency),
    // whose lengths differ by a fifth of the mean or more.
    const slopes: number[] = [];
    for (let i = 0; i < n; i++) {
      const a = xs[i]!;
      for (let j = i + 1; j < n && j <= i + 4; j++) {
        const b = xs[j]!;
        if (b.sentAt - a.sentAt > 0.1 * Math.min(a.latencyMs, b.latencyMs)) break;
        const dl = b.outputTokens - a.outputTokens;
        if (Math.abs(dl) >= 0.2 * mean) slopes.push((b.latencyMs - a.latencyMs) / dl);
      }
    }
    // Requests of one burst sent together still queue one behind the other, which pulls slopes
    // down: the step is kept within [bound / 2, bound], erring toward a smaller queue.
    const stepMs = slopes.length >= 3 ? Math.min(bound, Math.max(bound / 2, median(slopes))) : bound;
    return {
      stepMs,
      queued: Math.max(0, 1 - (stepMs * tokens) / latency),
      samples: n,
    };
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
