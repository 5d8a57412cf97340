/**
 * Output name claims (DocStore.claim, releaseName, moveOutputs) against a real Redis. Names are
 * held case-folded (`nameField`), since `Report.md` and `report.md` are one file on macOS,
 * Windows and SMB shares. Claims written before that (the raw `folder/Name` field, as a Redis
 * kept through an upgrade still holds for RETENTION_DAYS) must keep their documents' names.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DocStore } from '../../src/store/docs.ts';
import { nameField } from '../../src/store/names.ts';
import type { DocMeta } from '../../src/store/types.ts';
import { deletePrefix, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.ts';

const prefix = uniquePrefix(import.meta.filename);
let redis: Redis;
let store: DocStore;
const sha = 'ab'.repeat(32);

beforeAll(() => {
  redis = new Redis(TEST_REDIS_URL);
  store = new DocStore(redis, prefix);
});

afterAll(async () => {
  redis.disconnect();
  await deletePrefix(prefix);
});

describe('output name claims', () => {
  it('names that differ only by case are one name', async () => {
    expect(await store.claimName('a', 'Report', 'Dfirst', sha)).toBe('Report');
    expect(await store.claimName('a', 'REPORT', 'Dsecond', 'cd'.repeat(32))).toBe('REPORT-cdcdcdcd');
    expect(await store.claimName('a', 'report', 'Dfirst', sha)).toBe('report');
  });

  it('a name claimed before claims were case-folded still belongs to its document', async () => {
    // As the version before case folding wrote it: the field as typed.
    await redis.hset(store.namesKey, 'b/Invoice March', 'Dold');
    expect(nameField('b', 'Invoice March')).not.toBe('b/Invoice March');
    expect(await store.claimName('b', 'Invoice March', 'Dnew', sha)).toBe(`Invoice March-${sha.slice(0, 8)}`);
    // Its own document keeps it.
    expect(await store.claimName('b', 'Invoice March', 'Dold', sha)).toBe('Invoice March');
  });

  it('a name released is free again, under either spelling of the claim', async () => {
    expect(await store.claimName('c', 'Minutes', 'Dm', sha)).toBe('Minutes');
    expect(await store.releaseName('c', 'Minutes', 'Dm')).toBe(true);
    expect(await store.claimName('c', 'minutes', 'Dn', sha)).toBe('minutes');
    await redis.hset(store.namesKey, 'c/Agenda', 'Dlegacy');
    expect(await store.releaseName('c', 'Agenda', 'Dlegacy')).toBe(true);
    expect(await redis.hexists(store.namesKey, 'c/Agenda')).toBe(0);
    expect(await store.claimName('c', 'Agenda', 'Dother', sha)).toBe('Agenda');
  });
});

describe('claims made before case folding, asked for in another case', () => {
  // A Redis kept through the upgrade: the legacy claims are there before the first claim folds them.
  const legacyPrefix = uniquePrefix('name-claims-legacy.test.ts');
  afterAll(async () => {
    await deletePrefix(legacyPrefix);
  });

  it('a name held as `Invoice April` is not won as `invoice april`; two legacy claims in two cases are reported', async () => {
    const store2 = new DocStore(redis, legacyPrefix);
    await redis.hset(store2.namesKey, 'd/Invoice April', 'Dold', 'e/Memo', 'D1', 'e/memo', 'D2');
    // Another document, asking in another case: the same file on macOS, so not the same name.
    expect(await store2.claimName('d', 'invoice april', 'Dnew', sha)).toBe(`invoice april-${sha.slice(0, 8)}`);
    expect(await store2.claimName('d', 'INVOICE APRIL', 'Dthird', 'cd'.repeat(32))).toBe('INVOICE APRIL-cdcdcdcd');
    // Its own document keeps it, in whatever case it asks.
    expect(await store2.claimName('d', 'invoice APRIL', 'Dold', sha)).toBe('invoice APRIL');
    // Folded once per Redis; the clash of the two legacy claims is said the first time.
    expect(await redis.get(`${legacyPrefix}:names:folded`)).toBe('1');
    const fresh = new DocStore(redis, legacyPrefix);
    expect(await fresh.foldLegacyNames()).toEqual([]);
    await redis.del(`${legacyPrefix}:names:folded`);
    expect(await new DocStore(redis, legacyPrefix).foldLegacyNames()).toEqual([{ field: 'e/Memo', docId: 'D1', holder: 'D2' }]);
  });

  it('a document moved into a folder does not take a name held there in another case, when the move is the first claim', async () => {
    const movePrefix = uniquePrefix('name-claims-move.test.ts');
    try {
      const mover = new DocStore(redis, movePrefix);
      await redis.hset(mover.namesKey, 'f/Invoice May', 'Dold');
      const meta = { docId: 'Dmoved', outSub: 'g', name: 'x' } as DocMeta;
      await redis.hset(mover.docKey('Dmoved'), { gen: '1', state: 'written', meta: JSON.stringify(meta) });
      // The same file as Dold's on macOS, Windows and SMB shares: not moved there.
      expect(await mover.moveOutputs('Dmoved', 1, 'written', meta, { ...meta, outSub: 'f', name: 'invoice may' })).toBe(false);
      expect(await redis.hget(mover.namesKey, nameField('f', 'invoice may'))).toBe('Dold');
      // A name of its own there is moved into; the record is kept until written again, and with
      // it the units counted without usage (a retry of its failed units counts them once).
      await redis.expire(mover.docKey('Dmoved'), 3600);
      await redis.setbit(mover.noUsageKey('Dmoved', 1), 3, 1);
      await redis.expire(mover.noUsageKey('Dmoved', 1), 3600);
      expect(await mover.moveOutputs('Dmoved', 1, 'written', meta, { ...meta, outSub: 'f', name: 'Receipt' })).toBe(true);
      expect(await redis.ttl(mover.docKey('Dmoved'))).toBe(-1);
      expect(await redis.ttl(mover.noUsageKey('Dmoved', 1))).toBe(-1);
    } finally {
      await deletePrefix(movePrefix);
    }
  });
});
