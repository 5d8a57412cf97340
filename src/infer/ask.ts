/**
 * Asking the engine for one unit's answer until the task's checks pass it (src/task/answer.ts):
 * a truncated, looping or invalid answer is asked again at a rising temperature; a JSON answer
 * cut off at max_tokens, with twice the max_tokens, within the model's context and output cap
 * (context-room.ts), or not again once at that limit; after the last try a page may fall back
 * to its own text layer. The engine's faults are the sender's (dispatch.ts); recording the
 * answer, and what an error means for the job, are the processor's (processor.ts).
 */
import type { UnitJobData } from '../../queues/contracts.ts';
import { DocbatchError } from '../errors.ts';
import type { Logger } from '../observe/log.ts';
import type { DocStore } from '../store/docs.ts';
import type { DocMeta, UnitResult } from '../store/types.ts';
import { checkAnswer, temperatureFor } from '../task/answer.ts';
import type { Task } from '../task/types.ts';
import { addCounts } from '../usage.ts';
import { countSoFar, type Attempt, type Spent } from './attempt.ts';
import { raisedMaxTokens } from './context-room.ts';
import { FinalUnitError, UnitSender, type DispatchParts, type Dispatched } from './dispatch.ts';
import type { UnitPreparer } from './units.ts';

/** What asking needs of the worker (the processor's parts, in part). */
export interface AskParts {
  store: DocStore;
  preparer: UnitPreparer;
  dispatch: DispatchParts;
  workerName: string;
  /** Whether this worker's model takes images (null: not known). */
  acceptsImages: () => boolean | null;
}

/**
 * Asks the engine for one unit's answer until one passes the task's checks, or the tries run
 * out: then the page's text layer where the task falls back to it, else AnswerRejected. What the
 * answers cost is added to `attempt` as they come; a rejected one is counted in the record at once.
 */
export async function askUntilAccepted(parts: AskParts, data: UnitJobData, doc: { meta: DocMeta; task: Task }, signal: AbortSignal, log: Logger, attempt: Attempt): Promise<UnitResult> {
  const { meta, task } = doc;
  const password = meta.encrypted ? await parts.store.password(meta.docId) : null;
  const ctx = { data, meta, task, password };
  const sender = new UnitSender(parts.dispatch, (size) => parts.preparer.prepare(ctx, size, signal), {
    requestId: `${data.docId}-${data.gen}-${data.unit}`,
    isPage: meta.kind !== 'chat' && !data.reduce,
  });
  const prepared = await sender.prepared();
  if (prepared.renderer) attempt.drawn = { renderer: prepared.renderer, ...(prepared.rendererFallback ? { rendererFallback: true } : {}) };
  if (prepared.hasImages && parts.acceptsImages() === false) {
    throw new DocbatchError('MODEL_NO_IMAGES', `the model ${meta.model ?? '(the engine\u2019s own)'} takes no images, and this unit sends page images`);
  }
  const retried = attempt.retried;
  // Tokens over the unit's answers (attempt.spent): a count is unknown once one answer did not report it.
  let last: { code: string; message: string } | null = null;
  const tries = prepared.judge.retries + 1;
  /** Raised after a JSON answer was cut off at max_tokens: asked again with as many, it would be cut again. */
  let maxTokens: number | undefined;
  for (let k = 0; k < tries; k++) {
    const d = await sender.send({ temperature: temperatureFor(prepared.judge, k), ...(meta.model ? { model: meta.model } : {}), ...(maxTokens !== undefined ? { maxTokens } : {}) }, signal).catch((err: unknown) => {
      // Engine time of the sends that failed: counted with the attempt. So are the tokens of
      // answers that did not come back as one: an answer that came as an error (CONTENT_FILTERED:
      // the endpoint reports, and bills, them), a prose answer sent again before the error.
      const usage = sender.takeUnansweredUsage();
      attempt.spent = { tokens: usage ? addCounts(attempt.spent.tokens, usage) : attempt.spent.tokens, engineMs: attempt.spent.engineMs + sender.takeUnansweredMs() };
      if (usage) attempt.answers++;
      throw structuredOutputHint(err, prepared.request.responseFormat !== undefined);
    });
    attempt.spent = { tokens: addCounts(attempt.spent.tokens, d.result.usage), engineMs: attempt.spent.engineMs + d.engineMs };
    const spent = attempt.spent;
    attempt.answers++;
    const verdict = checkAnswer(d.prepared.judge, d.result);
    if (verdict.ok) {
      return {
        ok: true,
        text: verdict.text,
        ...(verdict.data !== undefined ? { data: verdict.data } : {}),
        ...spent.tokens,
        engineMs: Math.round(spent.engineMs),
        latencyMs: Math.round(d.result.latencyMs),
        model: d.result.model,
        finishReason: d.result.finishReason ?? 'unknown',
        worker: parts.workerName,
        engine: d.engine.label,
        ...(retried.length > 0 ? { retried } : {}),
        ...(d.prepared.imageSize ? { imageSize: d.prepared.imageSize } : {}),
        ...(d.prepared.renderMs !== undefined ? { renderMs: Math.round(d.prepared.renderMs) } : {}),
        ...(d.prepared.renderer ? { renderer: d.prepared.renderer } : {}),
        ...(d.prepared.rendererFallback ? { rendererFallback: true } : {}),
      };
    }
    retried.push(verdict.code);
    last = verdict;
    await countSoFar(parts.store, data, attempt, log);
    if (verdict.code === 'OUTPUT_TRUNCATED' && d.prepared.judge.output.type === 'json') {
      const next = raisedMaxTokens(d.maxTokens, d.maxTokensLimit);
      if (next === null) {
        // At the most the model leaves it: every further try would be cut off alike.
        last = { code: verdict.code, message: `${verdict.message}; ${atLimit(d)}` };
        log.warn({ code: verdict.code, try: k + 1, tries, maxTokens: d.maxTokens, limit: d.maxTokensLimit }, 'JSON answer cut off at the most max_tokens the model leaves it; not asked again');
        break;
      }
      if (k + 1 < tries) {
        maxTokens = next;
        log.warn({ code: verdict.code, try: k + 1, tries, maxTokens: next }, 'JSON answer cut off at max_tokens; asking again with more');
        continue;
      }
      last = { code: verdict.code, message: `${verdict.message}; still cut off at max_tokens ${d.maxTokens} (${prepared.maxTokens} at first, doubled after each cut-off answer): raise ${prepared.maxTokensFrom}` };
    }
    log.warn({ code: verdict.code, try: k + 1, tries, err: verdict.message }, k + 1 < tries ? 'answer rejected; asking again at a higher temperature' : 'answer rejected; no tries left');
  }
  const fallbackText = prepared.textLayer?.trim();
  if (task.fallback === 'text-layer' && fallbackText && !data.reduce) {
    log.warn({ code: last?.code }, "every answer was rejected; using the page's own text layer");
    return {
      ok: true,
      text: fallbackText,
      ...attempt.spent.tokens,
      engineMs: Math.round(attempt.spent.engineMs),
      latencyMs: 0,
      model: 'text-layer',
      finishReason: 'fallback',
      fallback: 'text-layer',
      worker: parts.workerName,
      retried,
      ...(prepared.renderer ? { renderer: prepared.renderer } : {}),
    };
  }
  throw new AnswerRejected(last!.code, last!.message, retried, attempt.spent);
}

