/**
 * Renderer and inspection children start with no environment but Node's compile cache folder
 * (issue 8, item 10): they parse hostile PDFs, so they must not hold REDIS_URL's password,
 * ENGINE_API_KEY or cloud keys. Read from /proc/<pid>/environ of the real children, with secrets
 * planted in this process.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PdfInspector } from '../../src/ingest/pdf.ts';
import { childCompileCacheDir } from '../../src/render/compile-cache.ts';
import { RenderPool } from '../../src/render/pool.ts';
import { childPids, corpusFile } from './fixtures.ts';

const PLANTED = {
  REDIS_URL: 'redis://default:s3cret-redis@127.0.0.1:6379',
  ENGINE_API_KEY: 'sk-engine-s3cret',
  AWS_SECRET_ACCESS_KEY: 'aws-s3cret',
};
/** What Node itself puts in a forked child's environment for its IPC channel. */
const NODE_OWN = new Set(['NODE_CHANNEL_FD', 'NODE_CHANNEL_SERIALIZATION_MODE', 'NODE_UNIQUE_ID']);
const saved: Record<string, string | undefined> = {};

beforeAll(() => {
  for (const [k, v] of Object.entries(PLANTED)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
});

afterAll(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

function environOf(pid: number): Map<string, string> {
  const raw = readFileSync(`/proc/${pid}/environ`, 'utf8');
  return new Map(raw.split('\0').filter((e) => e !== '').map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
}

function expectClean(pid: number): void {
  const env = environOf(pid);
  // The compile cache folder, for Node to read before it loads the child's entry module (a
  // cache enabled from the entry's own code came too late for it: ~95 ms of CPU every start).
  expect(env.get('NODE_COMPILE_CACHE')).toBe(childCompileCacheDir());
  env.delete('NODE_COMPILE_CACHE');
  for (const key of env.keys()) expect(NODE_OWN.has(key), `${key} in the child's environment`).toBe(true);
  const all = [...env.values()].join('\n');
  for (const secret of Object.values(PLANTED)) expect(all).not.toContain(secret);
}

describe('children hold no secrets', () => {
  it('renderers start with no environment but the compile cache folder, and still render', async () => {
    // The secrets are really there for any child that inherits this process's environment.
    expect(execFileSync(process.execPath, ['-p', 'process.env.ENGINE_API_KEY'], { encoding: 'utf8' }).trim()).toBe(PLANTED.ENGINE_API_KEY);
    const pool = new RenderPool({ size: 1 });
    try {
      const page = await pool.render({ path: corpusFile('sizes.pdf'), blobId: 'sizes', page: 1, format: 'png' });
      expect(page.width).toBe(995);
      const [pid] = childPids('render');
      expectClean(pid!);
    } finally {
      await pool.close();
    }
  });

  it('so does the PDF inspector used at enqueue', async () => {
    const inspector = new PdfInspector();
    try {
      const info = await inspector.inspect(corpusFile('sizes.pdf'), { file: 'sizes.pdf' });
      expect(info.pages).toBe(3);
      const [pid] = childPids('inspect');
      expectClean(pid!);
    } finally {
      await inspector.close();
    }
  });
});
