/**
 * A file-system error met while something was being written into a blob store's folder (BLOB_DIR,
 * or CACHE_DIR's temporaries for a store on s3://) as BLOB_STORE_UNWRITABLE: the folder named,
 * the errno, and what to do. The store's, not the input's: an input that happened to be read when
 * the store's write failed is not to blame (it was rejected as FILE_UNREADABLE, every input the
 * same way, and a full store stopped the command as "unexpected error: ENOSPC").
 *
 * Whose is an error: one naming a path inside the folder (but for the process's limits: no file
 * descriptors or memory left is no folder's); one naming no path from a write to a
 * file (Node names none for a write or an fsync on an open file: while an input is prepared, the
 * only files written are the store's; an input's own read names none either, and stays the
 * input's; a socket's write, Redis's, answers with codes of its own: EPIPE, ECONNRESET).
 */
import { DocbatchError } from '../errors.ts';
import { within } from './locations.ts';

/** Syscalls that write to a file already open: Node gives their errors no path. */
const WRITE_SYSCALLS = new Set(['write', 'writev', 'fsync', 'fdatasync', 'ftruncate']);
/**
 * What a file's write answers (a socket's write answers EPIPE, ECONNRESET: Redis's, not the
 * store's, and they name no path either).
 */
const FILE_WRITE_CODES = new Set(['ENOSPC', 'EDQUOT', 'EFBIG', 'EROFS', 'EIO', 'EACCES', 'EPERM']);
/** A close says these of the writes before it (NFS); other close errors may be an input's. */
const CLOSE_WRITE_CODES = new Set(['ENOSPC', 'EDQUOT']);
/**
 * The process's or the machine's limits, whatever path they name (no file descriptors left, no
 * memory): not the folder's, and no other BLOB_DIR would help.
 */
const NOT_THE_FOLDER = new Set(['EMFILE', 'ENFILE', 'ENOMEM']);

interface SystemError extends Error {
  code: string;
  syscall: string;
  path?: string;
  dest?: string;
}

function isSystemError(err: unknown): err is SystemError {
  return err instanceof Error && typeof (err as SystemError).code === 'string' && /^E[A-Z0-9]+$/.test((err as SystemError).code) && typeof (err as SystemError).syscall === 'string';
}

/** What to do, by errno. */
function advice(code: string, setting: string, dir: string): string {
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
    case 'EFBIG':
      return `the filesystem of ${dir} is full (or the user's quota there is spent): make room there (docbatch gc removes blobs no document needs any more) or set ${setting} to a folder with room`;
    case 'EACCES':
    case 'EPERM': {
      const uid = process.getuid?.();
      return `no permission to write there${uid === undefined ? '' : ` for this user (uid ${uid})`}: give it write permission on ${dir} (chown or chmod), or set ${setting} to a folder it may write`;
    }
    case 'EROFS':
      return `${dir} is on a read-only filesystem: mount it read-write, or set ${setting} to a folder that is`;
    default:
      return `check ${dir} (mounted, writable, with room), or set ${setting} to another folder`;
  }
}

/**
 * `err` as BLOB_STORE_UNWRITABLE when it is a write into `dir` (BLOB_DIR, or the local temporaries
 * of a store on s3://) that failed; null when it is not the store's. `setting`: what names `dir`.
 */
export function storeWriteProblem(err: unknown, dir: string, setting: string, store: string): DocbatchError | null {
  if (err instanceof DocbatchError) return err.code === 'BLOB_STORE_UNWRITABLE' ? err : null;
  if (!isSystemError(err) || NOT_THE_FOLDER.has(err.code)) return null;
  const paths = [err.path, err.dest].filter((p): p is string => typeof p === 'string');
  const ours = paths.length > 0 ? paths.some((p) => within(p, dir)) : (WRITE_SYSCALLS.has(err.syscall) && FILE_WRITE_CODES.has(err.code)) || (err.syscall === 'close' && CLOSE_WRITE_CODES.has(err.code));
  if (!ours) return null;
  const where = setting === 'BLOB_DIR' ? `BLOB_DIR ${dir}` : `${store} (its temporaries in ${setting} ${dir})`;
  return new DocbatchError('BLOB_STORE_UNWRITABLE', `cannot write into the blob store ${where}: ${err.message}: ${advice(err.code, setting, dir)}`, { cause: err });
}
