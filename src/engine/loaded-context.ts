/**
 * The context the server holds a model at, where only its own API says so: Ollama's `GET
 * /api/ps` (num_ctx of a loaded model). Asked only when an answer looks cut
 * (src/infer/truncated-prompt.ts), from the unit that got the answer, so what is remembered
 * decides how often a unit waits for it:
 *
 * - no such API (a 4xx, or a body that is not Ollama's list: a gateway's page for any path):
 *   never asked again;
 * - a probe that failed (a 5xx, no answer within the client's probeTimeoutMs, refused, reset):
 *   not asked again for 30 s, doubled by each failure in a row up to 10 min, so an Ollama that
 *   is overloaded or restarting, or a proxy that black-holes the path, costs a unit the probe's
 *   timeout once in that time instead of every unit whose answer looks cut paying it again;
 *   an answer after that is taken at once (the row starts again). Meanwhile the context is not
 *   known: null, as for a server that is neither (such answers are not judged cut);
 * - callers at the same moment share one probe (a window of answers that look cut is one
 *   request, and one failure in the row).
 * A context it said is not kept: the model may be loaded again with another num_ctx.
 */
import { readLoadedContext } from './responses.ts';
import { underSignal } from './under-signal.ts';

/** How long a failed probe is not asked again, at the first failure in a row. */
export const PS_FAILED_FIRST_MS = 30_000;
/** ... and at most, doubling with each failure in a row. */
export const PS_FAILED_MAX_MS = 600_000;

/** What one probe brought: Ollama's answer, no such API, or a failure (remembered for a time). */
type Outcome = { text: string } | 'absent' | 'failed' | 'other';

export class LoadedContextProbe {
  private absent = false;
  private failures = 0;
  private quietUntil = 0;
  private running: Promise<Outcome> | undefined;
  private readonly ask: () => Promise<{ status: number; text: string }>;
  private readonly now: () => number;

  /**
   * @param ask sends `GET /api/ps` (bounded by its own timeout); rejects when no answer came.
   * @param now the clock failures are remembered by.
   */
  constructor(ask: () => Promise<{ status: number; text: string }>, now: () => number = () => Date.now()) {
    this.ask = ask;
    this.now = now;
  }

  /**
   * `{context}` as the server says it for `model` (`{context: null}`: it has the API and did not
   * say, an older Ollama); null when it has no such API, or the probe failed (now, or recently).
   * Throws ABORTED only (the caller's signal).
   */
  async lengthOf(model: string, signal?: AbortSignal): Promise<{ context: number | null } | null> {
    if (this.absent || this.now() < this.quietUntil) return null;
    this.running ??= this.probe().finally(() => (this.running = undefined));
    const outcome = await underSignal(this.running, signal, "Ollama's /api/ps");
    if (typeof outcome === 'string') return null;
    const context = readLoadedContext(outcome.text, model);
    // Not Ollama's list (a gateway's page for any path): not asked again.
    if (context === undefined) this.absent = true;
    return context === undefined ? null : { context };
  }

  private async probe(): Promise<Outcome> {
    let answer: { status: number; text: string };
    try {
      answer = await this.ask();
    } catch {
      return this.failed();
    }
    if (answer.status >= 500) return this.failed();
    this.failures = 0;
    if (answer.status >= 400) {
      this.absent = true;
      return 'absent';
    }
    return answer.status >= 300 ? 'other' : { text: answer.text };
  }

  private failed(): 'failed' {
    const quiet = Math.min(PS_FAILED_MAX_MS, PS_FAILED_FIRST_MS * 2 ** Math.min(this.failures, 20));
    this.failures++;
    this.quietUntil = this.now() + quiet;
    return 'failed';
  }
}
