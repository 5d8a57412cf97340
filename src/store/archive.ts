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
  await blobs.putNamed(archiveKey(docId, gen), pieces());
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
      if (!(err instanceof NamedObjectChanged) || attempt >= READ_ATTEMPTS) throw err;
    } finally {
      body.destroy();
    }
  }
}

/** The archive's lines as [unit, result JSON] (the result as Redis holds it). */
async function* entries(lines: AsyncIterable<string>): AsyncGenerator<[number, string]> {
  for await (const line of lines) {
    if (!line) continue;
    const [unit, result] = JSON.parse(line) as [number, unknown];
    yield [unit, JSON.stringify(result)];
  }
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
    const outcome = await readArchive(blobs, docId, gen, (lines) => store.restoreResults(docId, gen, entries(lines), state.reopens));
    if (outcome === null) return false;
    if (outcome !== 'changed') return true;
  }
  throw new Error(`the results of ${docId} kept changing while they were being restored; retry again`);
}

/** One unit's archived result (null when there is no archive or no result for it); reads no further than its line. */
export async function archivedResult(blobs: BlobStore, docId: string, gen: number, unit: number): Promise<UnitResult | null> {
  const prefix = `[${unit},`;
  return readArchive(blobs, docId, gen, async (lines) => {
    for await (const line of lines) {
      if (line.startsWith(prefix)) return (JSON.parse(line) as [number, UnitResult])[1];
    }
    return null;
  });
}
