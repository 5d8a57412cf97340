/**
 * The same chat export enqueued again: the same run (its id holds the content and every chunk
 * setting), so it resumes. When the export reads into other chunks than the record holds (it
 * was split by an older docbatch), an unfinished run goes on as it was split then; one that
 * failed, or whose input as read then is gone, is DOC_CONFLICT, saying so (not "other settings").
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { openBlobStore } from '../../../src/store/storage.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../../helpers/pipeline.ts';
import { ChatgptTree } from './fixtures.ts';

let p: Pipeline;
beforeAll(async () => {
  p = await startPipeline({ file: import.meta.filename, worker: false });
});
afterAll(async () => {
  await p?.stop();
});

it('enqueued again: resumed, same units; split differently by an older docbatch and its input gone: DOC_CONFLICT saying so', async () => {
  const t = new ChatgptTree();
  const ids = t.chain(t.rootId, ['hello', 'hi there', 'bye']);
  const file = join(p.dir, 'conversations.json');
  writeFileSync(file, JSON.stringify([t.build({ id: 'c1', current_node: ids.at(-1)! })]));
  const [first] = await p.enqueue([file]);
  const [docId] = acceptedIds([first!]);
  const [again] = await p.enqueue([file]);
  expect(again!.runs?.map((r) => [r.docId, r.outcome])).toEqual([[docId, 'resumed']]);

  // The record as an older docbatch left it: same id and units, another sidecar.
  const record = await p.store.get(docId!);
  await p.store.redis.hset(p.store.docKey(docId!), 'meta', JSON.stringify({ ...record!.meta, blob: 'f'.repeat(64) }));
  const [conflict] = await p.enqueue([file]);
  expect(conflict!.error?.code).toBe('DOC_CONFLICT');
  expect(conflict!.error?.message).toBe(
    `this content was enqueued before as ${docId} and it reads into other chunks now (1 units, now 1: a docbatch upgrade changed how chat exports are read or cut); the input it was read from then is gone from the blob store: redo it with --force`,
  );
});

it('unfinished, split differently by an older docbatch, enqueued again with another --priority: it goes on at the new priority', async () => {
  const t = new ChatgptTree();
  const ids = t.chain(t.rootId, ['first question', 'first answer', 'more']);
  const file = join(p.dir, 'priority.json');
  writeFileSync(file, JSON.stringify([t.build({ id: 'c4', current_node: ids.at(-1)! })]));
  const [first] = await p.enqueue([file]);
  const [docId] = acceptedIds([first!]);
  const record = await p.store.get(docId!);
  expect(record!.meta.priority).toBe(0);
  const blobs = openBlobStore(p.config);
  const older = await blobs.putBytes(readFileSync(await blobs.localPath(record!.meta.blob), 'utf8').replace('first question', 'FIRST QUESTION'));
  await p.store.redis.hset(p.store.docKey(docId!), 'meta', JSON.stringify({ ...record!.meta, blob: older.sha256 }));

  // No worker yet: asked for first, it goes first (as a resume of the same split does).
  const [again] = await p.enqueue([file], { priority: 7 });
  expect(again!.runs?.map((r) => [r.docId, r.outcome])).toEqual([[docId, 'resumed']]);
  const now = await p.store.get(docId!);
  expect(now!.meta.blob).toBe(older.sha256);
  expect(now!.meta.priority).toBe(7);
  expect(await p.store.redis.hget(p.store.docKey(docId!), 'priority')).toBe('7');
});

it('unfinished, split differently by an older docbatch: it goes on as it was split then, and is written', async () => {
  const t = new ChatgptTree();
  const ids = t.chain(t.rootId, ['what is the capital', 'it is Paris', 'thanks']);
  const file = join(p.dir, 'older.json');
  writeFileSync(file, JSON.stringify([t.build({ id: 'c3', current_node: ids.at(-1)! })]));
  const [first] = await p.enqueue([file]);
  const [docId] = acceptedIds([first!]);
  // The record as an older docbatch left it: its own sidecar (other text, the same places, so the
  // record's chunk index fits it), stored in the blob store.
  const record = await p.store.get(docId!);
  const blobs = openBlobStore(p.config);
  const ours = readFileSync(await blobs.localPath(record!.meta.blob), 'utf8');
  const older = await blobs.putBytes(ours.replace('what is the capital', 'WHAT IS THE CAPITAL'));
  expect(older.sha256).not.toBe(record!.meta.blob);
  await p.store.redis.hset(p.store.docKey(docId!), 'meta', JSON.stringify({ ...record!.meta, blob: older.sha256 }));

  const [again] = await p.enqueue([file]);
  expect(again!.error).toBeUndefined();
  expect(again!.runs?.map((r) => [r.docId, r.outcome])).toEqual([[docId, 'resumed']]);
  expect((await p.store.get(docId!))!.meta.blob).toBe(older.sha256);
  await p.startWorker();
  await p.wait([docId!], 60_000);
  const out = readFileSync(join(p.config.outDir, 'older.jsonl'), 'utf8');
  expect(out).not.toContain('"error"');
  expect(out).toContain('WHAT IS THE CAPITAL');
}, 90_000);

it('written before an upgrade that reads it into other chunks: done, not DOC_CONFLICT; unfinished or failed: the message fits', async () => {
  await p.startWorker();
  const t = new ChatgptTree();
  const ids = t.chain(t.rootId, ['good morning', 'morning', 'see you']);
  const file = join(p.dir, 'written.json');
  writeFileSync(file, JSON.stringify([t.build({ id: 'c2', current_node: ids.at(-1)! })]));
  const [first] = await p.enqueue([file]);
  const [docId] = acceptedIds([first!]);
  await p.wait([docId!], 60_000);
  const record = await p.store.get(docId!);
  expect(record!.state).toBe('written');
  await p.store.redis.hset(p.store.docKey(docId!), 'meta', JSON.stringify({ ...record!.meta, blob: 'e'.repeat(64) }));
  const [again] = await p.enqueue([file]);
  expect(again!.error).toBeUndefined();
  expect(again!.runs?.map((r) => [r.docId, r.outcome])).toEqual([[docId, 'done']]);
  // Failed (its write): nothing left to finish, so the message does not say "let it finish".
  await p.store.redis.hset(p.store.docKey(docId!), 'state', 'failed');
  const [failed] = await p.enqueue([file]);
  expect(failed!.error?.code).toBe('DOC_CONFLICT');
  expect(failed!.error?.message).toMatch(/a docbatch upgrade changed how chat exports are read or cut\); redo it with --force$/);
}, 90_000);
