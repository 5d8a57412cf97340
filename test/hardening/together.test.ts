/**
 * Issue 8, "Done when": with hostile names, a broken worker beside a good one, a poison chunk and
 * a zip bomb in one run, every other unit completes exactly once, outputs stay inside OUT_DIR,
 * and `enqueue --wait` returns.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { runCli } from '../helpers/cli.ts';
import { parsePages, startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';
import { bombZip, ChatgptTree } from '../ingest/chat/fixtures.ts';

let p: Pipeline | undefined;
let proxy: TcpProxy | undefined;
afterEach(async () => {
  await p?.stop();
  await proxy?.close();
  p = undefined;
  proxy = undefined;
});

it('hostile names, a broken worker, a poison chunk and a zip bomb: everything else exactly once, inside OUT_DIR, and --wait returns', async () => {
  p = await startPipeline({ file: import.meta.filename, worker: false, emulator: { speed: 10 } });
  proxy = await startTcpProxy({ target: p.engine.url, dropMarkers: ['POISON-3c1d'] });
  const inbox = join(p.dir, 'inbox');
  mkdirSync(inbox);
  const names = ['...pdf', `${'文'.repeat(75)}.pdf`, 'a\u202etxt.pdf'];
  names.forEach((n, i) => writeFileSync(join(inbox, n), numberedPdf(4, 30 + i)));
  const chats = Array.from({ length: 10 }, (_, i) => JSON.stringify({ id: `c${i}`, title: `T${i}`, messages: [{ role: 'user', content: i === 4 ? 'Say POISON-3c1d please.' : `Question ${i}?` }, { role: 'assistant', content: `Answer ${i}.` }] }));
  writeFileSync(join(inbox, 'chats.jsonl'), `${chats.join('\n')}\n`);
  // A ChatGPT export zip whose conversations.json inflates 1000:1.
  const tree = new ChatgptTree();
  const leaf = tree.chain(tree.rootId, ['again and again', 'and again']).at(-1) as string;
  const conversation = tree.build({ id: 'bomb', current_node: leaf });
  writeFileSync(join(inbox, 'bomb.zip'), bombZip({ conversation, inflatedBytes: 200 << 20 }));

  // The bad worker first (its blob store is an empty folder), then a good one behind the proxy.
  const empty = join(p.dir, 'not-the-store');
  mkdirSync(empty);
  const bad = await p.startWorker({ blobDir: empty, workerName: 'bad' });
  await p.startWorker({ engineUrl: proxy.url, workerName: 'good' });

  const env = { REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix, BLOB_DIR: p.config.blobDir, OUT_DIR: p.config.outDir };
  const run = await runCli(['enqueue', inbox, '--wait', '--json'], env, { timeoutMs: 120_000 });
  // It returns: 2, because the bomb was refused (the rest went in and finished).
  expect(run.code, run.stdout + run.stderr).toBe(2);
  const lines = run.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(lines.find((l) => String(l.file).endsWith('bomb.zip'))).toMatchObject({ error: { code: 'ZIP_TOO_LARGE' } });
  const finished = lines.filter((l) => l.state !== undefined);
  expect(finished).toHaveLength(4);
  expect(finished.every((l) => l.state === 'written')).toBe(true);
  // Every unit but the poison chunk succeeded; the poison chunk failed alone.
  expect(finished.reduce((n, l) => n + Number(l.failed), 0)).toBe(1);
  expect(finished.reduce((n, l) => n + Number(l.completed), 0)).toBe(3 * 4 + 9);
  // Exactly once: the engine answered each of them once (plus the good worker's image probe; the
  // bad worker's probe went to the engine directly).
  expect(p.engine.stats().completed).toBe(3 * 4 + 9 + 2);
  expect(bad.unhealthy?.code).toBe('BLOB_STORE_UNAVAILABLE');
  // Inside OUT_DIR, and nothing beside it.
  expect(readdirSync(dirname(p.config.outDir)).sort()).toEqual(['blobs', 'inbox', 'not-the-store', 'out']);
  for (const l of finished) {
    for (const f of l.files as string[]) expect(f.startsWith(`${p.config.outDir}/`)).toBe(true);
  }
  const md = readdirSync(p.config.outDir).filter((f) => f.endsWith('.md'));
  expect(md).toHaveLength(3);
  for (const f of md) expect([...parsePages(readFileSync(join(p.config.outDir, f), 'utf8')).values()].every((x) => !x.failed)).toBe(true);
}, 180_000);
