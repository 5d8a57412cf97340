/**
 * One input file → a validated, stored document ready to enqueue, or an InputError. Nothing here
 * touches Redis: a file is checked whole (format from its bytes, every page count, every JSON
 * conversation) before anything is enqueued for it.
 */
import { stat } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { DocbatchError, InputError } from '../errors.ts';
import type { ChunkGroup } from '../../queues/contracts.ts';
import type { DocKind } from '../store/types.ts';
import { BlobStore, hashFile } from './blobs.ts';
import { detectFile } from './detect.ts';
import { inspectPdf, type PdfInspector } from './pdf.ts';
import { splitExport } from './chat/split.ts';

export interface PrepareOptions {
  password?: string;
  /** Reused across files (one child process for the whole command); a fresh one per file when absent. */
  inspector?: PdfInspector;
  /** Chat: also make one summary per conversation (with more than one chunk) from its chunks' summaries. */
  conversationSummary?: boolean;
  chunkTokens: number;
  chunkOverlapTokens: number;
  /** Chat: bounds on chunks and on what a .zip may inflate to (splitExport's defaults when absent). */
  limits?: { maxChunks?: number; maxZipRatio?: number; maxZipBytes?: number };
  signal?: AbortSignal;
}

/** A unit's reference as it goes into the job (see queues/contracts.ts). */
export type UnitRef =
  | { kind: 'page'; page: number }
  | { kind: 'chunk'; offset: number; length: number; group?: ChunkGroup }
  /** Added by the worker when the group's last chunk settles, never at enqueue. */
  | { kind: 'reduce'; group: ChunkGroup };

export interface PreparedDoc {
  source: string;
  kind: DocKind;
  sha256: string;
  docId: string;
  /** Output base name before collision handling. */
  baseName: string;
  /** The blob the workers read: the PDF itself, or a chat export's sidecar. */
  blob: string;
  units: UnitRef[];
  format?: string;
  password?: string;
  stats?: Record<string, unknown>;
  conversationSummary?: boolean;
}

/** `d` + 20 hex digits of the content hash: the same bytes are the same document. */
export function docIdFor(sha256: string): string {
  return `d${sha256.slice(0, 20)}`;
}

export function baseNameOf(source: string): string {
  const name = basename(source);
  const ext = extname(name);
  const stem = ext ? name.slice(0, -ext.length) : name;
  // The name only ever comes from the user's own file name; still, keep it a plain file name.
  return stem.replace(/[/\\\0]/g, '_') || 'document';
}

export async function prepareFile(source: string, blobs: BlobStore, options: PrepareOptions): Promise<PreparedDoc> {
  let size: number;
  try {
    const info = await stat(source);
    if (!info.isFile()) throw new InputError('FILE_UNREADABLE', 'not a regular file', { place: { file: source } });
    size = info.size;
  } catch (err) {
    if (err instanceof DocbatchError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : String((err as Error).message);
    throw new InputError('FILE_UNREADABLE', why, { place: { file: source }, cause: err });
  }
  if (size === 0) throw new InputError('EMPTY_FILE', 'the file is empty (0 bytes)', { place: { file: source } });

  const kind = await detectFile(source);
  switch (kind.kind) {
    case 'empty':
      throw new InputError('EMPTY_FILE', 'the file holds nothing but whitespace', { place: { file: source } });
    case 'unknown':
      if (extname(source).toLowerCase() === '.pdf') {
        throw new InputError('NOT_PDF', `named .pdf but its bytes are not a PDF (${kind.reason})`, { place: { file: source } });
      }
      throw new InputError('UNSUPPORTED_FORMAT', `not a PDF or a known chat export (${kind.reason})`, { place: { file: source } });
    case 'pdf': {
      const inspectOptions = { file: source, ...(options.password ? { password: options.password } : {}), ...(options.signal ? { signal: options.signal } : {}) };
      const info = options.inspector ? await options.inspector.inspect(source, inspectOptions) : await inspectPdf(source, inspectOptions);
      const blob = await blobs.put(source);
      return {
        source,
        kind: 'pdf',
        sha256: blob.sha256,
        docId: docIdFor(blob.sha256),
        baseName: baseNameOf(source),
        blob: blob.sha256,
        units: Array.from({ length: info.pages }, (_, i) => ({ kind: 'page' as const, page: i + 1 })),
        ...(info.encrypted && options.password ? { password: options.password } : {}),
        stats: { pages: info.pages, encrypted: info.encrypted, title: info.title },
      };
    }
    case 'chat': {
      const sha256 = await hashFile(source);
      const sidecar = await blobs.tempPath('sidecar');
      const split = await splitExport(source, kind, sidecar, {
        file: source,
        budgetTokens: options.chunkTokens,
        overlapTokens: options.chunkOverlapTokens,
        ...options.limits,
        ...(options.signal ? { signal: options.signal } : {}),
      });
      const blob = await blobs.adopt(split.sidecarPath, split.sidecarSha256, split.sidecarBytes);
      return {
        source,
        kind: 'chat',
        sha256,
        docId: docIdFor(sha256),
        baseName: baseNameOf(source),
        blob: blob.sha256,
        units: chunkRefs(split.units, options.conversationSummary === true),
        format: split.format,
        stats: {
          format: split.format,
          conversations: split.conversations,
          emptyConversations: split.emptyConversations,
          messages: split.messages,
          chunks: split.chunks,
          skipped: split.skipped,
        },
        ...(options.conversationSummary ? { conversationSummary: true } : {}),
      };
    }
  }
}

/**
 * Chunk units in sidecar order; with summaries, one reduce unit per conversation of more than
 * one chunk follows them all, in conversation order (the writer relies on that order).
 */
export function chunkRefs(units: Array<{ offset: number; length: number; chunk: number; chunks: number }>, summaries: boolean): UnitRef[] {
  const refs: UnitRef[] = units.map((u) => ({ kind: 'chunk' as const, offset: u.offset, length: u.length }));
  if (!summaries) return refs;
  const reduces: UnitRef[] = [];
  for (let first = 0; first < units.length; ) {
    const count = units[first]!.chunks;
    if (count > 1) {
      const group: ChunkGroup = { reduce: units.length + reduces.length, first, count, head: [units[first]!.offset, units[first]!.length] };
      for (let i = first; i < first + count; i++) (refs[i] as { group?: ChunkGroup }).group = group;
      reduces.push({ kind: 'reduce', group });
    }
    first += Math.max(1, count);
  }
  return [...refs, ...reduces];
}
