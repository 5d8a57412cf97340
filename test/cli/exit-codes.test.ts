/**
 * What a script or a shell sees of the CLI, through the real bin/docbatch: exit codes of a
 * document not found (status, as retry) and of no verb at all (help asked for stays 0), and
 * colour in readable logs only on a terminal (a pipe gets plain text), as FORCE_COLOR and
 * NO_COLOR say; a bad `demo --speed` is a usage error, and the demo's logs follow LOG_LEVEL.
 * The terminal is a real pseudo-terminal (util-linux `script`).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, runCli } from '../helpers/cli.ts';
import { deletePrefix, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.ts';

const prefix = uniquePrefix(import.meta.filename);
const env = { REDIS_URL: TEST_REDIS_URL, DOCBATCH_PREFIX: prefix };
const ESC = '\x1b[';

afterAll(async () => {
  await deletePrefix(prefix);
});

describe('exit codes', () => {
  it('status of a document that does not exist exits 2 with DOC_NOT_FOUND on stderr, as retry does', async () => {
    const status = await runCli(['status', 'no-such-file.pdf'], env, { timeoutMs: 30_000 });
    expect(status.stderr).toContain('DOC_NOT_FOUND: no document found for no-such-file.pdf');
    expect(status.code).toBe(2);
    const json = await runCli(['status', 'no-such-file.pdf', '--json'], env, { timeoutMs: 30_000 });
    expect(json.code).toBe(2);
    // The error on stderr and nothing on stdout (as retry --json): not an empty report of 0 documents.
    expect(json.stderr).toContain('DOC_NOT_FOUND: no document found for no-such-file.pdf');
    expect(json.stdout).toBe('');
    const retry = await runCli(['retry', 'no-such-file.pdf'], env, { timeoutMs: 30_000 });
    expect(retry.stderr).toContain('DOC_NOT_FOUND: no document found for no-such-file.pdf');
    expect(retry.code).toBe(2);
    // Nothing asked for by name: an empty list is no error.
    const all = await runCli(['status'], env, { timeoutMs: 30_000 });
    expect(all.code).toBe(0);
    expect(all.stdout).toContain('no documents');
  }, 60_000);

  it('demo with a --speed that is no positive number exits 2 naming the flag, no stack trace', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'docbatch-demo-speed-'));
    try {
      for (const speed of ['abc', '0', '-2', '0x10']) {
        const r = await runCli(['demo', '--speed', speed], { ...env, BLOB_DIR: join(dir, 'blobs'), OUT_DIR: join(dir, 'out') }, { timeoutMs: 60_000 });
        expect(r.code, `--speed ${speed}: ${r.stderr}`).toBe(2);
        expect(r.stderr, speed).toContain(`--speed must be a number > 0, not "${speed}"`);
        expect(r.stderr, speed).not.toMatch(/unexpected error|\n\s+at /);
        expect(r.stdout, speed).toBe('');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it('no verb shows the help and exits 2 (usage); --help and help exit 0', async () => {
    const bare = await runCli([], env, { timeoutMs: 30_000 });
    expect(bare.stderr + bare.stdout).toContain('Usage: docbatch');
    expect(bare.code).toBe(2);
    for (const args of [['--help'], ['help'], ['help', 'status'], ['status', '--help']]) {
      const r = await runCli(args, env, { timeoutMs: 30_000 });
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stdout, args.join(' ')).toContain('Usage: docbatch');
    }
  }, 60_000);
});

describe('demo logs', () => {
  it('are off by default; LOG_LEVEL turns them on as --log-level does (the environment is a source like any other)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'docbatch-demo-logs-'));
    try {
      const run = async (args: string[], extra: Record<string, string>) => {
        const out = join(dir, `out-${args.length}-${Object.keys(extra).length}`);
        const r = await runCli(['demo', ...args], { ...env, BLOB_DIR: join(dir, 'blobs'), OUT_DIR: out, LOG_FORMAT: 'json', ...extra }, { timeoutMs: 120_000 });
        expect(r.code, r.stderr).toBe(0);
        return r.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string });
      };
      expect(await run([], {})).toEqual([]);
      const byFlag = (await run(['--log-level', 'info'], {})).map((l) => l.msg);
      expect(byFlag).toContain('writer started');
      const byEnv = (await run([], { LOG_LEVEL: 'info' })).map((l) => l.msg);
      expect(byEnv).toContain('writer started');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 240_000);
});

describe('readable logs (LOG_FORMAT=pretty)', () => {
  // `gc --dry-run` logs one info line (LOG_LEVEL=debug keeps it) and changes nothing.
  const args = ['gc', '--dry-run'];
  const logEnv = { ...env, LOG_FORMAT: 'pretty', LOG_LEVEL: 'debug' };

  it('are plain text through a pipe, coloured with FORCE_COLOR', async () => {
    const piped = await runCli(args, logEnv, { timeoutMs: 30_000 });
    expect(piped.code).toBe(0);
    expect(piped.stderr).toContain('collected what retention left behind');
    expect(piped.stderr).not.toContain(ESC);
    const forced = await runCli(args, { ...logEnv, FORCE_COLOR: '1' }, { timeoutMs: 30_000 });
    expect(forced.stderr).toContain(ESC);
  }, 60_000);

  it('are coloured on a terminal, unless NO_COLOR or FORCE_COLOR=0', () => {
    const onTerminal = (extra: Record<string, string>) => {
      const r = spawnSync('script', ['-qec', [BIN, ...args].join(' '), '/dev/null'], { env: { PATH: process.env.PATH, TERM: 'xterm', ...logEnv, ...extra }, encoding: 'utf8', timeout: 30_000 });
      expect(r.stdout, r.stderr).toContain('collected what retention left behind');
      return r.stdout;
    };
    expect(onTerminal({})).toContain(ESC);
    expect(onTerminal({ NO_COLOR: '1' })).not.toContain(ESC);
    expect(onTerminal({ FORCE_COLOR: '0' })).not.toContain(ESC);
  }, 60_000);
});
