/**
 * Reading `conversations.json` straight out of an export .zip: the entry is streamed through
 * yauzl (inflated on the fly), never unzipped to disk nor buffered whole.
 *
 * Decompression bombs: with `limits`, an entry whose declared size (zip central directory) is
 * above `maxBytes`, or more than `maxRatio` times its compressed size, is refused before one
 * byte is inflated. Whatever the limits, the bytes actually inflated are counted and may not
 * pass the declared size: a header that lies is caught after at most that many bytes
 * (ZIP_TOO_LARGE), and an entry that inflates to fewer is damaged (ZIP_CORRUPT). This count is
 * ours, so yauzl's own size validation is turned off (it would report the same as a plain error).
 *
 * The central directory is walked once per file: `findConversationsEntry` gives the entry's
 * record (where its bytes are, their sizes and flags, and the archive it was read from), and
 * `openZipEntry` given that record opens the entry without walking again (an archive of 200,000
 * entries had its directory walked three times: detection twice, the split once).
 */
import { pipeline, Transform, type Readable } from 'node:stream';
import yauzl from 'yauzl';
import { InputError } from '../../errors.ts';
import { openZipFile } from './zip-reader.ts';

/** Bounds on what an entry may inflate to. */
export interface ZipLimits {
  /** Largest accepted uncompressed size ÷ compressed size. @defaultValue 100 (ZIP_MAX_RATIO) */
  maxRatio: number;
  /** Largest accepted uncompressed size, in bytes. @defaultValue 4 GiB (ZIP_MAX_BYTES) */
  maxBytes: number;
}

/** `conversations.json` at the root of the archive or one folder down. */
const ENTRY = /^(?:[^/]+\/)?conversations\.json$/;

function corrupt(file: string, err: unknown): InputError {
  if (err instanceof InputError) return err;
  const reason = err instanceof Error ? err.message : String(err);
  return new InputError('ZIP_CORRUPT', `the .zip archive is damaged: ${reason}`, { cause: err, place: { file } });
}

/**
 * An entry as the central directory describes it: what opening it needs, without the directory.
 * `archive` says which archive it was read from (its size and entry count): an archive that
 * differs is walked again (a local file replaced in between is FILE_CHANGED at the end anyway).
 */
export interface ZipEntryRecord {
  fileName: string;
  relativeOffsetOfLocalHeader: number;
  compressedSize: number;
  uncompressedSize: number;
  compressionMethod: number;
  generalPurposeBitFlag: number;
  archive: { size: number; entries: number };
}

async function openZip(path: string, file: string): Promise<yauzl.ZipFile> {
  try {
    return await openZipFile(path, { lazyEntries: true, autoClose: false, strictFileNames: false, validateEntrySizes: false });
  } catch (err) {
    throw corrupt(file, err);
  }
}

async function findEntry(zip: yauzl.ZipFile, file: string): Promise<yauzl.Entry | undefined> {
  const nested: yauzl.Entry[] = [];
  try {
    for await (const entry of zip.eachEntry()) {
      if (entry.fileName.startsWith('__MACOSX/') || !ENTRY.test(entry.fileName)) continue;
      if (!entry.fileName.includes('/')) return entry; // the root one wins
      nested.push(entry);
    }
  } catch (err) {
    throw corrupt(file, err);
  }
  // Two exports zipped together: taking one would drop the other without a word.
  if (nested.length > 1) {
    throw new InputError('ZIP_SEVERAL_EXPORTS', `the .zip holds ${nested.length} conversations.json, one folder down each (${nested.map((e) => e.fileName).join(', ')}), and none at its root: zip each export alone`, { place: { file } });
  }
  return nested[0];
}

/** The archive as its end record describes it. */
function archiveOf(zip: yauzl.ZipFile): ZipEntryRecord['archive'] {
  return { size: zip.fileSize, entries: zip.entryCount };
}

function recordOf(entry: yauzl.Entry, zip: yauzl.ZipFile): ZipEntryRecord {
  const { fileName, relativeOffsetOfLocalHeader, compressedSize, uncompressedSize, compressionMethod, generalPurposeBitFlag } = entry;
  return { fileName, relativeOffsetOfLocalHeader, compressedSize, uncompressedSize, compressionMethod, generalPurposeBitFlag, archive: archiveOf(zip) };
}

