/**
 * `X.report.json`: what a document was, what became of each unit, what was retried or fell back,
 * who answered, and what it cost. Deterministic: every field comes from the doc record and the
 * unit results.
 */
import type { DocKind, DocRecord } from '../store/types.ts';
import { costPer1000Units, costUsd } from '../observe/cost.ts';
import { totalJson, usageKeys } from '../usage.ts';
import type { Tally, UnitFailure } from './assemble.ts';

export interface Report {
  document: string;
  source: string;
  kind: DocKind;
  format?: string;
  sha256: string;
  generation: number;
  task: { name: string; unit: string; output: string; hash: string };
  /** The model the run asked for (null: the engine's own). */
  model: string | null;
  outputs: string[];
  units: number;
  completed: number;
  failed: UnitFailure[];
  /** Failed units per code. */
  failures_by_code: Record<string, number>;
  /**
   * Answers the checks rejected (truncated, looping, invalid, empty), per code. Each was asked
   * again, but for the last try of a unit that then failed or fell back to its text layer. Counted
   * from the attempt that settled each unit: one that failed after a rejected answer (a 5xx) and
   * was tried again leaves its rejections out (its tokens are counted: DocStore.addSpent).
   */
  retries: Record<string, number>;
  /** Units answered from their own text layer after every answer was rejected. */
  fallbacks: { count: number; units: number[] };
  started_at: string | null;
  finished_at: string | null;
  enqueued_at: string;
  /**
   * Tokens the engine reported, rejected answers included (also those of attempts that failed and
   * were tried again: DocStore.addSpent). A lower bound when some units had no
   * usage (`units_without_usage` > 0, `tokens_note` says so); null when none was reported at all.
   */
  prompt_tokens: number | null;
  completion_tokens: number | null;
  /** Units whose tokens the engine did not report on some answer (no `usage`, or its counts null), each once, retries included. */
  units_without_usage: number;
  /** Present when `units_without_usage` > 0: the token figures are a lower bound (src/usage.ts). */
  tokens_note?: string;
  /** Engine time attributed to this document (each request's share of the busy engine). */
  engine_seconds: number;
  /** Served model names that answered. */
  models: string[];
  /** Units answered per engine. */
  engines: Record<string, number>;
  /** Pages drawn per renderer (pdfium, pdfjs; sharp for image files), answered or failed after. */
  renderers?: Record<string, number>;
  /** Pages (1-based) the fallback renderer drew after the default one failed on them. */
  renderer_fallback_pages?: number[];
  /** Present when GPU_HOURLY_USD is set. */
  gpu_hourly_usd?: number;
  cost_usd?: number;
  /**
   * Cost per 1,000 units answered (pages, chunks): cost_usd over `completed`, so the engine time
   * of failed units is paid for by the answered ones; null when none was answered. The same
   * figure as `docbatch status` (observe/cost.ts).
   */
  cost_per_1000_units?: number | null;
  stats?: Record<string, unknown>;
}

const sorted = (m: Map<string, number>): Record<string, number> => Object.fromEntries([...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

export function buildReport(record: DocRecord, parts: { outputs: string[]; tally: Tally; gpuHourlyUsd?: number }): Report {
  const { tally } = parts;
  const engineSeconds = Math.round(record.engineMs) / 1000;
  const byCode = new Map<string, number>();
  for (const f of tally.failures) byCode.set(f.code, (byCode.get(f.code) ?? 0) + 1);
  const report: Report = {
    document: record.docId,
    source: record.meta.source,
    kind: record.meta.kind,
    ...(record.meta.format ? { format: record.meta.format } : {}),
    sha256: record.meta.sha256,
    generation: record.gen,
    task: { name: record.meta.task.name, unit: record.meta.task.unit, output: record.meta.task.output, hash: record.meta.task.hash },
    model: record.meta.model ?? null,
    outputs: parts.outputs,
    units: record.units,
    completed: tally.completed,
    failed: tally.failures,
    failures_by_code: sorted(byCode),
    retries: sorted(tally.retries),
    fallbacks: { count: tally.fallbacks.length, units: tally.fallbacks },
    started_at: record.startedAt,
    finished_at: record.finishedAt,
    enqueued_at: record.meta.enqueuedAt,
    prompt_tokens: totalJson(record.promptTokens, record.unitsWithoutUsage),
    completion_tokens: totalJson(record.completionTokens, record.unitsWithoutUsage),
    ...usageKeys(record.unitsWithoutUsage),
    engine_seconds: engineSeconds,
    models: [...tally.models].sort(),
    engines: sorted(tally.engines),
    ...(tally.renderers.size > 0 ? { renderers: sorted(tally.renderers), renderer_fallback_pages: tally.rendererFallbacks.map((u) => u + 1) } : {}),
  };
  if (parts.gpuHourlyUsd !== undefined) {
    // As `docbatch status` computes them (observe/cost.ts): per 1,000 units answered.
    const engineMs = Math.round(record.engineMs);
    report.gpu_hourly_usd = parts.gpuHourlyUsd;
    report.cost_usd = costUsd(engineMs, parts.gpuHourlyUsd)!;
    report.cost_per_1000_units = costPer1000Units(engineMs, tally.completed, parts.gpuHourlyUsd);
  }
  if (record.meta.stats) report.stats = record.meta.stats;
  return report;
}
