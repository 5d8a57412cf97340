/**
 * A finished document → its output files, in unit order:
 *   PDF  → `X.md`: `<!-- page N -->` then the model's text, or `<!-- page N failed: CODE: message -->`
 *   chat → `X.jsonl`: one object per chunk (conversation order), summary or error
 * plus `X.report.json` for every document (src/write/report.ts).
 *
 * Everything in a file comes from Redis and the blob store, never from the clock, so writing a
 * document twice gives identical bytes.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { BlobStore } from '../ingest/blobs.ts';
import type { DocStore } from '../store/docs.ts';
import type { DocRecord, UnitResult } from '../store/types.ts';
import { openAtomic } from './atomic.ts';

export interface UnitFailure {
  unit: number;
  code: string;
  message: string;
  page?: number;
  conversation_id?: string;
  /** The chunk, or 'summary' for a conversation's summary. */
  chunk?: number | 'summary';
}

export interface Assembled {
  file: string;
  completed: number;
  failures: UnitFailure[];
  models: string[];
  /** PDFs: pages drawn by each engine, and the pages the fallback engine drew (report.ts). */
  renderers?: RendererCounts;
}

export interface RendererCounts {
  counts: Record<'pdfium' | 'pdfjs', number>;
  fallbackPages: number[];
}

/** Model output is untrusted text: it must not be able to forge or close our page markers. */
export function escapePageText(text: string): string {
  return text.replace(/<!--/g, '&lt;!--');
}

/** A failure message inside an HTML comment: no `--`, one line. */
export function commentSafe(text: string): string {
  return text.replace(/\s+/g, ' ').replace(/-{2,}/g, '—').trim();
}

export async function writeMarkdown(record: DocRecord, store: DocStore, path: string): Promise<Assembled> {
  const out = await openAtomic(path);
  const failures: UnitFailure[] = [];
  const models = new Set<string>();
  const renderers: RendererCounts = { counts: { pdfium: 0, pdfjs: 0 }, fallbackPages: [] };
  let completed = 0;
  try {
    for await (const [unit, result] of store.results(record.docId, record.units)) {
      const page = unit + 1;
      const r = result ?? missing();
      if (r.ok) {
        completed++;
        models.add(r.model);
        if (r.renderer) renderers.counts[r.renderer] += 1;
        if (r.rendererFallback) renderers.fallbackPages.push(page);
        await out.write(`<!-- page ${page} -->\n${escapePageText(r.text).trimEnd()}\n\n`);
      } else {
        failures.push({ unit, page, code: r.code, message: r.message });
        await out.write(`<!-- page ${page} failed: ${r.code}: ${commentSafe(r.message)} -->\n\n`);
      }
    }
    await out.commit();
  } catch (err) {
    await out.abort();
    throw err;
  }
  return { file: path, completed, failures, models: [...models].sort(), renderers };
}

interface SidecarLine {
  conversation_id: string;
  title: string;
  chunk: number;
  chunks: number;
  message_ids: string[];
  overlap_message_ids?: string[];
  create_time?: number | null;
}

export async function writeJsonl(record: DocRecord, store: DocStore, blobs: BlobStore, path: string): Promise<Assembled> {
  const sidecar = await blobs.require(record.meta.blob);
  const lines = createInterface({ input: createReadStream(sidecar), crlfDelay: Infinity })[Symbol.asyncIterator]();
  const summaries = record.meta.conversationSummary === true;
  // Chunk units come first, in sidecar order; reduce units (one per multi-chunk conversation) follow.
  const chunkUnits = summaries ? Number(record.meta.stats?.chunks ?? record.units) : record.units;
  const out = await openAtomic(path);
  const failures: UnitFailure[] = [];
  const models = new Set<string>();
  let completed = 0;
  let nextReduce = chunkUnits;
  let conversation: { first: SidecarLine; messageIds: Set<string>; results: UnitResult[] } | null = null;

  const summaryLine = async (): Promise<void> => {
    if (!conversation) return;
    const { first, messageIds, results } = conversation;
    let r: UnitResult;
    let unit: number;
    if (first.chunks > 1) {
      unit = nextReduce++;
      r = (await store.unitResult(record.docId, unit)) ?? missing();
      if (r.ok) completed++;
    } else {
      unit = -1; // the single chunk's own summary is the conversation's
      r = results[0] ?? missing();
    }
    const base = { conversation_id: first.conversation_id, title: first.title, chunk: 'summary', chunks: first.chunks, message_ids: [...messageIds], create_time: first.create_time ?? null, from_chunks: results.filter((x) => x.ok).length };
    let line: Record<string, unknown>;
    if (r.ok) {
      models.add(r.model);
      line = { ...base, summary: r.text, usage: unit < 0 ? { prompt_tokens: 0, completion_tokens: 0 } : { prompt_tokens: r.promptTokens, completion_tokens: r.completionTokens }, model: r.model, finish_reason: r.finishReason };
    } else {
      if (unit >= 0) failures.push({ unit, code: r.code, message: r.message, conversation_id: first.conversation_id, chunk: 'summary' });
      line = { ...base, summary: null, usage: { prompt_tokens: 0, completion_tokens: 0 }, error: { code: r.code, message: r.message } };
    }
    await out.write(`${JSON.stringify(line)}\n`);
    conversation = null;
  };

  try {
    for await (const [unit, result] of store.results(record.docId, chunkUnits)) {
      const next = await lines.next();
      if (next.done) throw new Error(`sidecar of ${record.docId} has fewer lines than its ${chunkUnits} chunks`);
      const chunk = JSON.parse(next.value) as SidecarLine;
      const r = result ?? missing();
      const base = {
        conversation_id: chunk.conversation_id,
        title: chunk.title,
        chunk: chunk.chunk,
        chunks: chunk.chunks,
        message_ids: chunk.message_ids,
        ...(chunk.overlap_message_ids && chunk.overlap_message_ids.length > 0 ? { overlap_message_ids: chunk.overlap_message_ids } : {}),
        create_time: chunk.create_time ?? null,
      };
      let line: Record<string, unknown>;
      if (r.ok) {
        completed++;
        models.add(r.model);
        line = {
          ...base,
          summary: r.text,
          usage: { prompt_tokens: r.promptTokens, completion_tokens: r.completionTokens },
          model: r.model,
          finish_reason: r.finishReason,
        };
      } else {
        failures.push({ unit, code: r.code, message: r.message, conversation_id: chunk.conversation_id, chunk: chunk.chunk });
        line = { ...base, summary: null, usage: { prompt_tokens: 0, completion_tokens: 0 }, error: { code: r.code, message: r.message } };
      }
      await out.write(`${JSON.stringify(line)}\n`);
      if (summaries) {
        if (chunk.chunk === 0) conversation = { first: chunk, messageIds: new Set(), results: [] };
        if (conversation) {
          for (const id of chunk.message_ids) conversation.messageIds.add(id);
          conversation.results.push(r);
          if (chunk.chunk === chunk.chunks - 1) await summaryLine();
        }
      }
    }
    await out.commit();
  } catch (err) {
    await out.abort();
    throw err;
  } finally {
    await lines.return?.();
  }
  return { file: path, completed, failures, models: [...models].sort() };
}

function missing(): UnitResult {
  return { ok: false, code: 'UNIT_LOST', message: 'no result was recorded for this unit' };
}
