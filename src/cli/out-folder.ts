/**
 * `enqueue --out FOLDER`: a folder inside OUT_DIR (relative to it, or an absolute path inside
 * it; with OUT_DIR on `s3://bucket/prefix`, a relative folder or an s3:// URI under the prefix).
 * Anything that leads outside OUT_DIR is refused before anything is enqueued: outputs never
 * land outside the writer's OUT_DIR, whatever a producer asks. So is a folder name longer than a
 * filesystem takes (255 bytes), which could never be written.
 */
import { isAbsolute, posix, relative, resolve, sep } from 'node:path';
import { ConfigError } from '../errors.ts';
import { isS3Uri } from '../s3-uri.ts';

/** Longest file or folder name (in UTF-8 bytes) that filesystems take (NAME_MAX). */
const MAX_NAME_BYTES = 255;

/** The folder as a path relative to OUT_DIR ('' for OUT_DIR itself), with `/` separators. */
export function outFolder(value: string, outDir: string): string {
  if (/[\u0000-\u001f\u007f]/.test(value)) throw new ConfigError(`--out ${JSON.stringify(value)} has control characters`);
  if (isS3Uri(outDir)) return s3Folder(value, outDir);
  const root = resolve(outDir);
  const target = isAbsolute(value) ? resolve(value) : resolve(root, value);
  const rel = relative(root, target);
  if (rel.startsWith('..') || isAbsolute(rel)) {
    throw new ConfigError(`--out ${JSON.stringify(value)} is outside OUT_DIR ${root}: outputs stay inside OUT_DIR; give a folder inside it (relative to it), or set OUT_DIR`);
  }
  // Refused now, not once every page has been answered and the write fails (ENAMETOOLONG).
  const long = rel.split(sep).find((part) => Buffer.byteLength(part) > MAX_NAME_BYTES);
  if (long !== undefined) throw new ConfigError(`--out ${JSON.stringify(value)}: the folder name ${JSON.stringify(long.slice(0, 40))}... is ${Buffer.byteLength(long)} bytes long; filesystems take at most ${MAX_NAME_BYTES}`);
  return rel.split(sep).join('/');
}

/** Under an s3:// OUT_DIR: keys are plain `/` paths, so `..` and absolute paths are refused, not resolved. */
function s3Folder(value: string, outDir: string): string {
  const root = outDir.replace(/\/+$/, '');
  let rel = value;
  if (isS3Uri(value)) {
    if (value !== root && !value.startsWith(`${root}/`)) throw new ConfigError(`--out ${JSON.stringify(value)} is outside OUT_DIR ${root}: outputs stay inside OUT_DIR; give a folder inside it (relative to it), or set OUT_DIR`);
    rel = value.slice(root.length);
  } else if (value.startsWith('/') || value.includes('\\')) {
    throw new ConfigError(`--out ${JSON.stringify(value)}: with OUT_DIR ${root} on object storage, give a folder relative to it`);
  }
  const parts = rel.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new ConfigError(`--out ${JSON.stringify(value)} is outside OUT_DIR ${root}: ".." is not allowed under an s3:// OUT_DIR`);
  return posix.join(...(parts.length > 0 ? parts : ['.'])).replace(/^\.$/, '');
}
