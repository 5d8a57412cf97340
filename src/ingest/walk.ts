/**
 * What `docbatch enqueue` was given → the files to try. A file named explicitly is always tried
 * (and rejected with its code if it is not a document). A directory named explicitly (or a link
 * to one) is walked recursively, in a stable order (names sorted), following no symbolic link
 * inside it; its files are tried by their content later, and those that are no document are
 * skipped and listed, not errors. So are the links, the FIFOs, sockets and devices, and the
 * folders inside it that cannot be read: each is listed with why it was not looked at. A folder named that cannot be read is an error
 * (FILE_UNREADABLE).
 * `--glob` keeps only files whose path relative to the directory matches (glob.ts). An `s3://bucket/prefix/`
 * is walked like a directory: the objects under it, in key order (src/ingest/s3-input.ts).
 */
import { readdir, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { isS3Uri } from '../s3-uri.ts';
import { ownFolderOf, realPath, STORES, type OwnFolder } from '../store/locations.ts';
import { compileGlob } from './glob.ts';
import { walkS3 } from './s3-input.ts';

export interface WalkedFile {
  path: string;
  /** Named on the command line (true) or found in a directory (false). */
  explicit: boolean;
  /** Not looked at, and why (a link inside a directory, a folder that cannot be read). */
  passed?: string;
  /** A directory that cannot be read: the error to report. */
  unreadable?: string;
  /** Named, and inside BLOB_DIR or CACHE_DIR (src/store/locations.ts): the error to report (INPUT_OWN_FOLDER). */
  own?: string;
}

/**
 * `own`: docbatch's folders (BLOB_DIR, OUT_DIR, CACHE_DIR: src/store/locations.ts). A folder
 * walked skips them (listed once each, with why); an input named inside BLOB_DIR or CACHE_DIR is
 * refused (`own`).
 */
export async function* walkInputs(inputs: string[], options: { glob?: string; signal?: AbortSignal; s3?: () => S3Client; own?: OwnFolder[] } = {}): AsyncGenerator<WalkedFile> {
  const pattern = options.glob ? compileGlob(options.glob) : null;
  const own = options.own ?? [];
  for (const input of inputs) {
    if (isS3Uri(input) && options.s3) {
      const store = ownFolderOf(input, own, STORES);
      if (store) {
        yield { path: input, explicit: true, own: refusal(store) };
        continue;
      }
      yield* walkS3(input, options.s3(), pattern, options.signal, own);
      continue;
    }
    let info;
    try {
      // A link named on the command line is followed: `enqueue ~/inbox` where inbox is a link.
      info = await stat(input);
    } catch {
      yield { path: input, explicit: true }; // rejected later with FILE_UNREADABLE
      continue;
    }
    const real = realPath(input);
    const store = ownFolderOf(real, own, STORES);
    if (store) {
      yield { path: input, explicit: true, own: refusal(store) };
      continue;
    }
    if (!info.isDirectory()) {
      yield { path: input, explicit: true };
      continue;
    }
    for await (const found of walkDir(input, real, own, options.signal, true)) {
      const rel = relative(input, found.path).split(sep).join('/');
      if (pattern && !found.unreadable && !pattern.test(rel)) continue;
      yield found;
    }
  }
}

function refusal(store: OwnFolder): string {
  return `this is inside ${store.why.replace(/; not walked$/, '')}: enqueue the original files instead`;
}

/** `real`: the real path of `dir` (folders inside are not links, so theirs is `real/name`). */
async function* walkDir(dir: string, real: string, own: OwnFolder[], signal: AbortSignal | undefined, top: boolean): AsyncGenerator<WalkedFile> {
  signal?.throwIfAborted();
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true, encoding: 'buffer' });
  } catch (err) {
    const why = `cannot read the folder: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
    // Named: an error. Found inside (lost+found on a mounted disk): listed with why, not an error.
    yield top ? { path: dir, explicit: true, unreadable: why } : { path: dir, explicit: false, passed: why };
    return;
  }
  entries.sort((a, b) => Buffer.compare(a.name, b.name));
  for (const entry of entries) {
    const name = entry.name.toString('utf8');
    const path = join(dir, name);
    // A name that is not UTF-8 cannot be opened through a string path: say so, not "no such file".
    if (!Buffer.from(name, 'utf8').equals(entry.name)) {
      yield { path, explicit: false, passed: 'the file name is not valid UTF-8, so it cannot be opened by name here: rename it (e.g. convmv -f latin1 -t utf8)' };
      continue;
    }
    if (entry.isDirectory()) {
      const folder = own.find((f) => f.canonical === join(real, name));
      if (folder) yield { path, explicit: false, passed: folder.why };
      else yield* walkDir(path, join(real, name), own, signal, false);
    }
    else if (entry.isFile()) yield { path, explicit: false };
    else if (entry.isSymbolicLink()) yield { path, explicit: false, passed: 'a symbolic link: links inside a folder are not followed (name the file or folder it points to)' };
    // Listed, not dropped without a word; never opened (reading a FIFO waits for a writer).
    else yield { path, explicit: false, passed: `not a regular file (${specialKind(entry)}): not read` };
  }
}

function specialKind(entry: { isFIFO(): boolean; isSocket(): boolean; isBlockDevice(): boolean; isCharacterDevice(): boolean }): string {
  if (entry.isFIFO()) return 'a FIFO';
  if (entry.isSocket()) return 'a socket';
  if (entry.isBlockDevice() || entry.isCharacterDevice()) return 'a device';
  return 'of an unknown type';
}
