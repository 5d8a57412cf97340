/**
 * `enqueue --out FOLDER`: a folder inside OUT_DIR (relative to it, or an absolute path inside
 * it). Anything that leads outside OUT_DIR is refused before anything is enqueued: outputs never
 * land outside the writer's OUT_DIR, whatever a producer asks.
 */
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { ConfigError } from '../errors.ts';

/** The folder as a path relative to OUT_DIR ('' for OUT_DIR itself), with `/` separators. */
export function outFolder(value: string, outDir: string): string {
  const root = resolve(outDir);
  const target = isAbsolute(value) ? resolve(value) : resolve(root, value);
  const rel = relative(root, target);
  if (rel.startsWith('..') || isAbsolute(rel)) {
    throw new ConfigError(`--out ${JSON.stringify(value)} is outside OUT_DIR ${root}: outputs stay inside OUT_DIR; give a folder inside it (relative to it), or set OUT_DIR`);
  }
  if (/[\u0000-\u001f\u007f]/.test(rel)) throw new ConfigError(`--out ${JSON.stringify(value)} has control characters`);
  return rel.split(sep).join('/');
}
