/**
 * An export .zip of many entries (attachments beside conversations.json) prepared for enqueue:
 * detection, the zip-bomb limits and the split, in this process, without Redis. What it shows is
 * how the cost grows with the central directory, not with the conversations (a small export).
 * Prints wall time and the read system calls the process made (/proc/self/io, Linux).
 *
 *   node_modules/.bin/node bench/zip-entries.ts [--entries 200000] [--at last|first]
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { detectFile } from '../src/ingest/detect.ts';
import { prepareFile } from '../src/ingest/prepare.ts';
import { LocalBlobStore } from '../src/store/blobs-local.ts';
import { generateZip } from './lib/zip-gen.ts';

const { values } = parseArgs({ options: { entries: { type: 'string', default: '200000' }, at: { type: 'string', default: 'last' } } });
const conversation = (i: number) => ({
  id: `c${i}`,
  title: `conversation ${i}`,
  create_time: 1,
  current_node: 'b',
  mapping: {
    r: { id: 'r', message: null, parent: null, children: ['a'] },
    a: { id: 'a', parent: 'r', children: ['b'], message: { id: 'a', author: { role: 'user' }, content: { content_type: 'text', parts: ['hello'] } } },
    b: { id: 'b', parent: 'a', children: [], message: { id: 'b', author: { role: 'assistant' }, content: { content_type: 'text', parts: ['hi there'] } } },
  },
});
const syscr = (): number => Number(/syscr: (\d+)/.exec(readFileSync('/proc/self/io', 'utf8'))?.[1] ?? NaN);

const dir = mkdtempSync(join(tmpdir(), 'docbatch-bench-zip-'));
try {
  const path = join(dir, 'export.zip');
  const made = generateZip({ path, entries: Number(values.entries), conversations: Buffer.from(JSON.stringify(Array.from({ length: 10 }, (_, i) => conversation(i)))), conversationsAt: values.at === 'first' ? 'first' : 'last' });
  const blobs = new LocalBlobStore(join(dir, 'blobs'));
  let reads = syscr();
  let t = performance.now();
  await detectFile(path);
  const detectMs = performance.now() - t;
  const detectReads = syscr() - reads;
  reads = syscr();
  t = performance.now();
  const prepared = await prepareFile(path, blobs, { chunkTokens: 1000, chunkOverlapTokens: 0 });
  const prepareMs = performance.now() - t;
  const prepareReads = syscr() - reads;
  console.log(`zip              ${made.entries} entries, ${(made.bytes / 1024 / 1024).toFixed(1)} MB, conversations.json ${values.at}`);
  console.log(`detect           ${(detectMs / 1000).toFixed(2)} s   ${detectReads} read calls`);
  console.log(`prepare (whole)  ${(prepareMs / 1000).toFixed(2)} s   ${prepareReads} read calls   (${prepared.chunks?.length} chunks)`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
