/**
 * Regenerates the tables that docs/configuration.md and docs/errors.md carry from their single
 * sources (SETTINGS in src/config.ts, ERROR_CODES in src/errors.ts). test/docs.test.ts fails when
 * they are out of date.
 *
 *   node_modules/.bin/node scripts/gen-docs.ts
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { settingsTable } from '../src/config.ts';
import { ERROR_CODES, type ErrorAction } from '../src/errors.ts';

const ROOT = join(import.meta.dirname, '..');

const ACTION_TEXT: Record<ErrorAction, string> = {
  reject: 'file rejected at enqueue, exit 2, nothing enqueued for it',
  fail: 'unit fails for good; the document finishes with it listed',
  retry: 'unit retried (up to ATTEMPTS), then fails for good',
  shrink: 'window halved, engine waited for, unit resent (no attempt used)',
  wait: 'intake paused until /health answers, unit resent (no attempt used)',
  environment: 'unit returned to the queue (no attempt used); this worker stops taking work and reports unhealthy until its checks pass',
  usage: 'the command stops, exit 2',
};

export function errorsTable(): string {
  const rows = Object.entries(ERROR_CODES).map(([code, info]) => `| \`${code}\` | ${'effect' in info ? info.effect : ACTION_TEXT[info.action]} | ${info.summary} |`);
  return ['| code | what happens | meaning |', '|---|---|---|', ...rows].join('\n');
}

const BEGIN = '<!-- generated: do not edit by hand (scripts/gen-docs.ts) -->';
const END = '<!-- end generated -->';

export function replaceGenerated(text: string, table: string): string {
  const start = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  if (start < 0 || end < 0) throw new Error('generated markers missing');
  return `${text.slice(0, start + BEGIN.length)}\n${table}\n${text.slice(end)}`;
}

export const GENERATED = [
  { file: 'docs/configuration.md', table: settingsTable },
  { file: 'docs/errors.md', table: errorsTable },
];

if (import.meta.main) {
  for (const { file, table } of GENERATED) {
    const path = join(ROOT, file);
    writeFileSync(path, replaceGenerated(readFileSync(path, 'utf8'), table()));
    process.stdout.write(`updated ${file}\n`);
  }
}
