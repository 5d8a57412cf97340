/**
 * Secrets out of `ps`, as a user runs docbatch (real child processes, real Redis, a real
 * encrypted PDF made with mutool): the PDF password, REDIS_URL and ENGINE_API_KEY are read from
 * a file or the environment, never needing the command line (checked in /proc/PID/cmdline of the
 * running process); a secret given as a flag still works but warns; a value and its file together
 * are refused; an ENGINE_URL carrying credentials is refused without printing them; URLs are
 * shown with only their password masked, as written.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redactUrl } from '../../src/config.ts';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { BIN, runCli } from '../helpers/cli.ts';
import { startPipeline, type Pipeline } from '../helpers/pipeline.ts';

const PASSWORD = 'S3cret-pw-7731';

describe('secrets from files and the environment', () => {
  let p: Pipeline;
  let env: Record<string, string>;
  let pdf: string;
  let pwFile: string;
  const file = (name: string, data: string | Buffer) => {
    const path = join(p.dir, name);
    writeFileSync(path, data);
    return path;
  };

  beforeAll(async () => {
    p = await startPipeline({ file: import.meta.filename, worker: false });
    env = { REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix, BLOB_DIR: p.config.blobDir, OUT_DIR: p.config.outDir, LOG_FORMAT: 'json' };
    const plain = file('plain.pdf', numberedPdf(2, 31));
    pdf = join(p.dir, 'locked.pdf');
    const made = spawnSync('mutool', ['clean', '-E', 'aes-256', '-U', PASSWORD, '-O', 'owner-7731', plain, pdf], { encoding: 'utf8' });
    if (made.status !== 0) throw new Error(`mutool (Debian package mupdf-tools) is needed to encrypt a PDF: ${made.error?.message ?? made.stderr}`);
    pwFile = file('pdf-password', `${PASSWORD}\n`);
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('the PDF is encrypted: without a password it is refused', async () => {
    const r = await runCli(['enqueue', pdf], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/PDF_ENCRYPTED/);
  });

  it('--password-file opens it, and the password is nowhere in the running command line or environment', async () => {
    const child = spawn(BIN, ['enqueue', '--wait', '--password-file', pwFile, pdf], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    const exited = new Promise<void>((ok) => child.on('exit', () => ok()));
    try {
      // No worker runs: --wait keeps it alive once the document is in, which is when we look.
      await expect.poll(() => stdout, { timeout: 30_000 }).toMatch(/locked\.pdf\s+2 pages/);
      const argv = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0');
      expect(argv).toContain('--password-file');
      expect(argv.join(' ')).not.toContain(PASSWORD);
      expect(readFileSync(`/proc/${child.pid}/environ`, 'utf8')).not.toContain(PASSWORD);
      expect(stderr).not.toMatch(/warning/);
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  }, 60_000);

  it('PDF_PASSWORD and PDF_PASSWORD_FILE open it too, without a warning', async () => {
    const settings: Array<Record<string, string>> = [{ PDF_PASSWORD: PASSWORD }, { PDF_PASSWORD_FILE: pwFile }];
    for (const extra of settings) {
      const r = await runCli(['enqueue', pdf], { ...env, ...extra });
      expect(r.code, Object.keys(extra)[0]).toBe(0);
      expect(r.stdout).toMatch(/locked\.pdf\s+2 pages/);
      expect(r.stderr).toBe('');
    }
  });

  it('--password still works, with a warning that it shows in ps', async () => {
    const r = await runCli(['enqueue', '--password', PASSWORD, pdf], env);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^docbatch: warning: --password shows in `ps` to every user of this machine: prefer --password-file PATH, PDF_PASSWORD_FILE or PDF_PASSWORD$/m);
    expect(r.stderr).not.toContain(PASSWORD);
  });

  it('a value and its file together, or a file that cannot be read: CONFIG_INVALID, exit 2, the secret not printed', async () => {
    const both = await runCli(['enqueue', '--password', PASSWORD, '--password-file', pwFile, pdf], env);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/CONFIG_INVALID: setting PDF_PASSWORD: give --password or --password-file, not both/);
    const bothEnv = await runCli(['enqueue', pdf], { ...env, PDF_PASSWORD: PASSWORD, PDF_PASSWORD_FILE: pwFile });
    expect(bothEnv.code).toBe(2);
    expect(bothEnv.stderr).toMatch(/settings PDF_PASSWORD and PDF_PASSWORD_FILE are both set/);
    const missing = await runCli(['enqueue', '--password-file', join(p.dir, 'no-such-file'), pdf], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/CONFIG_INVALID: setting PDF_PASSWORD from --password-file: cannot read .*no-such-file \(ENOENT\)/);
    const empty = await runCli(['enqueue', pdf], { ...env, PDF_PASSWORD_FILE: file('empty-pw', '\n') });
    expect(empty.stderr).toMatch(/PDF_PASSWORD_FILE \(environment\): .*empty-pw is empty/);
    for (const r of [both, bothEnv]) expect(r.stderr).not.toContain(PASSWORD);
  });

  it('REDIS_URL from REDIS_URL_FILE or --redis-url-file; both set is refused', async () => {
    const { REDIS_URL, ...rest } = env;
    const urlFile = file('redis-url', `${REDIS_URL}\n`);
    expect((await runCli(['status'], { ...rest, REDIS_URL_FILE: urlFile })).code).toBe(0);
    expect((await runCli(['status', '--redis-url-file', urlFile], rest)).code).toBe(0);
    const both = await runCli(['status'], { ...env, REDIS_URL_FILE: urlFile });
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/REDIS_URL and REDIS_URL_FILE are both set/);
  });

  it('`docbatch config` masks secrets from files and only the password of URLs, as written', async () => {
    const keyFile = file('engine-key', 'sk-engine-9931\n');
    const r = await runCli(['config'], { REDIS_URL: 'redis://ops:hunter2@Redis.Internal:6379/0', ENGINE_API_KEY_FILE: keyFile, ENGINE_URL: 'http://GPU-Box:8000/v1' });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('REDIS_URL=redis://ops:***@Redis.Internal:6379/0  # environment REDIS_URL\n');
    expect(r.stdout).toContain('ENGINE_API_KEY=***  # file ENGINE_API_KEY_FILE\n');
    // A secret not set shows as nothing, not as a mask that looks like a key.
    expect(r.stdout).toContain('ENGINE_FALLBACK_API_KEYS=  # default\n');
    expect(r.stdout).toContain('ENGINE_URL=http://GPU-Box:8000/v1  # environment ENGINE_URL\n');
    expect(r.stdout).not.toMatch(/hunter2|sk-engine-9931/);
  });
});

describe('credentials inside ENGINE_URL', () => {
  it('are refused clearly (CONFIG_INVALID, exit 2) and never printed, by every verb that reads it', async () => {
    for (const [url, shown] of [
      ['http://admin:hunter2@gpu-box:8000', 'http://admin:***@gpu-box:8000'],
      ['https://tok-hunter2@gpu-box', 'https://***@gpu-box'],
    ]) {
      for (const verb of [['config'], ['worker']]) {
        const r = await runCli(verb, { ENGINE_URL: url!, REDIS_URL: 'redis://127.0.0.1:1' }, { timeoutMs: 30_000 });
        expect(r.code, `${verb} ${url}`).toBe(2);
        expect(r.stderr).toContain(`CONFIG_INVALID: setting ENGINE_URL from ENGINE_URL (environment) = "${shown}" is invalid: must not carry a user or password`);
        expect(r.stderr).toMatch(/ENGINE_API_KEY/);
        expect(r.stdout + r.stderr).not.toContain('hunter2');
      }
    }
    const query = await runCli(['config'], { ENGINE_URL: 'http://gpu-box:8000/v1?api_key=hunter2' });
    expect(query.code).toBe(2);
    expect(query.stderr).toContain('"http://gpu-box:8000/v1?api_key=***" is invalid: must not have a query or fragment');
    const flag = await runCli(['worker', '--engine-url', 'http://a:hunter2@gpu-box:8000'], { REDIS_URL: 'redis://127.0.0.1:1' }, { timeoutMs: 30_000 });
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain('from --engine-url = "http://a:***@gpu-box:8000"');
    expect(flag.stderr).not.toContain('hunter2');
  }, 120_000);
});

describe('redactUrl', () => {
  it('masks only secrets and leaves the rest as written, parseable or not', () => {
    expect(redactUrl('redis://127.0.0.1:6379')).toBe('redis://127.0.0.1:6379');
    expect(redactUrl('redis://:pw@host:6379/0')).toBe('redis://:***@host:6379/0');
    expect(redactUrl('rediss://user:p%40ss:w@host')).toBe('rediss://user:***@host');
    expect(redactUrl('redis://user@host')).toBe('redis://user@host');
    expect(redactUrl('https://token@host/x')).toBe('https://***@host/x');
    expect(redactUrl('HTTP://Host:80/Path/')).toBe('HTTP://Host:80/Path/');
    expect(redactUrl('http://exa mple:8000')).toBe('http://exa mple:8000');
    expect(redactUrl('http://u:p@exa mple:8000')).toBe('http://u:***@exa mple:8000');
    expect(redactUrl('http://h/p?api_key=1&x=2&Password=3#frag')).toBe('http://h/p?api_key=***&x=2&Password=***#frag');
    expect(redactUrl('not a url')).toBe('not a url');
  });
});
