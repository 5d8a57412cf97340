/**
 * What an error met while one input file was being enqueued means: that file's rejection (the
 * command goes on with the others), or a problem of the machine or the stores that stops the
 * command. One place decides, for `enqueueFiles` (batch.ts).
 *
 * - An InputError is the file's, as it is.
 * - The blob store failing for this file after its retries (BLOB_STORE_UNAVAILABLE): the file's.
 * - A file-system error of the file itself (its open, stat or read failed, whatever the errno: a
 *   sysfs attribute answers EINVAL, a FUSE or network mount any code it likes) is FILE_UNREADABLE;
 *   so are the errnos listed in FS_CODES, wherever they happened (as before).
 * - Anything else unexpected (a TypeError inside a reader) is a docbatch bug met on this file:
 *   INPUT_INTERNAL, naming the file, with the original as `cause`.
 * - Stops the command, as before (null here): an interrupt (the signal aborted, ABORTED), Redis
 *   (connection lost, refusing writes: the blob pins live there), any other DocbatchError (the PDF
 *   inspector cannot start, object storage unreachable), an object-storage SDK error, and a
 *   file-system error elsewhere (no file descriptors left): every later file would meet it too.
 *   A write into the blob store's folder that failed (full, read-only, not this user's to write)
 *   is asked of the store first (BlobStore.writeProblem: BLOB_STORE_UNWRITABLE), before this: its
 *   EACCES is not the input's FILE_UNREADABLE.
 */
import { isRedisConnectionError, isRedisTransient } from '../../queues/redis-link.ts';
import { DocbatchError, InputError, rejectionOf } from '../errors.ts';

/** Errors of the file system while a file is read: the file is unreadable, the command goes on. */
const FS_CODES = new Set(['EACCES', 'EPERM', 'ENOENT', 'ENOTDIR', 'EISDIR', 'ELOOP', 'EIO', 'ENAMETOOLONG', 'ESTALE', 'ENXIO', 'EBUSY']);

/** The machine's, even on the input's own open or read: every later file would meet them too. */
const MACHINE_CODES = new Set(['EMFILE', 'ENFILE', 'ENOMEM', 'ENOSPC', 'EDQUOT', 'EROFS']);

/** Names of errors that say a wait was cut short or a client gave up, not what a file holds. */
const ENVIRONMENT_NAMES = new Set(['AbortError', 'TimeoutError', 'ReplyError', 'MaxRetriesPerRequestError']);

interface SystemError extends Error {
  code: string;
  syscall: string;
  path?: string;
}

function isSystemError(err: unknown): err is SystemError {
  return err instanceof Error && typeof (err as SystemError).code === 'string' && typeof (err as SystemError).syscall === 'string';
}

/**
 * A system error of the input file itself: one naming its path, or a read naming none (Node says
 * no path for a read; while a file is prepared, what is read is that file: the blob store writes).
 */
function ofTheFile(err: SystemError, file: string): boolean {
  return err.path === file || (err.path === undefined && err.syscall === 'read');
}

/**
 * `caught`, met while `file` was prepared, as that file's rejection; null when it must stop the
 * command (rethrow it). `signal`: the command's; once it aborted, nothing is the file's.
 */
export function fileRejection(caught: unknown, file: string, signal?: AbortSignal): InputError | null {
  if (caught instanceof InputError) return caught;
  if (signal?.aborted) return null;
  if (caught instanceof DocbatchError) return caught.code === 'BLOB_STORE_UNAVAILABLE' ? rejectionOf(caught, file) : null;
  if (isRedisConnectionError(caught) || isRedisTransient(caught)) return null;
  if (caught instanceof Error && ENVIRONMENT_NAMES.has(caught.name)) return null;
  if (typeof caught === 'object' && caught !== null && '$metadata' in caught) return null; // the S3 SDK's
  const code = (caught as { code?: unknown } | null)?.code;
  const errno = typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : undefined;
  if (errno !== undefined) {
    const theFile = isSystemError(caught) && !MACHINE_CODES.has(errno) && ofTheFile(caught, file);
    if (!FS_CODES.has(errno) && !theFile) return null;
    const why = errno === 'ENOENT' ? 'it is gone (deleted or moved while being enqueued?)' : (caught as Error).message;
    return new InputError('FILE_UNREADABLE', `cannot read the file: ${why}`, { cause: caught, place: { file } });
  }
  const what = caught instanceof Error ? `${caught.name}: ${caught.message}` : String(caught);
  return new InputError(
    'INPUT_INTERNAL',
    `docbatch failed unexpectedly while reading this file (${what}): a bug in docbatch, please report it (with the file, or one of the same shape); the other files go on`,
    { cause: caught, place: { file } },
  );
}
