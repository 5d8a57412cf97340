/**
 * One input file → a validated, stored document ready to enqueue, or an InputError. Nothing here
 * touches Redis: a file is checked whole (format from its bytes, every page count, every JSON
 * conversation) before anything is enqueued for it.
 */
import { stat } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { DocbatchError, InputError } from '../errors.ts';
import type { DocKind } from '../store/types.ts';
import { BlobStore, hashFile } from './blobs.ts';
import { detectFile } from './detect.ts';
import { inspectPdf } from './pdf.ts';
import { splitExport } from './chat/split.ts';

export interface PrepareOptions {
  password?: string;
  chunkTokens: number;
  chunkOverlapTokens: number;
  signal?: AbortSignal;
}

/** A unit's reference as it goes into the job (see queues/contracts.ts). */
export type UnitRef = { kind: 'page'; page: number } | { kind: 'chunk'; offset: number; length: number };

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
      const info = await inspectPdf(source, { file: source, ...(options.password ? { password: options.password } : {}) });
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
        units: split.units.map((u) => ({ kind: 'chunk' as const, offset: u.offset, length: u.length })),
        format: split.format,
        stats: {
          format: split.format,
          conversations: split.conversations,
          emptyConversations: split.emptyConversations,
          messages: split.messages,
          chunks: split.chunks,
          skipped: split.skipped,
        },
      };
    }
  }
}
