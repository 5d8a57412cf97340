/**
 * Security checklist, "never log credentials", as an operator runs docbatch: a private Redis
 * with an ACL user and a password (rediss:// aside, the URL is where they live), an engine that
 * takes an API key, an encrypted PDF, the dashboard behind basic auth with a read token, S3 keys
 * in the environment; worker, writer, dashboard, engine and enqueue as real processes, and Redis
 * stopped and started again in the middle so the long-running ones say it went away and came
 * back. Not one of those secrets may show in anything docbatch prints or serves: every process's
 * stdout and stderr, `status` (text and --json, the document too), the dashboard's pages and
 * APIs (while the document waits, its record holding the PDF password, and once written), the
 * outputs and reports; and the password leaves Redis with the write.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { BIN, runCli } from '../helpers/cli.ts';

const SECRETS = {
  redisPassword: 'Redis-Pw-60417',
  engineKey: 'sk-engine-60417',
  pdfPassword: 'Pdf-Pw-60417',
  dashboardPassword: 'Dash-Pw-60417',
  dashboardToken: 'Dash-Tok-60417',
  readToken: 'Read-Tok-60417',
  awsSecret: 'Aws-Secret-60417',
  awsSession: 'Aws-Session-60417',
};

interface Running {
  child: ChildProcess;
  out: string[];
}

const dir = mkdtempSync(join(tmpdir(), 'docbatch-secrets-'));
const running: Running[] = [];
let redis: ChildProcess | undefined;
let port = 0;
let env: Record<string, string>;
let everything = '';

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const p = (server.address() as { port: number }).port;
  await new Promise<void>((ok) => server.close(() => ok()));
  return p;
}

/**
 * A redis-server on `port` with an ACL user `ops` and a password; AOF in `dir`, so a restart
 * keeps the data. (`user default off` is not used: Redis 7.0 then refuses every MULTI/EXEC of
 * the AOF as it loads it, NOPERM, and comes back empty.)
 */
