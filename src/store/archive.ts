/**
 * The results of a written document, kept outside Redis: once its outputs are written, a
 * document's results move to a named object in the blob store (`results/<docId>/<gen>.jsonl`, one
 * `[unit, result]` line each) and leave Redis. They come back only for `docbatch retry`, a
 * Bull Board retry of a failed unit, or a rewrite of outputs deleted since: successful units are
 * never sent again. The archive goes when the document's record expires (docbatch gc).
 *
 * An archive is written and read line by line, never as one string or Buffer: a document of some
 * 300,000 chat chunks has results past V8's longest string (~512 MiB). Written whole or not at
 * all (the blob store's putNamed); read as one version of it (openNamed), again from the start
 * when it was replaced while being read.
 *
 * A restore is whole or nothing, and happens only while the results are not in Redis: restored
 * results expire within the hour unless a reopen keeps them (docs.ts restoreResults).
 */
import { DocbatchError } from '../errors.ts';
import { splitLines } from '../jsonl.ts';
import { NamedObjectChanged, type BlobStore } from './blobs.ts';
import type { DocStore } from './docs.ts';
import type { UnitResult } from './types.ts';

/** Lines are handed to the store in pieces of about this many characters. */
const PIECE_CHARS = 1 << 20;

/** Reads of an archive replaced while they ran are started again this many times. */
const READ_ATTEMPTS = 5;

export function archiveKey(docId: string, gen: number): string {
  return `results/${docId}/${gen}.jsonl`;
}

/** Where a generation's archive is, for people: the blob store's location and the named object's key. */
export function archiveLocation(blobs: BlobStore, docId: string, gen: number): string {
  return `${blobs.location.replace(/\/+$/, '')}/named/${archiveKey(docId, gen)}`;
}

/**
 * One archive line as `[unit, result]` (the result parsed), or ARCHIVE_CORRUPT naming the archive
 * and the line: not JSON, or not a unit number and a result object.
 */
export function parseArchiveLine(line: string, file: string, lineNo: number): [number, Record<string, unknown>] {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    throw archiveCorrupt(`not JSON (${(err as Error).message})`, file, lineNo, err);
  }
  if (!Array.isArray(value) || value.length !== 2 || !Number.isSafeInteger(value[0]) || (value[0] as number) < 0) {
    throw archiveCorrupt('not a [unit, result] pair', file, lineNo);
  }
  const result: unknown = value[1];
  if (typeof result !== 'object' || result === null || Array.isArray(result) || typeof (result as { ok?: unknown }).ok !== 'boolean') {
    throw archiveCorrupt(`the result of unit ${value[0] as number} is not a result object`, file, lineNo);
  }
  return [value[0] as number, result as Record<string, unknown>];
}

function archiveCorrupt(why: string, file: string, line: number, cause?: unknown): DocbatchError {
  return new DocbatchError('ARCHIVE_CORRUPT', `the results archive is damaged: ${why}; the written results cannot be read back (enqueue the file again with --force to redo it)`, {
    place: { file, line },
    ...(cause !== undefined ? { cause } : {}),
  });
}

/** Copies a generation's results from Redis into the archive (whole or not at all); returns how many. */
export async function archiveResults(store: DocStore, blobs: BlobStore, docId: string, gen: number, units: number): Promise<number> {
  let count = 0;
  async function* pieces(): AsyncGenerator<string> {
    count = 0;
    let lines: string[] = [];
    let chars = 0;
    for await (const [unit, result] of store.results(docId, gen, units)) {
      if (!result) continue;
      const line = JSON.stringify([unit, result]);
      lines.push(line);
      chars += line.length + 1;
      count++;
      if (chars >= PIECE_CHARS) {
        yield `${lines.join('\n')}\n`;
        lines = [];
        chars = 0;
      }
    }
    if (lines.length > 0) yield `${lines.join('\n')}\n`;
  }
  try {
    await blobs.putNamed(archiveKey(docId, gen), pieces());
  } catch (err) {
    // BLOB_DIR full or read-only says so (not a bare ENOSPC the writer's OUT_DIR would be suspected of).
    throw blobs.writeProblem(err) ?? err;
  }
  return count;
}

