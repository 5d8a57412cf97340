/**
 * `X.report.json`: what a document was, what became of each unit, and what it cost.
 * Deterministic: every field comes from the doc record and the unit results.
 */
import type { DocRecord } from '../store/types.ts';
import type { RendererCounts, UnitFailure } from './assemble.ts';

export interface Report {
  document: string;
  source: string;
  kind: 'pdf' | 'chat';
  format?: string;
  sha256: string;
  generation: number;
  outputs: string[];
  units: number;
  completed: number;
  failed: UnitFailure[];
  started_at: string | null;
  finished_at: string | null;
  enqueued_at: string;
  prompt_tokens: number;
  completion_tokens: number;
  /** Engine time attributed to this document (each request's share of the busy engine). */
  engine_seconds: number;
  models: string[];
  /** PDFs: pages drawn by each engine (PDFium, pdf.js). */
  renderers?: Record<'pdfium' | 'pdfjs', number>;
  /** PDFs: pages drawn by the fallback engine after the first one failed on them. */
  renderer_fallback_pages?: number[];
  /** Present when GPU_HOURLY_USD is set. */
  gpu_hourly_usd?: number;
  cost_usd?: number;
  /** Cost per 1,000 pages (PDF) or chunks (chat). */
  cost_per_1000_units?: number;
  stats?: Record<string, unknown>;
}

export function buildReport(
  record: DocRecord,
  parts: { outputs: string[]; completed: number; failures: UnitFailure[]; models: string[]; gpuHourlyUsd?: number; renderers?: RendererCounts },
): Report {
  const engineSeconds = Math.round(record.engineMs) / 1000;
  const report: Report = {
    document: record.docId,
    source: record.meta.source,
    kind: record.meta.kind,
    ...(record.meta.format ? { format: record.meta.format } : {}),
    sha256: record.meta.sha256,
    generation: record.gen,
    outputs: parts.outputs,
    units: record.units,
    completed: parts.completed,
    failed: parts.failures,
    started_at: record.startedAt,
    finished_at: record.finishedAt,
    enqueued_at: record.meta.enqueuedAt,
    prompt_tokens: record.promptTokens,
    completion_tokens: record.completionTokens,
    engine_seconds: engineSeconds,
    models: parts.models,
  };
  if (parts.renderers) {
    report.renderers = parts.renderers.counts;
    report.renderer_fallback_pages = parts.renderers.fallbackPages;
  }
  if (parts.gpuHourlyUsd !== undefined) {
    const cost = (engineSeconds / 3600) * parts.gpuHourlyUsd;
    report.gpu_hourly_usd = parts.gpuHourlyUsd;
    report.cost_usd = round6(cost);
    report.cost_per_1000_units = record.units > 0 ? round6((cost / record.units) * 1000) : 0;
  }
  if (record.meta.stats) report.stats = record.meta.stats;
  return report;
}

function round6(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}
