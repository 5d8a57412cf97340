/**
 * Where renderer and inspection children keep Node's compile cache (V8's code for pdf.js,
 * PDFium's glue and docbatch's modules): a respawned renderer is ready in about half the time.
 *
 * The same folder as their parent, by the same rule as bin/docbatch: NODE_COMPILE_CACHE, else
 * $XDG_CACHE_HOME/docbatch/node-compile-cache, else ~/.cache/docbatch/node-compile-cache (HOME
 * from the environment), else none; none with NODE_DISABLE_COMPILE_CACHE. Never Node's default,
 * `os.tmpdir()/node-compile-cache`: on a shared machine another user can create that folder
 * first and plant cache entries, which V8 would load as code. The child gets the folder as its
 * one environment variable, NODE_COMPILE_CACHE, so that Node reads it before child.ts itself.
 */
import { isAbsolute, join, resolve } from 'node:path';

export function childCompileCacheDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.NODE_DISABLE_COMPILE_CACHE) return undefined;
  if (env.NODE_COMPILE_CACHE) return resolve(env.NODE_COMPILE_CACHE);
  const xdg = env.XDG_CACHE_HOME;
  if (xdg && isAbsolute(xdg)) return join(xdg, 'docbatch', 'node-compile-cache');
  const home = env.HOME;
  if (home && isAbsolute(home) && home !== '/') return join(home, '.cache', 'docbatch', 'node-compile-cache');
  return undefined;
}
