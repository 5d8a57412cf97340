/** Argument checks shared by `docbatch eval` and `docbatch compare` (numeric flags: number-options.ts). */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { DocbatchError } from '../errors.ts';

/** The absolute path of `path`, which must be an existing folder (EVAL_NOT_A_DIR otherwise). */
export function existingDir(path: string, what: string): string {
  const abs = resolve(path);
  let isDir = false;
  try {
    isDir = statSync(abs).isDirectory();
  } catch {
    throw new DocbatchError('EVAL_NOT_A_DIR', `the ${what} does not exist`, { place: { file: path } });
  }
  if (!isDir) throw new DocbatchError('EVAL_NOT_A_DIR', `the ${what} is not a folder`, { place: { file: path } });
  return abs;
}

/** One line per problem on stderr, the way docbatch prints errors. */
export function printProblems(problems: Array<DocbatchError | string>): void {
  for (const p of problems) process.stderr.write(`docbatch: ${typeof p === 'string' ? p : p.describe()}\n`);
}
