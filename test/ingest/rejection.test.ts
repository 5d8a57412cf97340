/**
 * What an error met while one file was enqueued means (src/ingest/rejection.ts): that file's
 * rejection, or a stop of the whole command. Every error here is a real one, thrown by the call
 * that throws it in use (a read the kernel refuses, a full device, Redis refusing a command or
 * not listening, a TypeError of real code), not one built to look like it. The command-level
 * outcome (exit code, `--json` lines) is in folders.test.ts.
 */
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { DocbatchError, InputError } from '../../src/errors.ts';
import { fileRejection } from '../../src/ingest/rejection.ts';
import { tempDir } from './chat/fixtures.ts';
import { TEST_REDIS_URL } from '../helpers/redis.ts';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (err) {
    return err;
  }
  throw new Error('did not throw');
}

const FILE = '/in/box/a.json';

describe("a file's own problems reject that file", () => {
  it('a docbatch bug (a TypeError inside a reader) is INPUT_INTERNAL, naming the file and the error, the original as cause', () => {
    const bug = thrown(() => (JSON.parse('null') as { mapping: object }).mapping);
    const err = fileRejection(bug, FILE)!;
    expect(err).toBeInstanceOf(InputError);
    expect(err.code).toBe('INPUT_INTERNAL');
    expect(err.place).toEqual({ file: FILE });
    expect(err.cause).toBe(bug);
    expect(err.describe()).toMatch(/^\/in\/box\/a\.json: INPUT_INTERNAL: docbatch failed unexpectedly while reading this file \(TypeError: Cannot read properties of null \(reading 'mapping'\)\): a bug in docbatch, please report it/);
    // Node's own argument checks (ERR_*) are bugs too, not file-system errors.
    const nodeBug = thrown(() => Buffer.alloc(4).readUInt32LE(2));
    expect(fileRejection(nodeBug, FILE)?.code).toBe('INPUT_INTERNAL');
  });

  const einval = ['/sys/class/net/lo/speed', '/sys/class/net/lo/duplex'].find((f) => (thrown(() => readFileSync(f)) as NodeJS.ErrnoException | undefined)?.code === 'EINVAL');
  it.skipIf(einval === undefined)('a read of the file refused with an errno nobody listed (a sysfs attribute: EINVAL) is FILE_UNREADABLE', () => {
    const err = fileRejection(thrown(() => readFileSync(einval!)), FILE)!;
    expect([err.code, err.message, err.place]).toEqual(['FILE_UNREADABLE', 'cannot read the file: EINVAL: invalid argument, read', { file: FILE }]);
  });

  it('an errno of the list is FILE_UNREADABLE wherever it happened (as before); the blob store failing for this file is its rejection', () => {
    const gone = thrown(() => readFileSync(join(tmp.dir, 'gone.json')));
    expect(fileRejection(gone, FILE)?.message).toBe('cannot read the file: it is gone (deleted or moved while being enqueued?)');
    const store = new DocbatchError('BLOB_STORE_UNAVAILABLE', 'blob store unreadable: EIO');
    expect([fileRejection(store, FILE)?.code, fileRejection(store, FILE)?.place]).toEqual(['BLOB_STORE_UNAVAILABLE', { file: FILE }]);
    const own = new InputError('EXPORT_SCHEMA', 'bad', { place: { file: FILE } });
    expect(fileRejection(own, FILE)).toBe(own);
  });
});

describe('the machine, the stores and an interrupt still stop the command', () => {
  it('a full device, and an errno of another path (the blob store), are not the file', () => {
    expect(fileRejection(thrown(() => writeFileSync('/dev/full', 'x')), FILE)).toBeNull(); // ENOSPC
    const dir = join(tmp.dir, 'store');
    mkdirSync(join(dir, 'x'), { recursive: true });
    expect(fileRejection(thrown(() => rmdirSync(dir)), FILE)).toBeNull(); // ENOTEMPTY, path: the store's
  });

  it('the same error once the command is interrupted, and ABORTED or another DocbatchError', () => {
    const bug = thrown(() => (null as unknown as { x: number }).x);
    const controller = new AbortController();
    controller.abort();
    expect(fileRejection(bug, FILE, controller.signal)).toBeNull();
    expect(fileRejection(new DocbatchError('ABORTED', 'interrupted (SIGINT)'), FILE)).toBeNull();
    expect(fileRejection(new DocbatchError('INTERNAL', 'the PDF inspection process did not start'), FILE)).toBeNull();
  });

  it('Redis not listening, and Redis refusing a command (the blob pins live there)', async () => {
    const closed = new Redis({ port: 1, maxRetriesPerRequest: 0, retryStrategy: () => null });
    closed.on('error', () => {});
    const lost = await closed.ping().then(() => undefined, (err: unknown) => err);
    closed.disconnect();
    expect((lost as Error).message).toBe('Connection is closed.');
    expect(fileRejection(lost, FILE)).toBeNull();
    const redis = new Redis(TEST_REDIS_URL);
    try {
      const reply = await redis.call('NO-SUCH-COMMAND').then(() => undefined, (err: unknown) => err);
      expect((reply as Error).name).toBe('ReplyError');
      expect(fileRejection(reply, FILE)).toBeNull();
    } finally {
      redis.disconnect();
    }
  });
});
