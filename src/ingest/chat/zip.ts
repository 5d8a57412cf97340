/**
 * Reading `conversations.json` straight out of an export .zip: the entry is streamed through
 * yauzl (inflated on the fly), never unzipped to disk nor buffered whole.
 */
import type { Readable } from 'node:stream';
import yauzl from 'yauzl';
import { InputError } from '../../errors.ts';

/** `conversations.json` at the root of the archive or one folder down. */
const ENTRY = /^(?:[^/]+\/)?conversations\.json$/;

function corrupt(file: string, err: unknown): InputError {
  if (err instanceof InputError) return err;
  const reason = err instanceof Error ? err.message : String(err);
  return new InputError('ZIP_CORRUPT', `the .zip archive is damaged: ${reason}`, { cause: err, place: { file } });
}

async function openZip(path: string, file: string): Promise<yauzl.ZipFile> {
  try {
    return await yauzl.openPromise(path, { lazyEntries: true, autoClose: false, strictFileNames: false });
  } catch (err) {
    throw corrupt(file, err);
  }
}

async function findEntry(zip: yauzl.ZipFile, file: string): Promise<yauzl.Entry | undefined> {
  let nested: yauzl.Entry | undefined;
  try {
    for await (const entry of zip.eachEntry()) {
      if (entry.fileName.startsWith('__MACOSX/') || !ENTRY.test(entry.fileName)) continue;
      if (!entry.fileName.includes('/')) return entry; // the root one wins
      nested ??= entry;
    }
  } catch (err) {
    throw corrupt(file, err);
  }
  return nested;
}

/** The name of the conversations entry; throws ZIP_NO_CONVERSATIONS or ZIP_CORRUPT. */
export async function findConversationsEntry(path: string, file: string): Promise<string> {
  const zip = await openZip(path, file);
  try {
    const entry = await findEntry(zip, file);
    if (!entry) throw noConversations(file);
    return entry.fileName;
  } finally {
    zip.close();
  }
}

function noConversations(file: string): InputError {
  return new InputError('ZIP_NO_CONVERSATIONS', 'the .zip has no conversations.json (at its root or one folder down)', {
    place: { file },
  });
}

export interface OpenEntry {
  stream: Readable;
  /** Releases the archive. Idempotent. */
  close(): void;
}

/** A stream of the named entry's uncompressed bytes. */
export async function openZipEntry(path: string, entryName: string, file: string): Promise<OpenEntry> {
  const zip = await openZip(path, file);
  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    zip.close();
  };
  try {
    let found: yauzl.Entry | undefined;
    for await (const entry of zip.eachEntry()) {
      if (entry.fileName === entryName) {
        found = entry;
        break;
      }
    }
    if (!found) throw noConversations(file);
    if (found.isEncrypted()) throw new InputError('ZIP_CORRUPT', `${entryName} is encrypted`, { place: { file } });
    const stream = await zip.openReadStreamPromise(found);
    return { stream, close };
  } catch (err) {
    close();
    throw corrupt(file, err);
  }
}

export { corrupt as zipCorrupt };
