/**
 * Where renderer and inspection children keep Node's compile cache (V8's code for pdf.js,
 * PDFium's glue and docbatch's modules): a respawned renderer is ready in about half the time.
 *
 * The parent's own cache folder when it has one (bin/docbatch sets NODE_COMPILE_CACHE), else
 * the same per-user folder bin/docbatch uses. Never Node's default, `os.tmpdir()/node-compile-cache`:
 * on a shared machine another user can create that folder first and plant cache entries, which
 * V8 would load as code. The child gets the folder in its argv (it has no environment).
 */
import { getCompileCacheDir } from 'node:module';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';

export function childCompileCacheDir(): string | undefined {
  const own = getCompileCacheDir();
  if (own) return own;
  const xdg = process.env.XDG_CACHE_HOME;
  let home: string;
  try {
    home = homedir();
  } catch {
    return undefined;
  }
  const base = xdg && isAbsolute(xdg) ? xdg : home && isAbsolute(home) ? join(home, '.cache') : undefined;
  return base === undefined ? undefined : join(base, 'docbatch', 'node-compile-cache');
}
