/**
 * The producer's chat side in one call: stream an export (file or .zip entry), read one
 * conversation at a time, keep the shown branch, cut it into token-bounded chunks and write
 * them all to one sidecar file. The whole file is validated in this pass: any error deletes
 * the partial sidecar and throws, so nothing is enqueued for a bad export. Bounded: a .zip entry
 * that would inflate too far is refused before it inflates (zip.ts, ZIP_TOO_LARGE), and
 * splitting stops at the conversation whose chunks cross `maxChunks` (EXPORT_TOO_MANY_CHUNKS).
 */
import type { SidecarChunk } from '../../store/chunk-index.ts';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { DocbatchError, InputError, type Place } from '../../errors.ts';
import { ChunkLimitError, chunkMessages, HeaderTooLongError, MIN_BUDGET_TOKENS } from '../chunk.ts';
import type { FileKind } from '../detect.ts';
import { estimateTokens } from '../tokens.ts';
import { readChatgptConversation } from './chatgpt.ts';
import { readClaudeConversation } from './claude.ts';
import { parseElement } from './element.ts';
import { FieldError } from './fields.ts';
import { JsonArrayScanner, JsonLinesScanner, type ScanLimits } from './json-scan.ts';
import { readJsonlConversation } from './jsonl.ts';
import { SidecarWriter } from './sidecar.ts';
import { type ChatFormat, type ConversationReader, SkipCounter } from './types.ts';
import { openZipEntry, zipCorrupt, type ZipLimits } from './zip.ts';

export interface SplitOptions {
  /** The name to put in error messages (as the user typed it). */
  file: string;
  /** No chunk's estimated tokens exceed this. @defaultValue 3500 */
  budgetTokens: number;
  /** Trailing whole messages of the previous chunk repeated, up to this many tokens. @defaultValue 0 */
  overlapTokens?: number;
  /** @defaultValue estimateTokens (src/ingest/tokens.ts) */
  countTokens?: (text: string) => number;
  /** Largest single conversation held in memory, in bytes. @defaultValue 64 MiB */
  maxConversationBytes?: number;
  /** Deepest JSON nesting accepted (the top-level array counts). @defaultValue 64 */
  maxDepth?: number;
  /** Most chunks one export may make; splitting stops where this is crossed. @defaultValue 1 000 000 (EXPORT_MAX_CHUNKS) */
  maxChunks?: number;
  /** A .zip's conversations.json may inflate to at most this many times its compressed size. @defaultValue 100 (ZIP_MAX_RATIO) */
  maxZipRatio?: number;
  /** A .zip's conversations.json may inflate to at most this many bytes. @defaultValue 4 GiB (ZIP_MAX_BYTES) */
  maxZipBytes?: number;
  signal?: AbortSignal;
  /** The export's bytes as a stream (an object in S3), read instead of `path`; not for a .zip. */
  source?: Readable;
}

/** One sidecar line (JSON); line i is unit i. The one type of it lives with the storage format. */
export type ChunkRecord = SidecarChunk;

export interface SplitResult {
  format: ChatFormat;
  conversations: number;
  emptyConversations: number;
  /** Visible messages kept (each in exactly one chunk's message_ids, split messages aside). */
  messages: number;
  chunks: number;
  /** What was left out, by reason (`content_type:thoughts`, `hidden`, `empty`, `fallback:*` ...). */
  skipped: Record<string, number>;
  sidecarPath: string;
  sidecarBytes: number;
  sidecarSha256: string;
  /** Byte range of each sidecar line, without its newline, and the chunk's place in its conversation. */
  units: SplitUnit[];
}

export interface SplitUnit {
  offset: number;
  length: number;
  /** 0-based chunk index in its conversation, and the conversation's number of chunks. */
  chunk: number;
  chunks: number;
}

export const DEFAULT_SPLIT_OPTIONS = {
  budgetTokens: 3500,
  overlapTokens: 0,
  countTokens: estimateTokens,
  maxConversationBytes: 64 * 1024 * 1024,
  maxDepth: 64,
  maxChunks: 1_000_000,
  maxZipRatio: 100,
  maxZipBytes: 4 * 1024 ** 3,
} as const;

