/**
 * A .zip export's central directory is read once, in blocks: an archive of 200,000 entries
 * (attachments beside conversations.json) had its directory walked three times (twice to detect,
 * once to split), two system calls an entry each walk, 24.6 s to enqueue. Reads are counted from
 * /proc/self/io (Linux): what the kernel was asked, not what the code says it does.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { DocbatchError } from '../../../src/errors.ts';
import { detectFile } from '../../../src/ingest/detect.ts';
import { splitExport } from '../../../src/ingest/chat/split.ts';
import { generateZip } from '../../../bench/lib/zip-gen.ts';
import { ChatgptTree, bombZip, makeZip, tempDir, writeBytes } from './fixtures.ts';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

function exportOf(ids: string[]): Buffer {
  return Buffer.from(
    JSON.stringify(
      ids.map((id) => {
        const t = new ChatgptTree();
        const leaf = t.chain(t.rootId, [`question ${id}`, `answer ${id}`]).at(-1) as string;
        return t.build({ id, current_node: leaf });
      }),
    ),
  );
}

const readCalls = (): number => Number(/syscr: (\d+)/.exec(readFileSync('/proc/self/io', 'utf8'))?.[1]);

async function detectAndSplit(path: string, name = 'export.zip') {
  const kind = await detectFile(path);
  if (kind.kind !== 'chat') throw new Error(`not chat: ${JSON.stringify(kind)}`);
  return splitExport(path, kind, join(tmp.dir, `${name}.sidecar`), { file: name, budgetTokens: 500 });
}

describe('a .zip export of many entries', () => {
  it.skipIf(!existsSync('/proc/self/io'))('20,000 entries: detected and split in fewer read calls than it has entries (were 12 an entry)', async () => {
    const path = join(tmp.dir, 'many.zip');
    // conversations.json last: a walk to find it goes through the whole directory (1.5 MB, past one read-ahead block).
    generateZip({ path, entries: 20_000, conversations: exportOf(['a', 'b']) });
    const before = readCalls();
    const split = await detectAndSplit(path);
    const reads = readCalls() - before;
    expect(split).toMatchObject({ conversations: 2, chunks: 2 });
    expect(reads).toBeLessThan(2_000);
  });

  it('the split opens the entry detection found: a directory damaged after detection is not read again', async () => {
    const bytes = makeZip([
      { name: 'files/a.png', data: 'png' },
      { name: 'conversations.json', data: exportOf(['x']) },
      { name: 'files/b.png', data: 'png' },
    ]);
    const path = writeBytes(tmp.dir, 'damaged-later.zip', bytes);
    const kind = await detectFile(path);
    if (kind.kind !== 'chat') throw new Error('not chat');
    const directoryAt = bytes.readUInt32LE(bytes.length - 22 + 16);
    const damaged = Buffer.from(bytes);
    damaged.fill(0xaa, directoryAt, bytes.length - 22);
    writeFileSync(path, damaged);
    const split = await splitExport(path, kind, join(tmp.dir, 'damaged-later.sidecar'), { file: 'damaged-later.zip', budgetTokens: 500 });
    expect(split).toMatchObject({ conversations: 1, chunks: 1 });
    // Without the record, the directory is read, and its damage said.
    const { zipRecord: _, ...byName } = kind;
    const err = (await splitExport(path, byName, join(tmp.dir, 'by-name.sidecar'), { file: 'damaged-later.zip', budgetTokens: 500 }).catch((e: unknown) => e)) as DocbatchError;
    expect(err).toMatchObject({ code: 'ZIP_CORRUPT', message: expect.stringMatching(/central directory file header signature/) });
  });

  it('a record from another archive (the file replaced since): the entry is looked up by name again', async () => {
    const path = writeBytes(tmp.dir, 'replaced.zip', makeZip([{ name: 'conversations.json', data: exportOf(['old']) }]));
    const kind = await detectFile(path);
    if (kind.kind !== 'chat') throw new Error('not chat');
    writeBytes(tmp.dir, 'replaced.zip', makeZip([{ name: 'notes/readme.txt', data: 'hello' }, { name: 'conversations.json', data: exportOf(['new1', 'new2']) }]));
    const split = await splitExport(path, kind, join(tmp.dir, 'replaced.sidecar'), { file: 'replaced.zip', budgetTokens: 500 });
    expect(split).toMatchObject({ conversations: 2 });
  });

  it('the limits hold for an entry opened by its record: a bomb is ZIP_TOO_LARGE before it inflates', async () => {
    const path = writeBytes(tmp.dir, 'bomb.zip', bombZip({ conversation: JSON.parse(exportOf(['b']).toString())[0], inflatedBytes: 64 << 20 }));
    const kind = await detectFile(path);
    expect(kind).toMatchObject({ kind: 'chat', zipRecord: { fileName: 'conversations.json' } });
    const err = await detectAndSplit(path, 'bomb.zip').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ZIP_TOO_LARGE', message: expect.stringMatching(/ZIP_MAX_RATIO/) });
  });
});