/**
 * `read` on the lines of a generation's archive (without their `\n`), streamed; null when there
 * is no archive. Started again from the first line when the archive was replaced while it was
 * read (NamedObjectChanged); the archive is closed when `read` returns, whether it read to the end
 * or not.
 */
export async function readArchive<T>(blobs: BlobStore, docId: string, gen: number, read: (lines: AsyncIterable<string>) => Promise<T>): Promise<T | null> {
  for (let attempt = 1; ; attempt++) {
    const body = await blobs.openNamed(archiveKey(docId, gen));
    if (!body) return null;
    try {
      return await read(splitLines(body as AsyncIterable<Buffer>));
    } catch (err) {
      if (!(err instanceof NamedObjectChanged)) throw err;
      if (attempt >= READ_ATTEMPTS) throw archiveChanged(`it was replaced while it was being read, ${READ_ATTEMPTS} times in a row`, archiveLocation(blobs, docId, gen), err);
    } finally {
      body.destroy();
    }
  }
}

/** ARCHIVE_CHANGED: the results of a written document kept changing under this reader (another write or retry of it runs). */
function archiveChanged(why: string, file: string, cause?: unknown): DocbatchError {
  return new DocbatchError('ARCHIVE_CHANGED', `the results archive of a written document kept changing: ${why} (another write or retry of the document is running?); nothing was changed: try again`, {
    place: { file },
    ...(cause !== undefined ? { cause } : {}),
  });
}

/**
 * The archive's lines as [unit, result JSON] (the result as Redis holds it); a damaged line is
 * ARCHIVE_CORRUPT, and so is an archive with fewer results than the document's `units` (it was
 * written with one for every unit: one cut short lost its end).
 */
async function* entries(lines: AsyncIterable<string>, file: string, units: number): AsyncGenerator<[number, string]> {
  let lineNo = 0;
  const seen = new Set<number>();
  for await (const line of lines) {
    lineNo++;
    if (!line) continue;
    const [unit, result] = parseArchiveLine(line, file, lineNo);
    seen.add(unit);
    yield [unit, JSON.stringify(result)];
  }
  if (seen.size < units) throw archiveCorrupt(`it holds the results of ${seen.size} of the document's ${units} units (cut short?)`, file, lineNo + 1);
}

/**
 * Puts an archived generation's results back into Redis (when they are not there already), whole
 * or not at all, and never an archive older than a write that ended while it was read (two
 * retries of one written document at once: the second finds the first's results, or reads the
 * archive again). Returns false when there is no archive to restore from.
 */
export async function restoreArchived(store: DocStore, blobs: BlobStore, docId: string, gen: number): Promise<boolean> {
  for (let attempt = 0; attempt < 5; attempt++) {
    // Read before the archive: a reopen after this makes the archive read suspect.
    const state = await store.restoreState(docId, gen);
    if (!state || state.present) return true; // a stale generation is the reopen's to report
    const units = Number((await store.redis.hget(store.docKey(docId), 'units')) ?? 0) || 0;
    const outcome = await readArchive(blobs, docId, gen, (lines) => store.restoreResults(docId, gen, entries(lines, archiveLocation(blobs, docId, gen), units), state.reopens));
    if (outcome === null) return false;
    if (outcome !== 'changed') return true;
  }
  throw archiveChanged(`units of ${docId} were reopened each time it was read, 5 times`, archiveLocation(blobs, docId, gen));
}

/** One unit's archived result (null when there is no archive or no result for it); reads no further than its line. */
export async function archivedResult(blobs: BlobStore, docId: string, gen: number, unit: number): Promise<UnitResult | null> {
  const prefix = `[${unit},`;
  const file = archiveLocation(blobs, docId, gen);
  return readArchive(blobs, docId, gen, async (lines) => {
    let lineNo = 0;
    for await (const line of lines) {
      lineNo++;
      if (line.startsWith(prefix)) return parseArchiveLine(line, file, lineNo)[1] as unknown as UnitResult;
    }
    return null;
  });
}
