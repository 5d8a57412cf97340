/**
 * What one attempt at a unit costs (tokens as the engine reported them, engine time), and how
 * much of it the unit's record counts already. Every answer the engine gave is counted once:
 * a rejected answer at once (countSoFar), before the unit is asked again, so that a worker killed
 * then loses nothing; the rest by the settle of the unit's result (SettleRequest.counted says what
 * it need not add), or, when the attempt ends without settling the unit (tried again, handed
 * back, aborted, another's result found), by countSpent. Both use DocStore.addSpent (SPEND_LUA).
 */
import type { UnitJobData } from '../../queues/contracts.ts';
import type { Logger } from '../observe/log.ts';
import type { DocStore } from '../store/docs.ts';
import type { CountedSpend } from '../store/types.ts';
import { uncountedSpend, type TokenCounts } from '../usage.ts';

/** What a unit's answers cost: tokens as the engine reported them, engine time. */
export interface Spent {
  tokens: TokenCounts;
  engineMs: number;
}

/**
 * One attempt at a unit: what its answers cost so far and the codes of those rejected. `settling`:
 * its result went to be recorded (the settle counts it), or its cost was counted already.
 */
export interface Attempt {
  spent: Spent;
  /** Of `spent`, what the record counts already (countSoFar: the answers rejected so far). */
  counted: CountedSpend;
  retried: string[];
  answers: number;
  settling: boolean;
  /** The unit's pages were drawn: by which renderer (the report counts failed pages' too). */
  drawn?: { renderer: string; rendererFallback?: true };
}

/** Whether an attempt got an answer, or had engine time charged. */
export function spentAny(attempt: Attempt): boolean {
  return attempt.answers > 0 || Math.round(attempt.spent.engineMs) > 0;
}

export function newAttempt(): Attempt {
  return { spent: { tokens: { promptTokens: 0, completionTokens: 0 }, engineMs: 0 }, counted: { promptTokens: 0, completionTokens: 0, engineMs: 0 }, retried: [], answers: 0, settling: false };
}

/** What an attempt spent that its record does not count yet (a count not reported stays null: unknown). */
function uncounted(attempt: Attempt): TokenCounts & { engineMs: number } {
  return uncountedSpend({ ...attempt.spent.tokens, engineMs: attempt.spent.engineMs }, attempt.counted);
}

/**
 * Counts what an attempt's answers cost, and its record does not count yet, when the attempt ends
 * without settling the unit (it is tried again, handed back, aborted, or its result found
 * another's recorded): the engine spent it all the same (DocStore.addSpent). Once an attempt:
 * `settling` says it was counted. Best effort: Redis away loses it, as it would lose the settle.
 */
export async function countSpent(store: Pick<DocStore, 'addSpent'>, data: UnitJobData, attempt: Attempt, log: Logger): Promise<void> {
  if (!spentAny(attempt) || attempt.settling) return;
  attempt.settling = true;
  const due = uncounted(attempt);
  await store.addSpent(data.docId, data.gen, data.unit, due).then(
    (counted) => log.debug({ counted, answers: attempt.answers, ...due, engineMs: Math.round(due.engineMs) }, 'answers of an attempt that did not settle the unit counted'),
    (err: unknown) => log.warn({ err: (err as Error).message }, 'could not count what the attempt spent'),
  );
}

/**
 * Counts an attempt's answers so far at once, after one was rejected and before the unit is
 * asked again: a worker killed meanwhile (SIGKILL, a lost machine) would take their cost with
 * it, the unit run again elsewhere counting only its own. The settle (or countSpent) later
 * adds only what came after. Best effort: not counted now, it is counted then.
 */
export async function countSoFar(store: Pick<DocStore, 'addSpent'>, data: UnitJobData, attempt: Attempt, log: Logger): Promise<void> {
  const due = uncounted(attempt);
  try {
    await store.addSpent(data.docId, data.gen, data.unit, due);
    const c = attempt.counted;
    attempt.counted = {
      promptTokens: c.promptTokens + (due.promptTokens ?? 0),
      completionTokens: c.completionTokens + (due.completionTokens ?? 0),
      engineMs: c.engineMs + Math.round(due.engineMs),
    };
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'could not count the rejected answer now; it is counted when the unit settles');
  }
}