/** The conversations entry, from one walk of the directory; throws ZIP_NO_CONVERSATIONS or ZIP_CORRUPT. */
export async function findConversationsEntry(path: string, file: string): Promise<ZipEntryRecord> {
  const zip = await openZip(path, file);
  try {
    const entry = await findEntry(zip, file);
    if (!entry) throw noConversations(file);
    return recordOf(entry, zip);
  } finally {
    zip.close();
  }
}

/** A password-protected entry (ZipCrypto or WinZip AES: bit 0 of its flags): nothing to read without the password. */
function encrypted(file: string, entry: string): InputError {
  return new InputError(
    'ZIP_ENCRYPTED',
    `the .zip is encrypted (password-protected) and docbatch does not decrypt: unzip it with its password and enqueue the ${entry} inside, or zip the export again without a password`,
    { place: { file, entry } },
  );
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

/**
 * A stream of the entry's uncompressed bytes: given its record (findConversationsEntry), the
 * directory is not walked again; given its name, it is walked to find it. Throws ZIP_ENCRYPTED
 * when the entry is password-protected; with `limits`, ZIP_TOO_LARGE when the entry's declared
 * size breaks them; the stream fails with ZIP_TOO_LARGE once more bytes inflate than were
 * declared, and with ZIP_CORRUPT when fewer do.
 */
export async function openZipEntry(path: string, entry: string | ZipEntryRecord, file: string, limits?: ZipLimits): Promise<OpenEntry> {
  const zip = await openZip(path, file);
  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    zip.close();
  };
  try {
    const entryName = typeof entry === 'string' ? entry : entry.fileName;
    const found = typeof entry !== 'string' && sameArchive(entry.archive, archiveOf(zip)) ? Object.assign(new yauzl.Entry(), entry) : await entryNamed(zip, entryName);
    if (!found) throw noConversations(file);
    if (found.isEncrypted()) throw encrypted(file, entryName);
    if (limits) checkDeclaredSize(found, limits, file);
    const raw = await zip.openReadStreamPromise(found);
    return { stream: counted(raw, found, file), close };
  } catch (err) {
    close();
    throw corrupt(file, err);
  }
}

function sameArchive(a: ZipEntryRecord['archive'], b: ZipEntryRecord['archive']): boolean {
  return a.size === b.size && a.entries === b.entries;
}

async function entryNamed(zip: yauzl.ZipFile, name: string): Promise<yauzl.Entry | undefined> {
  for await (const entry of zip.eachEntry()) if (entry.fileName === name) return entry;
  return undefined;
}

function checkDeclaredSize(entry: yauzl.Entry, limits: ZipLimits, file: string): void {
  const size = entry.uncompressedSize;
  const packed = entry.compressedSize;
  if (size > limits.maxBytes) {
    throw new InputError(
      'ZIP_TOO_LARGE',
      `${entry.fileName} inflates to ${size} bytes, above ZIP_MAX_BYTES (${limits.maxBytes}); raise ZIP_MAX_BYTES if the export is genuine`,
      { place: { file } },
    );
  }
  const ratio = size / Math.max(1, packed);
  if (ratio > limits.maxRatio) {
    throw new InputError(
      'ZIP_TOO_LARGE',
      `${entry.fileName} inflates to ${size} bytes, ${Math.floor(ratio)} times its compressed size of ${packed}: ` +
        `above ZIP_MAX_RATIO (${limits.maxRatio}), the mark of a decompression bomb (real exports compress some 5 to 20 times)`,
      { place: { file } },
    );
  }
}

/** `raw` passed through a count of its bytes, held to the entry's declared size. */
function counted(raw: Readable, entry: yauzl.Entry, file: string): Readable {
  const declared = entry.uncompressedSize;
  let bytes = 0;
  const counter = new Transform({
    transform(piece: Buffer, _encoding, done) {
      bytes += piece.length;
      if (bytes <= declared) return done(null, piece);
      done(
        new InputError(
          'ZIP_TOO_LARGE',
          `${entry.fileName} inflates to more than the ${declared} bytes its zip header declares: the archive lies about its size (a decompression bomb?)`,
          { place: { file } },
        ),
      );
    },
    flush(done) {
      if (bytes === declared) return done();
      done(new InputError('ZIP_CORRUPT', `the .zip archive is damaged: ${entry.fileName} inflates to ${bytes} bytes, its header declares ${declared}`, { place: { file } }));
    },
  });
  // pipeline destroys both on an error either side, and `raw` when the reader destroys `counter`.
  pipeline(raw, counter, () => undefined);
  return counter;
}

export { corrupt as zipCorrupt };