async function startRedis(): Promise<void> {
  const acl = join(dir, 'users.acl');
  writeFileSync(acl, `user default on >admin-60417 ~* &* +@all\nuser ops on >${SECRETS.redisPassword} ~* &* +@all\n`);
  redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--dir', dir, '--aclfile', acl], { stdio: 'ignore' });
  for (let i = 0; ; i++) {
    const admin = new Redis({ port, username: 'ops', password: SECRETS.redisPassword, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    admin.on('error', () => {});
    const up = await admin.connect().then(() => admin.ping(), () => null);
    admin.disconnect();
    if (up) return;
    if (i > 100 || redis.exitCode !== null) throw new Error('redis-server did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function stopRedis(): Promise<void> {
  if (!redis || redis.exitCode !== null) return;
  const exited = once(redis, 'exit');
  redis.kill('SIGTERM');
  await exited;
}

/** A docbatch process left running; its output kept. */
function start(args: string[], extra: Record<string, string> = {}): Running {
  const child = spawn(BIN, args, { env: { PATH: process.env.PATH, ...env, ...extra }, stdio: ['ignore', 'pipe', 'pipe'] });
  const r = { child, out: [] as string[] };
  child.stdout!.on('data', (d: Buffer) => r.out.push(d.toString()));
  child.stderr!.on('data', (d: Buffer) => r.out.push(d.toString()));
  running.push(r);
  return r;
}

async function waitFor<T>(what: string, probe: () => T | null | undefined | Promise<T | null | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== null && v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const firstUrl = (r: Running) => /https?:\/\/127\.0\.0\.1:\d+/.exec(r.out.join(''))?.[0];

async function cli(args: string[]): Promise<string> {
  const r = await runCli(args, env, { timeoutMs: 60_000 });
  return r.stdout + r.stderr;
}

async function dashboardPages(url: string, docId: string): Promise<string> {
  const basic = `Basic ${Buffer.from(`admin:${SECRETS.dashboardPassword}`).toString('base64')}`;
  const pages = ['/', '/documents', `/documents/${docId}`, '/api/documents', `/api/documents/${docId}`, '/api/workers', '/api/queues', '/api/backlog', '/metrics', '/health'];
  const bodies = await Promise.all(pages.map(async (path) => `${path}: ${await (await fetch(`${url}${path}`, { headers: { authorization: basic } })).text()}`));
  // The read token's own view, and what a request without credentials is told.
  bodies.push(await (await fetch(`${url}/api/backlog`, { headers: { authorization: `Bearer ${SECRETS.readToken}` } })).text());
  bodies.push(await (await fetch(`${url}/documents`)).text());
  return bodies.join('\n');
}

beforeAll(async () => {
  port = await freePort();
  await startRedis();
  env = {
    REDIS_URL: `redis://ops:${SECRETS.redisPassword}@127.0.0.1:${port}/0`,
    DOCBATCH_PREFIX: 'dbt-secrets',
    BLOB_DIR: join(dir, 'blobs'),
    OUT_DIR: join(dir, 'out'),
    LOG_FORMAT: 'json',
    LOG_LEVEL: 'debug',
    ENGINE_API_KEY: SECRETS.engineKey,
    PDF_PASSWORD: SECRETS.pdfPassword,
    DASHBOARD_USER: 'admin',
    DASHBOARD_PASSWORD: SECRETS.dashboardPassword,
    DASHBOARD_TOKEN: SECRETS.dashboardToken,
    DASHBOARD_READ_TOKEN: SECRETS.readToken,
    AWS_ACCESS_KEY_ID: 'AKIASECRETS60417',
    AWS_SECRET_ACCESS_KEY: SECRETS.awsSecret,
    AWS_SESSION_TOKEN: SECRETS.awsSession,
    AWS_REGION: 'us-east-1',
  };
});

afterAll(async () => {
  for (const r of running) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
  await Promise.all(running.map((r) => (r.child.exitCode === null && r.child.signalCode === null ? once(r.child, 'exit') : null)));
  await stopRedis();
  rmSync(dir, { recursive: true, force: true });
});

describe('secrets are never printed or served', () => {
  it('by any process, status, the dashboard or the outputs, through a Redis restart', async () => {
    const plain = join(dir, 'plain.pdf');
    writeFileSync(plain, numberedPdf(3, 60417));
    const pdf = join(dir, 'locked.pdf');
    const made = spawnSync('mutool', ['clean', '-E', 'aes-256', '-U', SECRETS.pdfPassword, '-O', 'owner-60417', plain, pdf], { encoding: 'utf8' });
    expect(made.status, `mutool (mupdf-tools) is needed to encrypt a PDF: ${made.stderr}`).toBe(0);

    const engine = start(['engine', '--port', '0', '--api-key', SECRETS.engineKey, '--speed', '50', '--output-tokens-min', '10', '--output-tokens-max', '20']);
    const engineUrl = await waitFor('the engine', () => firstUrl(engine));
    const dashboard = start(['dashboard', '--port', '0']);
    const dashboardUrl = await waitFor('the dashboard', () => firstUrl(dashboard));

    // Queued with nobody working: the record holds the PDF password now.
    const enqueued = await runCli(['enqueue', pdf], env, { timeoutMs: 60_000 });
    expect(enqueued.code, enqueued.stderr).toBe(0);
    everything += enqueued.stdout + enqueued.stderr;
    const docId = enqueued.stdout.split(/\s+/)[0]!;
    expect(docId).toMatch(/^d[0-9a-f]{20}$/);
    everything += await cli(['status']);
    everything += await cli(['status', '--json', docId]);
    everything += await dashboardPages(dashboardUrl, docId);

    const worker = start(['worker', '--engine-url', engineUrl, '--metrics-port', '0']);
    start(['writer']);
    await waitFor('a worker taking work', () => /"msg":"worker started/.test(worker.out.join('')));

    // Redis goes away and comes back: each long-running process says so, with the URL.
    await stopRedis();
    await waitFor('the worker saying Redis is away', () => worker.out.join('').includes('Redis is away'));
    await startRedis();

    const status = await waitFor(
      'the document written',
      async () => {
        const r = await runCli(['status', '--json', docId], env, { timeoutMs: 30_000 });
        const state = r.stdout.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { state?: string }).state);
        return state.includes('written') ? r : null;
      },
      90_000,
    ).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}; the processes said:\n${running.map((r) => `${r.child.spawnargs.slice(1).join(' ')}:\n${r.out.join('')}`).join('\n')}`);
    });
    everything += status.stdout + status.stderr;
    everything += await cli(['status']);
    everything += await cli(['config']);
    everything += await dashboardPages(dashboardUrl, docId);
    const out = join(dir, 'out');
    const files = readdirSync(out);
    expect(files.sort()).toEqual(['locked.md', 'locked.report.json']);
    for (const f of files) everything += readFileSync(join(out, f), 'utf8');

    // The record is lean once written: no password left in Redis.
    const admin = new Redis({ port, username: 'ops', password: SECRETS.redisPassword });
    try {
      expect(await admin.hget(`dbt-secrets:doc:${docId}`, 'password')).toBeNull();
    } finally {
      admin.disconnect();
    }

    for (const r of running) r.child.kill('SIGTERM');
    await Promise.all(running.map((r) => (r.child.exitCode === null && r.child.signalCode === null ? once(r.child, 'exit') : null)));
    for (const r of running) everything += r.out.join('');
    // The logs did say what happened, so there was something to leak.
    expect(everything).toMatch(/Redis is away/);
    expect(everything).toContain(`redis://ops:***@127.0.0.1:${port}/0`);
    expect(everything).toMatch(/"msg":"document written"/);
    for (const [name, secret] of Object.entries(SECRETS)) expect(everything.includes(secret), `${name} was printed or served`).toBe(false);
  }, 180_000);
});
