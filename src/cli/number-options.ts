/** Commander parsers for numeric flags: a value out of range is a usage error (exit 2) naming the flag. */
import { InvalidArgumentError } from 'commander';

/**
 * A decimal number as people write one (`0.01`, `5`, `.5`, `1e-3`). Number() alone also takes
 * `0x10` (16), `0b1` and `0o7`, which nobody means on a command line.
 */
const DECIMAL = /^\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i;

/** A commander parser for a number ≥ 0. */
export function nonNegative(flag: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!DECIMAL.test(value) || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${flag} must be a number ≥ 0, not ${JSON.stringify(value)}.`);
    return n;
  };
}

/** A commander parser for a number > 0 (a speed-up: 0 would stop time). */
export function positiveNumber(flag: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!DECIMAL.test(value) || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${flag} must be a number > 0, not ${JSON.stringify(value)}.`);
    return n;
  };
}

/** A commander parser for a number between 0 and 1. */
export function fraction(flag: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!DECIMAL.test(value) || !Number.isFinite(n) || n < 0 || n > 1) throw new InvalidArgumentError(`${flag} must be a number from 0 to 1, not ${JSON.stringify(value)}.`);
    return n;
  };
}

/**
 * A commander parser for a whole number ≥ 1: `--limit 0` or `-1` would be Redis's "to the end"
 * (every document), and `abc` a Redis error, so they are usage errors (exit 2).
 */
export function wholeNumber(flag: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`${flag} must be a whole number from 1, not ${JSON.stringify(value)}.`);
    return n;
  };
}