const READ_CHUNK_BYTES = 1 << 20;

const READERS: Record<ChatFormat, ConversationReader> = {
  chatgpt: readChatgptConversation,
  claude: readClaudeConversation,
  jsonl: readJsonlConversation,
};

function validate(options: SplitOptions): Required<Omit<SplitOptions, 'signal' | 'source'>> {
  const o = { ...DEFAULT_SPLIT_OPTIONS, ...withoutUndefined(options), file: options.file };
  const check = (name: string, value: number, ok: boolean): void => {
    if (!ok) throw new TypeError(`splitExport: option ${name} has a bad value: ${value}`);
  };
  check('budgetTokens', o.budgetTokens, Number.isInteger(o.budgetTokens) && o.budgetTokens >= MIN_BUDGET_TOKENS);
  check('overlapTokens', o.overlapTokens, Number.isInteger(o.overlapTokens) && o.overlapTokens >= 0 && o.overlapTokens < o.budgetTokens);
  check('maxConversationBytes', o.maxConversationBytes, Number.isInteger(o.maxConversationBytes) && o.maxConversationBytes > 0);
  check('maxDepth', o.maxDepth, Number.isInteger(o.maxDepth) && o.maxDepth >= 8);
  check('maxChunks', o.maxChunks, Number.isInteger(o.maxChunks) && o.maxChunks >= 1);
  check('maxZipRatio', o.maxZipRatio, o.maxZipRatio >= 1);
  check('maxZipBytes', o.maxZipBytes, Number.isInteger(o.maxZipBytes) && o.maxZipBytes >= 1);
  return o;
}

function withoutUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export async function splitExport(
  path: string,
  kind: FileKind & { kind: 'chat' },
  sidecarPath: string,
  options: SplitOptions,
): Promise<SplitResult> {
  const o = validate(options);
  const { signal } = options;
  const file = o.file;
  const aborted = (): DocbatchError => new DocbatchError('ABORTED', 'splitting was aborted', { cause: signal?.reason, place: { file } });
  if (signal?.aborted) throw aborted();

  const read = READERS[kind.format];
  const skips = new SkipCounter();
  const units: SplitUnit[] = [];
  let conversations = 0;
  let emptyConversations = 0;
  let messages = 0;
  const sidecar = new SidecarWriter(sidecarPath);

  const onConversation = (bytes: Buffer, offset: number, position: number): void => {
    const isLine = kind.format === 'jsonl';
    const place: Place = isLine ? { file, line: position } : { file, conversation: `#${position}` };
    const value = parseElement(bytes, offset, place);
    const named = (): Place => {
      const id = idOf(value);
      return { ...place, conversation: isLine ? (id ? `id ${id}` : undefined) : `#${position}${id ? ` (id ${id})` : ''}` };
    };
    let conv;
    try {
      conv = read(value, skips, position);
    } catch (err) {
      if (!(err instanceof FieldError)) throw err;
      throw new InputError('EXPORT_SCHEMA', err.message, { cause: err, place: { ...named(), offset, field: err.field } });
    }
    conversations++;
    if (conv.messages.length === 0) {
      emptyConversations++;
      return;
    }
    messages += conv.messages.length;
    let chunks;
    try {
      chunks = chunkMessages(conv.messages, { ...o, maxChunks: o.maxChunks - units.length });
    } catch (err) {
      if (err instanceof HeaderTooLongError) {
        // Was a RangeError, no error of the file: it stopped the whole enqueue.
        throw new InputError(
          'EXPORT_SCHEMA',
          `message ${JSON.stringify(err.messageId.slice(0, 80))} is longer than a chunk and its role label takes ${err.headerTokens} tokens with a part number: CHUNK_TOKENS ${o.budgetTokens} leaves its parts no room; raise CHUNK_TOKENS`,
          { cause: err, place: { ...named(), offset } },
        );
      }
      if (!(err instanceof ChunkLimitError)) throw err;
      throw new InputError(
        'EXPORT_TOO_MANY_CHUNKS',
        `the export makes more than EXPORT_MAX_CHUNKS (${o.maxChunks}) chunks at CHUNK_TOKENS ${o.budgetTokens}; stopped at this conversation, nothing was queued. ` +
          'Raise EXPORT_MAX_CHUNKS or CHUNK_TOKENS if the export is genuine',
        { cause: err, place: { ...named(), offset } },
      );
    }
    chunks.forEach((c, k) => {
      const record: ChunkRecord = {
        conversation_id: conv.id,
        title: conv.title,
        chunk: k,
        chunks: chunks.length,
        message_ids: c.messageIds,
        overlap_message_ids: c.overlapIds,
        tokens: c.tokens,
        text: c.text,
        create_time: conv.createTime,
      };
      units.push({ ...sidecar.write(record), chunk: record.chunk, chunks: record.chunks });
    });
  };

  const limits: ScanLimits = { maxDepth: o.maxDepth, maxElementBytes: o.maxConversationBytes };
  const scanner =
    kind.format === 'jsonl' ? new JsonLinesScanner(file, limits, onConversation) : new JsonArrayScanner(file, limits, onConversation);

  let source: { stream: Readable; close(): void } | undefined;
  try {
    source = options.source && kind.zipEntry === undefined ? { stream: options.source, close: () => undefined } : await openSource(path, kind, file, { maxRatio: o.maxZipRatio, maxBytes: o.maxZipBytes });
    const iterator = source.stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    for (;;) {
      let step: IteratorResult<Buffer>;
      try {
        step = await iterator.next();
      } catch (err) {
        throw kind.zipEntry ? zipCorrupt(file, err) : unreadable(file, err);
      }
      if (step.done) break;
      if (signal?.aborted) throw aborted();
      scanner.push(step.value);
      await sidecar.drained();
    }
    scanner.end();
    if (conversations === 0 || messages === 0) {
      const why = conversations === 0 ? 'no conversation' : `${conversations} conversation${conversations === 1 ? '' : 's'} but no visible message`;
      throw new InputError('EXPORT_EMPTY', `the export holds ${why}`, { place: { file } });
    }
    const summary = await sidecar.finish();
    return {
      format: kind.format,
      conversations,
      emptyConversations,
      messages,
      chunks: units.length,
      skipped: skips.counts,
      sidecarPath,
      sidecarBytes: summary.bytes,
      sidecarSha256: summary.sha256,
      units,
    };
  } catch (err) {
    await sidecar.abort();
    throw kind.zipEntry !== undefined ? inEntry(err, kind.zipEntry) : err;
  } finally {
    source?.stream.destroy();
    source?.close();
  }
}

async function openSource(path: string, kind: FileKind & { kind: 'chat' }, file: string, limits: ZipLimits): Promise<{ stream: Readable; close(): void }> {
  if (kind.zipEntry !== undefined) return openZipEntry(path, kind.zipRecord ?? kind.zipEntry, file, limits);
  const stream = createReadStream(path, { highWaterMark: READ_CHUNK_BYTES });
  // Surface "cannot open" here, as FILE_UNREADABLE, before any work.
  await new Promise<void>((resolve, reject) => {
    stream.once('ready', () => resolve());
    stream.once('error', (err) => reject(unreadable(file, err)));
  });
  return { stream, close: () => undefined };
}

/** An error at a place inside a .zip's entry names the entry: its byte offsets count from the entry's start. */
function inEntry(err: unknown, entry: string): unknown {
  if (!(err instanceof InputError) || !err.place || err.place.entry !== undefined) return err;
  const { offset, line, conversation } = err.place;
  if (offset === undefined && line === undefined && conversation === undefined) return err;
  return new InputError(err.code, err.message, { cause: err.cause ?? err, place: { ...err.place, entry } });
}

function unreadable(file: string, err: unknown): InputError {
  return new InputError('FILE_UNREADABLE', `cannot read the file: ${(err as Error).message}`, { cause: err, place: { file } });
}

/** The conversation's id for error messages, if it has a readable one. */
function idOf(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  for (const k of ['conversation_id', 'id', 'uuid']) {
    const id = v[k];
    if (typeof id === 'string' || typeof id === 'number') return String(id).slice(0, 80);
  }
  return undefined;
}
