/**
 * The worker's unit pipeline, built from its parts and config: what the processor (processor.ts),
 * the preparer (units.ts) and the sender (dispatch.ts) are each given, and the settle parts every
 * settling path of the worker uses. The worker (worker.ts) runs the pipeline and hears from it
 * through the hooks; it does not decide what the pipeline is made of.
 */
import type { UnitJobData } from '../../queues/contracts.ts';
import type { DocbatchError } from '../errors.ts';
import type { Logger } from '../observe/log.ts';
import type { RenderPool } from '../render/pool.ts';
import type { SettleParts } from '../store/settle.ts';
import type { DocMeta, UnitResult } from '../store/types.ts';
import type { TokenCounts } from '../usage.ts';
import type { AnswerHold } from './hold.ts';
import { UnitProcessor } from './processor.ts';
import { UnitPreparer } from './units.ts';
import type { InferWorkerParts } from './worker-parts.ts';

/** What the pipeline asks of the worker, and tells it. */
export interface PipelineHooks {
  log: Logger;
  /** Holds a unit's result while Redis is full, until it can be recorded. */
  hold: AnswerHold;
  /** The render pool, started on first use. */
  renderPool: () => RenderPool;
  /** Whether this worker's model takes images (null: not known). */
  acceptsImages: () => boolean | null;
  /** A fault of this worker's own environment: stop taking work until it passes. */
  onEnvironmentError: (err: DocbatchError) => void;
  onSettled: (data: UnitJobData, meta: DocMeta, result: UnitResult) => void;
  onOom: () => void;
  onRequest: (ms: number, ok: boolean) => void;
  onUsage: (model: string, usage: TokenCounts) => void;
}

/** What settling a unit needs (src/store/settle.ts), from the worker's parts. */
export function settlePartsOf(parts: InferWorkerParts): SettleParts {
  return { store: parts.store, writeQueue: parts.writeQueue, inferQueue: parts.inferQueue, chunks: parts.chunks };
}

export function createUnitProcessor(parts: InferWorkerParts, hooks: PipelineHooks): UnitProcessor {
  const { config } = parts;
  const settle = settlePartsOf(parts);
  return new UnitProcessor({
    store: parts.store,
    blobs: parts.blobs,
    settle,
    reopen: { ...settle, blobs: parts.blobs, feeder: parts.feeder },
    preparer: new UnitPreparer({
      blobs: parts.blobs,
      chunks: parts.chunks,
      pool: hooks.renderPool,
      results: (docId, gen, unit) => parts.store.unitResult(docId, gen, unit),
      options: {
        imageSize: config.imageSize,
        imageFormat: config.imageFormat,
        imageQuality: config.imageQuality,
        pageMaxTokens: config.pageMaxTokens,
        chatMaxTokens: config.chatMaxTokens,
        schemaInPrompt: config.schemaInPrompt,
      },
    }),
    hold: hooks.hold,
    dispatch: {
      engines: parts.engines,
      releaseAfterMs: config.engineReleaseMs,
      retryAfterMaxMs: config.engineRetryAfterMaxMs,
      oomSizes: [1024, 768, 512].filter((s) => s < config.imageSize),
      log: hooks.log,
      onOom: hooks.onOom,
      onRequest: hooks.onRequest,
      onUsage: hooks.onUsage,
    },
    workerName: config.workerName,
    log: hooks.log,
    acceptsImages: hooks.acceptsImages,
    onEnvironmentError: hooks.onEnvironmentError,
    onSettled: hooks.onSettled,
  });
}
