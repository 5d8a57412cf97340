/**
 * The document record as Redis holds it (`{p}:doc:{id}`, a hash of strings; its fields are in
 * docs/design.md, "Redis keys") read into a DocRecord: numbers where counted, null where unset.
 */
import type { DocMeta, DocRecord, DocState } from './types.ts';

export function parseRecord(docId: string, h: Record<string, string>): DocRecord {
  const n = (k: string) => Number(h[k] ?? 0);
  return {
    docId,
    meta: JSON.parse(h.meta ?? '{}') as DocMeta,
    gen: n('gen'),
    units: n('units'),
    state: (h.state ?? 'enqueuing') as DocState,
    done: n('done'),
    failed: n('failed'),
    promptTokens: n('prompt_tokens'),
    completionTokens: n('completion_tokens'),
    unitsWithoutUsage: n('units_without_usage'),
    engineMs: n('engine_ms'),
    createdAt: h.created_at ?? '',
    startedAt: h.started_at || null,
    finishedAt: h.finished_at || null,
    resumedAt: h.resumed_at || null,
    resumedFrom: n('resumed_from'),
    writtenAt: h.written_at || null,
    files: h.files ? (JSON.parse(h.files) as string[]) : [],
    writeError: h.write_error ? (JSON.parse(h.write_error) as { code: string; message: string }) : null,
    fed: n('fed'),
    reopens: n('reopens'),
  };
}
