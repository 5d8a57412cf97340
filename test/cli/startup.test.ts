/**
 * What a command loads before it runs: `enqueue` (the verb users and pipelines start most, once
 * per batch) must not import packages it needs only for some inputs or tasks: the AWS SDK
 * (s3:// only), sharp (image files only), Ajv (tasks with a JSON Schema only), the YAML parser
 * (YAML task files only). Each costs 20-130 ms of start-up. Checked by loading the verb's module
 * in a fresh Node with a resolve hook that records every package asked for.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { tempDir } from '../render/fixtures.ts';

const tmp = tempDir('startup');
afterAll(() => tmp.cleanup());

/** Bare specifiers imported by the project's own modules while `module` loads. */
function packagesLoadedBy(module: string): string[] {
  const script = join(tmp.dir, 'trace.mjs');
  writeFileSync(
    script,
    `import { registerHooks } from 'node:module';
const seen = new Set();
registerHooks({
  resolve(specifier, context, next) {
    const own = !(context.parentURL ?? '').includes('/node_modules/');
    if (own && !/^(\\.|\\/|node:|file:)/.test(specifier)) seen.add(specifier.split('/').slice(0, specifier.startsWith('@') ? 2 : 1).join('/'));
    return next(specifier, context);
  },
});
await import(${JSON.stringify(module)});
process.stdout.write(JSON.stringify([...seen].sort()));
`,
  );
  const run = spawnSync(process.execPath, [script], { encoding: 'utf8' });
  expect(run.status, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as string[];
}

it('enqueue loads no package it needs only for some inputs or tasks', () => {
  const loaded = packagesLoadedBy(join(import.meta.dirname, '../../src/cli/enqueue.ts'));
  // What it does need, so the hook is seen working.
  expect(loaded).toEqual(expect.arrayContaining(['bullmq', 'ioredis', 'commander']));
  for (const lazy of ['@aws-sdk', 'sharp', 'ajv', 'ajv-formats', 'yaml', '@hyzyla/pdfium', 'pdfjs-dist']) expect(loaded).not.toContain(lazy);
});
