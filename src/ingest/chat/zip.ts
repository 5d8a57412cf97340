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
 */
import { pipeline, Transform, type Readable } from 'node:stream';
import yauzl from 'yauzl';
import { InputError } from '../../errors.ts';
import { openZipFile } from './zip-file.ts';

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
 * A stream of the named entry's uncompressed bytes. Throws ZIP_ENCRYPTED when the entry is
 * password-protected; with `limits`, ZIP_TOO_LARGE when the entry's declared size breaks them; the stream fails with ZIP_TOO_LARGE once more bytes inflate
 * than were declared, and with ZIP_CORRUPT when fewer do.
 */
export async function openZipEntry(path: string, entryName: string, file: string, limits?: ZipLimits): Promise<OpenEntry> {
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
    if (found.isEncrypted()) throw encrypted(file, entryName);
    if (limits) checkDeclaredSize(found, limits, file);
    const raw = await zip.openReadStreamPromise(found);
    return { stream: counted(raw, found, file), close };
  } catch (err) {
    close();
    throw corrupt(file, err);
  }
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
