/**
 * One input file → a validated, stored input ready to enqueue under any task, or an InputError.
 * Nothing here touches Redis: a file is checked whole (format from its bytes, every page count,
 * every JSON conversation) before anything is enqueued for it. A source may be an `s3://` object
 * (src/ingest/s3-input.ts): the same checks and codes, with the URI as the place.
 */
import { realpath, rm, stat } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { DocbatchError, InputError } from '../errors.ts';
import { inspectImage, MAX_INPUT_PIXELS } from '../render/image-file.ts';
import { DEFAULT_MAX_PAGES } from '../render/page-count.ts';
import type { S3Client } from '@aws-sdk/client-s3';
import { isS3Uri } from '../s3-uri.ts';
import { hashFile, type BlobStore } from '../store/blobs.ts';
import type { DocKind } from '../store/types.ts';
import { detectFile } from './detect.ts';
import { inspectPdf, type PdfInspector } from './pdf.ts';
import { splitExport, type SplitUnit } from './chat/split.ts';
import { S3Input } from './s3-input.ts';
import type { TiffDamage } from '../render/tiff-chain.ts';
import { tiffChain, type TiffPage } from './tiff-pages.ts';

export interface PrepareOptions {
  password?: string;
  /** Reused across files (one child process for the whole command); a fresh one per file when absent. */
  inspector?: PdfInspector;
  chunkTokens: number;
  chunkOverlapTokens: number;
  /** PDF: the most pages (PdfInspector's default when absent). Chat: bounds on chunks and on what a .zip may inflate to (splitExport's defaults when absent). */
  limits?: { maxPages?: number; maxChunks?: number; maxZipRatio?: number; maxZipBytes?: number };
  signal?: AbortSignal;
  /** The client for `s3://` sources (made on first use). */
  s3?: () => S3Client;
}

/** A stored input: what every run of it (one per task and model) is made from. */
export interface PreparedInput {
  source: string;
  kind: DocKind;
  sha256: string;
  /** Output base name before collision handling. */
  baseName: string;
  /** The blob the workers read: the PDF or image itself, or a chat export's sidecar. */
  blob: string;
  /** PDF and image: pages (TIFF frames). */
  pages?: number;
  /** Chat: one entry per chunk, in sidecar order. */
  chunks?: SplitUnit[];
  format?: string;
  encrypted?: boolean;
  password?: string;
  stats?: Record<string, unknown>;
}

/**
 * A file name made safe as an output base name, whatever it was: no folder separators, no
 * control or invisible format characters, no leading dots (`...pdf` would name `..` or a hidden
 * file), not a name Windows reserves, not ending in `.report` (`a.report.pdf`'s `X.json` would
 * be `a.report.json`, the report of `a.pdf`: it becomes `a_report`), and at most `maxBytes` of
 * UTF-8 (cut on a character boundary, with a short hash of the whole name so two long names stay
 * apart). Never empty. (`.compare` needs no such care: a document named `a.compare` and the
 * comparison of `a` claim the same field of the names hash, so one of them is suffixed.)
 */
