/**
 * What a command loads before it runs: `enqueue` (the verb users and pipelines start most, once
 * per batch) must not import packages it needs only for some inputs or tasks: the AWS SDK
 * (s3:// only), sharp (image files only), Ajv (tasks with a JSON Schema only), the YAML parser
 * (YAML task files only). Each costs 20-130 ms of start-up. Checked by loading the verb's module
 * in a fresh Node with a resolve hook that records every package asked for.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { deletePrefix, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.ts';
import { corpusFile, tempDir } from '../render/fixtures.ts';

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

it('enqueue of a PDF forks its inspection child before it loads its own modules, uses that one child, and closes it; a chat export forks none', async () => {
  const prefix = uniquePrefix('startup-early-inspector');
  const blobs = join(tmp.dir, 'blobs');
  mkdirSync(blobs);
  const script = join(tmp.dir, 'early.mjs');
  writeFileSync(join(tmp.dir, 'chat.jsonl'), `${JSON.stringify({ messages: [{ role: 'user', content: 'Hello there.' }, { role: 'assistant', content: 'Hi.' }] })}\n`);
  // Records, in order, each fork and the first time bullmq is asked for; then runs the CLI's main.
  writeFileSync(
    script,
    `import { registerHooks, syncBuiltinESMExports } from 'node:module';
import cp from 'node:child_process';
const events = [];
const children = [];
registerHooks({
  resolve(specifier, context, next) {
    if (specifier === 'bullmq' && !events.includes('bullmq')) events.push('bullmq');
    return next(specifier, context);
  },
});
const fork = cp.fork;
cp.fork = (...args) => {
  events.push('fork ' + args[1][0]);
  const child = fork(...args);
  children.push(child);
  return child;
};
syncBuiltinESMExports();
const { main } = await import(${JSON.stringify(join(import.meta.dirname, '../../src/cli/main.ts'))});
const code = await main(['enqueue', '--json', ${JSON.stringify(corpusFile('rotation.pdf'))}]);
const exited = children.map((c) => c.exitCode !== null || c.signalCode !== null);
// A chat export alone has no use for the child: none is started.
const forksBefore = events.length;
const chatCode = await main(['enqueue', '--json', ${JSON.stringify(join(tmp.dir, 'chat.jsonl'))}]);
events.push(...(chatCode === 0 && events.length === forksBefore ? ['chat: no fork'] : ['chat: ' + chatCode + ' ' + events.slice(forksBefore).join(',')]));
(await import('node:fs')).writeFileSync(${JSON.stringify(join(tmp.dir, 'early.json'))}, JSON.stringify({ code, events, exited }));
process.exit(0);
`,
  );
  try {
    const run = spawnSync(process.execPath, [script], {
      encoding: 'utf8',
      env: { ...process.env, REDIS_URL: TEST_REDIS_URL, DOCBATCH_PREFIX: prefix, BLOB_DIR: blobs, OUT_DIR: join(tmp.dir, 'out') },
    });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toContain('"outcome":"enqueued"');
    const result = JSON.parse(readFileSync(join(tmp.dir, 'early.json'), 'utf8')) as { code: number; events: string[]; exited: boolean[] };
    expect(result.code).toBe(0);
    expect(result.events).toEqual(['fork inspect', 'bullmq', 'chat: no fork']);
    expect(result.exited).toEqual([true]);
  } finally {
    await deletePrefix(prefix);
  }
});