/**
 * An engine that refuses the structured-output request (no `response_format`, or a schema its
 * grammar compiler cannot take) fails every unit of a JSON task alike: say what to do about it.
 */
function structuredOutputHint(err: unknown, asked: boolean): unknown {
  if (!asked || !(err instanceof DocbatchError) || err.code !== 'BAD_REQUEST' || !/response_format|json_schema|structured|grammar|guided/i.test(err.message)) return err;
  return new DocbatchError(
    'BAD_REQUEST',
    `${err.message} (the engine refused the structured-output request: simplify the schema, or, for an engine without structured output, start its worker with SCHEMA_IN_PROMPT=1)`,
    { cause: err },
  );
}

/** Why a cut-off JSON answer cannot be given more tokens, and what would change that. */
function atLimit(d: Dispatched): string {
  const limit = d.maxTokensLimit!;
  if (limit.by === 'cap') {
    return `max_tokens ${d.maxTokens} is the most the endpoint lets ${d.result.model || 'the model'} answer (it caps replies at ${limit.tokens} tokens), so no setting of docbatch's can give it more: ask for less per unit (fewer pages per document, fewer fields in the schema)`;
  }
  return `max_tokens ${d.maxTokens} is all the room the model's context leaves this prompt (about ${d.prepared.promptTokensEstimate} tokens): raise the engine's context length (vLLM --max-model-len) or send a smaller prompt (IMAGE_SIZE, fewer pages per unit)`;
}

/**
 * Every try's answer was rejected: the unit fails for good with the last one's code (the tries
 * were its retries; a job attempt more would only repeat them), keeping what they cost.
 */
export class AnswerRejected extends FinalUnitError {
  readonly retried: string[];
  readonly spent: Spent;
  constructor(code: string, message: string, retried: string[], spent: Spent) {
    super(code as DocbatchError['code'], `${message} (${retried.length} tries)`);
    this.retried = retried;
    this.spent = spent;
  }
}
