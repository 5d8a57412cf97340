/**
 * A written document's results come back from its archive (src/store/archive.ts) for `docbatch
 * retry`, a rewrite, or a unit delivered again. What goes wrong there reaches the user with a
 * stable code naming the archive and the place: a damaged line is ARCHIVE_CORRUPT (its line
 * number; it was a bare SyntaxError, printed by `docbatch retry` as an unexpected error with its
 * stack), and an archive replaced each time it is read is ARCHIVE_CHANGED (it was the store's
 * internal NamedObjectChanged, without a code). Real Redis, a real blob folder; the replacement
 * is a store whose reads are each cut by a new version of the object (what S3 reports when a
 * resumed read finds another ETag).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DocbatchError } from '../../src/errors.ts';
import { archiveKey, archivedResult, readArchive, restoreArchived } from '../../src/store/archive.ts';
import { NamedObjectChanged } from '../../src/store/blobs.ts';
import { LocalBlobStore } from '../../src/store/blobs-local.ts';
import { DocStore } from '../../src/store/docs.ts';
import { deletePrefix, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.ts';

const prefix = uniquePrefix(import.meta.filename);
const dir = mkdtempSync(join(tmpdir(), 'docbatch-archive-codes-'));
let redis: Redis;
let store: DocStore;

beforeAll(() => {
  redis = new Redis(TEST_REDIS_URL);
  store = new DocStore(redis, prefix);
});
afterAll(async () => {
  redis.disconnect();
  await deletePrefix(prefix);
  rmSync(dir, { recursive: true, force: true });
});

const ok = (u: number) => JSON.stringify([u, { ok: true, text: `unit ${u}`, promptTokens: 1, completionTokens: 1, engineMs: 1, latencyMs: 1, model: 'm', finishReason: 'stop' }]);

/** A written document's record as restore reads it: generation 1, results not in Redis. */
async function writtenRecord(docId: string, units = 1): Promise<void> {
  await redis.hset(store.docKey(docId), { gen: 1, reopens: 0, state: 'written', units });
}

/** Every read of a named object is cut after its first bytes by a new version of it. */
class AlwaysReplaced extends LocalBlobStore {
  opens = 0;
  override async openNamed(key: string): Promise<Readable | null> {
    const body = await super.openNamed(key);
    if (!body) return null;
    this.opens++;
    return Readable.from(
      (async function* () {
        for await (const chunk of body) {
          yield (chunk as Buffer).subarray(0, 10);
          throw new NamedObjectChanged(key);
        }
      })(),
      { objectMode: false },
    );
  }
}

describe('a damaged archive', () => {
  const blobs = new LocalBlobStore(join(dir, 'blobs'));
  const where = join(dir, 'blobs', 'named', archiveKey('dcorrupt', 1));

  it('restored (retry): ARCHIVE_CORRUPT naming the archive and the line; nothing restored', async () => {
    await writtenRecord('dcorrupt', 4);
    await blobs.putNamed(archiveKey('dcorrupt', 1), `${ok(0)}\n${ok(1)}\n[2,{"ok":true,"text":"cut sh\n${ok(3)}\n`);
    const err = await restoreArchived(store, blobs, 'dcorrupt', 1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DocbatchError);
    expect(err).toMatchObject({ code: 'ARCHIVE_CORRUPT', place: { file: where, line: 3 } });
    expect((err as DocbatchError).describe()).toMatch(/archive-codes-.*1\.jsonl: line 3: ARCHIVE_CORRUPT: the results archive is damaged: not JSON/);
    expect(await redis.exists(store.unitsKey('dcorrupt', 1))).toBe(0);
    expect(await redis.keys(`${prefix}:doc:dcorrupt:r:1:restoring:*`)).toEqual([]);
  });

  it('JSON of another shape is damaged too; one unit looked up past it (a unit delivered again): ARCHIVE_CORRUPT', async () => {
    await blobs.putNamed(archiveKey('dshape', 1), `${ok(0)}\n{"unit":1}\n`);
    await writtenRecord('dshape');
    expect(await restoreArchived(store, blobs, 'dshape', 1).catch((e: unknown) => e)).toMatchObject({ code: 'ARCHIVE_CORRUPT', place: { line: 2 }, message: expect.stringMatching(/not a \[unit, result\] pair/) });
    await blobs.putNamed(archiveKey('dlookup', 1), `${ok(0)}\n[1,{"ok":tru\n`);
    expect(await archivedResult(blobs, 'dlookup', 1, 0)).toMatchObject({ ok: true, text: 'unit 0' });
    expect(await archivedResult(blobs, 'dlookup', 1, 1).catch((e: unknown) => e)).toMatchObject({ code: 'ARCHIVE_CORRUPT', place: { file: join(dir, 'blobs', 'named', archiveKey('dlookup', 1)), line: 2 } });
  });
});

describe('an archive cut short', () => {
  it('with fewer results than the document has units: ARCHIVE_CORRUPT, nothing restored (it restored what was there, as if whole)', async () => {
    const blobs = new LocalBlobStore(join(dir, 'short'));
    await blobs.putNamed(archiveKey('dshort', 1), `${ok(0)}\n${ok(1)}\n`);
    await writtenRecord('dshort', 3);
    const err = await restoreArchived(store, blobs, 'dshort', 1).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ARCHIVE_CORRUPT', place: { file: join(dir, 'short', 'named', archiveKey('dshort', 1)), line: 3 }, message: expect.stringMatching(/holds the results of 2 of the document's 3 units/) });
    expect(await redis.exists(store.unitsKey('dshort', 1))).toBe(0);
    // Whole, it is restored.
    await blobs.putNamed(archiveKey('dshort', 1), `${ok(0)}\n${ok(1)}\n${ok(2)}\n`);
    expect(await restoreArchived(store, blobs, 'dshort', 1)).toBe(true);
    expect(await redis.hlen(store.unitsKey('dshort', 1))).toBe(3);
  });
});

describe('an archive replaced each time it is read', () => {
  it('is read again, then ARCHIVE_CHANGED naming it', async () => {
    const blobs = new AlwaysReplaced(join(dir, 'changing'));
    await blobs.putNamed(archiveKey('dchanging', 1), `${ok(0)}\n${ok(1)}\n`);
    const err = await readArchive(blobs, 'dchanging', 1, async (lines) => {
      for await (const _ of lines);
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DocbatchError);
    expect(err).toMatchObject({ code: 'ARCHIVE_CHANGED', place: { file: join(dir, 'changing', 'named', archiveKey('dchanging', 1)) } });
    expect((err as DocbatchError).cause).toBeInstanceOf(NamedObjectChanged);
    expect(blobs.opens).toBe(5);
    await writtenRecord('dchanging');
    expect(await restoreArchived(store, blobs, 'dchanging', 1).catch((e: unknown) => e)).toMatchObject({ code: 'ARCHIVE_CHANGED' });
  });
});
