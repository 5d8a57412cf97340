/** The generated tables in docs/ match their sources (run scripts/gen-docs.ts after a change). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { GENERATED, replaceGenerated } from '../scripts/gen-docs.ts';

it.each(GENERATED)('$file is up to date with its source', ({ file, table }) => {
  const text = readFileSync(join(import.meta.dirname, '..', file), 'utf8');
  expect(text, `run: node_modules/.bin/node scripts/gen-docs.ts`).toBe(replaceGenerated(text, table()));
  expect(text).toContain(table().split('\n')[2]!);
});
