/**
 * `within` (src/store/locations.ts), what LOCATIONS_OVERLAP, INPUT_OWN_FOLDER and
 * BLOB_STORE_UNWRITABLE decide with: a name that begins with `..` (a folder called `..out`) is
 * inside its folder; `..` and `../x` are not. Was: every relative path starting with `..` counted
 * as outside, so an OUT_DIR inside BLOB_DIR named `..out` went unrefused. Real folders.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { checkLocations, within } from '../../src/store/locations.ts';
import { storeWriteProblem } from '../../src/store/write-problem.ts';

const dir = mkdtempSync(join(tmpdir(), 'docbatch-locations-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('a folder whose name begins with `..` is inside; `..` and a sibling are not', () => {
  const blobs = join(dir, 'blobs');
  mkdirSync(join(blobs, '..out'), { recursive: true });
  expect(within(join(blobs, '..out'), blobs)).toBe(true);
  expect(within(join(blobs, '..'), blobs)).toBe(false);
  expect(within(join(dir, 'blobs..out'), blobs)).toBe(false);
  expect(() => checkLocations({ blobDir: blobs, outDir: join(blobs, '..out') })).toThrow(expect.objectContaining({ code: 'LOCATIONS_OVERLAP', message: expect.stringMatching(/overlap: OUT_DIR is inside BLOB_DIR/) }));
  expect(() => checkLocations({ blobDir: blobs, outDir: join(dir, 'out') })).not.toThrow();
});

it("a write that failed in a `..` folder inside the store is the store's", () => {
  const store = join(dir, 'store');
  mkdirSync(store);
  let err: unknown;
  try {
    writeFileSync(join(store, '..tmp', 'x'), 'x'); // ENOENT naming a path inside the store
  } catch (e) {
    err = e;
  }
  expect(err).toMatchObject({ code: 'ENOENT' });
  expect(storeWriteProblem(err, store, 'BLOB_DIR', store)?.code).toBe('BLOB_STORE_UNWRITABLE');
});
