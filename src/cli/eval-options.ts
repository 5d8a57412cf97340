/** Argument checks shared by `docbatch eval` and `docbatch compare`. */
import { InvalidArgumentError } from 'commander';
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

/** A commander parser for a number ≥ 0. */
export function nonNegative(flag: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${flag} must be a number ≥ 0, not ${JSON.stringify(value)}.`);
    return n;
  };
}

/** A commander parser for a number between 0 and 1. */
export function fraction(flag: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) throw new InvalidArgumentError(`${flag} must be a number from 0 to 1, not ${JSON.stringify(value)}.`);
    return n;
  };
}

/** One line per problem on stderr, the way docbatch prints errors. */
export function printProblems(problems: Array<DocbatchError | string>): void {
  for (const p of problems) process.stderr.write(`docbatch: ${typeof p === 'string' ? p : p.describe()}\n`);
}