export function baseNameOf(source: string, maxBytes = 120): string {
  const name = basename(source);
  const ext = extname(name);
  const stem = ext && ext !== name ? name.slice(0, -ext.length) : name;
  // eslint-disable-next-line no-control-regex
  let safe = stem.normalize('NFC').replace(/[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff/\\:*?"<>|]/g, '_');
  safe = safe.replace(/^[.\s]+/, '').replace(/[.\s]+$/, '');
  if (/^(con|prn|aux|nul|com\d|lpt\d)$/i.test(safe)) safe = `${safe}_`;
  safe = safe.replace(/\.(report)$/i, '_$1');
  if (safe === '') safe = 'document';
  if (Buffer.byteLength(safe) > maxBytes) {
    const hash = shortHash(stem);
    let cut = safe;
    while (Buffer.byteLength(cut) > maxBytes - hash.length - 1) cut = [...cut].slice(0, -1).join('');
    safe = `${cut}-${hash}`;
  }
  return safe;
}

function shortHash(text: string): string {
  let h = 0x811c9dc5;
  for (const ch of text) {
    h ^= ch.codePointAt(0)!;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

export async function prepareFile(source: string, blobs: BlobStore, options: PrepareOptions): Promise<PreparedInput> {
  if (!isS3Uri(source)) return prepare(source, null, blobs, options);
  if (!options.s3) throw new InputError('FILE_UNREADABLE', 'no object-storage client for s3:// inputs', { place: { file: source } });
  const object = await S3Input.open(source, options.s3(), blobs, options.signal);
  try {
    return await prepare(source, object, blobs, options);
  } finally {
    await object.release();
  }
}

/** A local file's size and identity: any write or replacement changes `version`. */
async function fileInfo(source: string): Promise<{ size: number; version: string }> {
  try {
    const info = await stat(source, { bigint: true });
    if (!info.isFile()) throw new InputError('FILE_UNREADABLE', 'not a regular file', { place: { file: source } });
    // Not ctime: a chmod, a new hard link or a backup tool's xattrs change it, not the bytes.
    return { size: Number(info.size), version: `${info.dev}:${info.ino}:${info.size}:${info.mtimeNs}` };
  } catch (err) {
    if (err instanceof DocbatchError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : String((err as Error).message);
    throw new InputError('FILE_UNREADABLE', why, { place: { file: source }, cause: err });
  }
}

/** What is no document whatever it becomes: a change while it was read is not worth saying. */
const NOT_DOCUMENTS = new Set(['UNSUPPORTED_FORMAT', 'EMPTY_FILE']);

/**
 * A local file is read more than once (detected, inspected, stored, or hashed and split): it must
 * be the same file at the end as at the start, or what was inspected is not what was stored.
 */
async function unchanged(source: string, before: string | null): Promise<void> {
  if (before === null) return;
  const after = await fileInfo(source).catch(() => null);
  if (after?.version !== before) {
    throw new InputError('FILE_CHANGED', after ? 'the file changed while it was being read (still being written, or replaced?); enqueue it again once it is complete' : 'the file went away while it was being read', { place: { file: source } });
  }
}

/** `object` is the source when it is in S3 (null: `source` is a local file). */
async function prepare(source: string, object: S3Input | null, blobs: BlobStore, options: PrepareOptions): Promise<PreparedInput> {
  const local = object ? null : await fileInfo(source);
  try {
    return await prepareKnown(source, object, blobs, options, local);
  } catch (err) {
    // A document being written fails its checks (a truncated PDF, a JSON line cut short): that it
    // changed is the cause to report. Not for what is no document anyway (a log growing in the
    // folder being enqueued is skipped, not FILE_CHANGED).
    if (local && err instanceof InputError && !NOT_DOCUMENTS.has(err.code) && err.code !== 'FILE_CHANGED') await unchanged(source, local.version);
    throw err;
  }
}

async function prepareKnown(source: string, object: S3Input | null, blobs: BlobStore, options: PrepareOptions, local: { size: number; version: string } | null): Promise<PreparedInput> {
  const size = object ? object.size : local!.size;
  const version = local?.version ?? null;
  if (size === 0) throw new InputError('EMPTY_FILE', 'the file is empty (0 bytes)', { place: { file: source } });

  const kind = object ? await object.detect() : await detectFile(source);
  const baseName = baseNameOf(source);
  // A name that says PDF over bytes that say otherwise is refused, not guessed at.
  if (extname(source).toLowerCase() === '.pdf' && kind.kind !== 'pdf' && kind.kind !== 'empty') {
    const what = kind.kind === 'unknown' ? kind.reason : kind.kind === 'image' ? `a ${kind.format.toUpperCase()} image` : `a ${kind.kind} file`;
    throw new InputError('NOT_PDF', `named .pdf but its bytes are not a PDF (${what})`, { place: { file: source } });
  }
  switch (kind.kind) {
    case 'empty':
      throw new InputError('EMPTY_FILE', 'the file holds nothing but whitespace', { place: { file: source } });
    case 'unknown':
      if (extname(source).toLowerCase() === '.pdf') {
        throw new InputError('NOT_PDF', `named .pdf but its bytes are not a PDF (${kind.reason})`, { place: { file: source } });
      }
      throw new InputError('UNSUPPORTED_FORMAT', `not a PDF, an image or a known chat export (${kind.reason})`, { place: { file: source } });
    case 'pdf': {
      const maxPages = options.limits?.maxPages;
      const inspectOptions = { file: source, ...(maxPages === undefined ? {} : { maxPages }), ...(options.password ? { password: options.password } : {}), ...(options.signal ? { signal: options.signal } : {}) };
      // The inspector is another process: it must open the file this one sees (`/dev/stdin`
      // redirected from a file names its own stdin there), so it gets the file's real path.
      const path = object ? (await object.local()).path : await realpath(source);
      const info = options.inspector ? await options.inspector.inspect(path, inspectOptions) : await inspectPdf(path, inspectOptions);
      const blob = object ? await object.store() : await blobs.put(source);
      await unchanged(source, version);
      return {
        source,
        kind: 'pdf',
        sha256: blob.sha256,
        baseName,
        blob: blob.sha256,
        pages: info.pages,
        ...(info.encrypted && options.password ? { encrypted: true, password: options.password } : {}),
        stats: { pages: info.pages, encrypted: info.encrypted, title: info.title },
      };
    }
    case 'image': {
      let info;
      const path = object ? (await object.local()).path : source;
      const maxPages = options.limits?.maxPages ?? DEFAULT_MAX_PAGES;
      // A TIFF's directories are counted here first, a few reads for thousands: sharp reads each
      // one to count them (~50 µs a page: a 45 MB file of 400,000 held enqueue 20 s before it was
      // refused). One that cannot be read is left to sharp; one that is damaged is refused below
      // (after the checks that name a page's size), not failed page by page at the worker.
      const chain = kind.format === 'tiff' ? await tiffChain(path, maxPages + 1).catch(() => null) : null;
      const sized = chain?.pages.filter((p) => p.width > 0 && p.height > 0).length ?? 0;
      if (chain && sized > maxPages) throw await tooManyPages(path, source, kind.format, chain.complete && sized === chain.pages.length ? `${sized}` : `more than ${maxPages}`, maxPages);
      try {
        info = await inspectImage(path);
      } catch (err) {
        if (err instanceof InputError) throw err;
        if (/exceeds pixel limit/i.test((err as Error).message)) throw await imageTooLarge(path, source, kind.format, err);
        if (chain?.damage) throw tiffDamaged(chain.damage, source);
        throw new InputError('IMAGE_CORRUPT', `a ${kind.format.toUpperCase()} image by its bytes, but it cannot be decoded: ${decoderMessage(err)}`, { place: { file: source }, cause: err });
      }
      // Before any directory is looked at again: a worker's render of page N walks the chain from the start.
      if (info.pages > maxPages) throw await tooManyPages(path, source, kind.format, `${info.pages}`, maxPages);
      // A TIFF's pages are frames of their own sizes (its header gives the first one's): each is
      // checked, so a later page over the limit is refused here, not failed at the worker.
      if (kind.format === 'tiff' && info.pages > 1) checkFrames(chain?.pages ?? [], source);
      if (chain?.damage) throw tiffDamaged(chain.damage, source);
      const blob = object ? await object.store() : await blobs.put(source);
      await unchanged(source, version);
      return {
        source,
        kind: 'image',
        sha256: blob.sha256,
        baseName,
        blob: blob.sha256,
        pages: info.pages,
        format: kind.format,
        stats: { pages: info.pages, format: kind.format, width: info.width, height: info.height },
      };
    }
    case 'chat': {
      // From S3: a JSON or JSONL export streams through the splitter (hashed on the way); a .zip
      // needs its directory at the end, so it is split from a downloaded copy.
      const streamed = object && kind.zipEntry === undefined ? await object.stream() : null;
      const path = object && !streamed ? (await object.local()).path : source;
      let sha256 = object && !streamed ? (await object.local()).sha256 : streamed ? '' : await hashFile(source);
      const sidecar = await blobs.tempPath('sidecar');
      const split = await splitExport(path, kind, sidecar, {
        file: source,
        budgetTokens: options.chunkTokens,
        overlapTokens: options.chunkOverlapTokens,
        ...options.limits,
        ...(options.signal ? { signal: options.signal } : {}),
        ...(streamed ? { source: streamed.stream } : {}),
      });
      if (streamed) sha256 = streamed.sha256();
      await unchanged(source, version).catch(async (err: unknown) => {
        await rm(split.sidecarPath, { force: true });
        throw err;
      });
      const blob = await blobs.adopt(split.sidecarPath, split.sidecarSha256, split.sidecarBytes);
      return {
        source,
        kind: 'chat',
        sha256,
        baseName,
        blob: blob.sha256,
        chunks: split.units,
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

/**
 * IMAGE_TOO_LARGE for an image file over the pixel limit sharp decodes with (MAX_INPUT_PIXELS: a
 * decompression bomb is refused, never allocated), with its size as its header gives it (read
 * without decoding) when it can be read.
 */
async function imageTooLarge(path: string, source: string, format: string, cause: unknown): Promise<InputError> {
  const size = await import('sharp')
    .then(async ({ default: sharp }) => sharp(path, { limitInputPixels: false }).metadata())
    .then((meta) => (meta.width && meta.height ? `${meta.width} x ${meta.height} pixels (${(meta.width * meta.height).toLocaleString('en-US')})` : null))
    .catch(() => null);
  return new InputError(
    'IMAGE_TOO_LARGE',
    `a ${format.toUpperCase()} image of ${size ?? 'more pixels than the limit'}: docbatch decodes images of at most ${MAX_INPUT_PIXELS.toLocaleString('en-US')} pixels; scale it down, or split it, and enqueue it again`,
    { place: { file: source }, cause },
  );
}

/** IMAGE_TOO_MANY_PAGES: `pages` as said (a count, or "more than N" when the walk stopped there), with the file's size. */
async function tooManyPages(path: string, source: string, format: string, pages: string, maxPages: number): Promise<InputError> {
  const size = (await stat(path)).size;
  return new InputError('IMAGE_TOO_MANY_PAGES', `a ${format.toUpperCase()} image of ${pages} pages in ${size} bytes, more than INPUT_MAX_PAGES (${maxPages}): split it, or raise INPUT_MAX_PAGES`, { place: { file: source } });
}

/**
 * Every page of a multi-page TIFF from its directory (tiff-pages.ts: no pixel read), the first
 * one's checked by sharp already: one over the limit is IMAGE_TOO_LARGE, naming it. The pages
 * before a damaged directory are checked too; the damage is then refused (tiffDamaged).
 */
function checkFrames(pages: TiffPage[], source: string): void {
  const over = pages.find((p) => p.width * p.height > MAX_INPUT_PIXELS);
  if (over) {
    throw new InputError(
      'IMAGE_TOO_LARGE',
      `a TIFF image whose page ${over.page} is ${over.width} x ${over.height} pixels (${(over.width * over.height).toLocaleString('en-US')}): docbatch decodes images of at most ${MAX_INPUT_PIXELS.toLocaleString('en-US')} pixels; scale it down, or split it, and enqueue it again`,
      { place: { file: source, page: over.page } },
    );
  }
}

/**
 * IMAGE_CORRUPT for a TIFF whose directory chain is damaged (src/render/tiff-chain.ts), naming the
 * page and the byte: its pages would each fail at the worker as RENDER_FAILED.
 */
function tiffDamaged(damage: TiffDamage, source: string): InputError {
  return new InputError('IMAGE_CORRUPT', `a TIFF image damaged at page ${damage.page}: ${damage.detail}; nothing of it is queued`, {
    place: { file: source, page: damage.page, offset: damage.at },
    cause: damage,
  });
}

/**
 * libvips' message in one line: its lines (it repeats the same warnings, one a line, and may end
 * on an empty one), each said once, in order, `; `-separated.
 */
function decoderMessage(err: unknown): string {
  const lines = String((err as Error)?.message ?? err)
    .split('\n')
    .map((l) => l.trim().replace(/:$/, ''))
    .filter(Boolean);
  const kept: string[] = [];
  for (const line of lines) if (!kept.some((k) => k.includes(line))) kept.push(line);
  return kept.join('; ') || 'unreadable';
}
