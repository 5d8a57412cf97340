/**
 * The dashboard over HTTP, against a real Redis holding real BullMQ jobs: /metrics and /health,
 * job names and data as the board's API hands them to the page, security headers, credentials
 * on every route (basic and bearer), read-only mode enforced by the server, and the refusal to
 * listen beyond loopback without credentials (also as `docbatch dashboard`, exit 2).
 * Who it answers at all: its own Host names only (DNS rebinding), and changes only from its own
 * pages with JSON bodies (cross-site form posts), checked before credentials.
 * The browser side is test/ui/dashboard.test.ts.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { connectRedis, openQueue, type TypedQueue } from '../../queues/connect.ts';
import { unitJobId, writeJobId } from '../../queues/contracts.ts';
import { inferQueueFor } from '../../queues/routes.ts';
import { isDocbatchError } from '../../src/errors.ts';
import { assertSafeBinding, authorized, isLoopback, readAuthorized } from '../../src/observe/dashboard-auth.ts';
import { cutShort, errorCodeOf, jobTitle, unitData } from '../../src/observe/dashboard-format.ts';
import { startDashboard, type Dashboard, type DashboardConfig } from '../../src/observe/dashboard.ts';
import { silentLogger } from '../../src/observe/log.ts';
import { deletePrefix, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.ts';
import { startRedisProxy } from '../helpers/redis-proxy.ts';
import { parseMetrics, rawRequest, sumOf } from './fixtures.ts';

const prefix = uniquePrefix(import.meta.filename);
const root = resolve(import.meta.dirname, '../..');
const redis = connectRedis(TEST_REDIS_URL, 'worker');
const dashboards: Dashboard[] = [];
let infer: TypedQueue<'infer'>;
let write: TypedQueue<'write'>;
const DOC = 'd0123456789abcdef0123';

function config(overrides: Partial<DashboardConfig> = {}): DashboardConfig {
  return {
    redisUrl: TEST_REDIS_URL,
    prefix,
    attempts: 1,
    dashboardHost: '127.0.0.1',
    dashboardPort: 0,
    dashboardPublicNames: [],
    dashboardUser: undefined,
    dashboardPassword: undefined,
    dashboardToken: undefined,
    dashboardReadOnly: false,
    ...overrides,
  };
}

async function open(overrides: Partial<DashboardConfig> = {}): Promise<Dashboard> {
  const d = await startDashboard(config(overrides), silentLogger());
  dashboards.push(d);
  return d;
}

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

beforeAll(async () => {
  const target = { redisUrl: TEST_REDIS_URL, prefix, attempts: 1 };
  infer = openQueue('infer', target, redis);
  write = openQueue('write', target, redis);
  // Nobody consumes these queues: the jobs stay waiting, as on a board with no worker running.
  for (let unit = 0; unit < 3; unit++) {
    await infer.add('page', { docId: DOC, gen: 1, unit }, { jobId: unitJobId(DOC, 1, unit) });
  }
  await write.add('document', { docId: DOC, gen: 1 }, { jobId: writeJobId(DOC, 1) });
});

afterAll(async () => {
  for (const d of dashboards) await d.close();
  await infer?.close();
  await write?.close();
  redis.disconnect();
  await deletePrefix(prefix);
});

describe('an open dashboard (loopback, no credentials)', () => {
  let dash: Dashboard;
  beforeAll(async () => {
    dash = await open();
  });

  it('serves /metrics with the jobs of every queue by state', async () => {
    const res = await fetch(`${dash.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const samples = parseMetrics(await res.text());
    expect(sumOf(samples, 'docbatch_queue_jobs', { queue: 'infer', state: 'waiting' })).toBe(3);
    expect(sumOf(samples, 'docbatch_queue_jobs', { queue: 'write', state: 'waiting' })).toBe(1);
    expect(sumOf(samples, 'docbatch_queue_jobs', { queue: 'infer', state: 'failed' })).toBe(0);
    expect(sumOf(samples, 'docbatch_redis_up')).toBe(1);
  });

  it('serves /health: Redis answers and every queue can be counted', async () => {
    const res = await fetch(`${dash.url}/health`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { ok: boolean; checks: Record<string, { ok: boolean; queues?: Record<string, unknown> }> };
    expect(body.ok).toBe(true);
    expect(body.checks.redis!.ok).toBe(true);
    expect(Object.keys(body.checks.queues!.queues!)).toEqual(['infer', 'write']);
  });

  it('lists the queues with job names that say which page of which document', async () => {
    const res = await fetch(`${dash.url}/api/queues?activeQueue=infer&status=waiting&page=1&jobsPerPage=10`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { queues: Array<{ name: string; readOnlyMode: boolean; jobs: Array<{ name: string; data: Record<string, unknown> }> }> };
    expect(body.queues.map((q) => q.name)).toEqual(['infer', 'write']);
    const jobs = body.queues[0]!.jobs;
    expect(jobs.map((j) => j.name).sort()).toEqual([`page 1 · ${DOC}`, `page 2 · ${DOC}`, `page 3 · ${DOC}`]);
    expect(jobs[0]!.data).toMatchObject({ docId: DOC, gen: 1 });
    expect(body.queues[0]!.readOnlyMode).toBe(false);
  });

  it('sends a Content-Security-Policy and loads nothing from outside', async () => {
    const res = await fetch(`${dash.url}/`);
    expect(res.status).toBe(200);
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const html = await res.text();
    expect(html).toContain('<title>docbatch</title>');
    expect(html).not.toMatch(/https?:\/\/(?!www\.w3\.org)/);
  });

  it('says CONFIG_INVALID when its port is taken', async () => {
    const err = await startDashboard(config({ dashboardPort: dash.port }), silentLogger()).then(() => null, (e: unknown) => e);
    expect(isDocbatchError(err) && err.code).toBe('CONFIG_INVALID');
    expect(String((err as Error).message)).toMatch(/cannot serve the dashboard on 127\.0\.0\.1:\d+: EADDRINUSE/);
  });

  it('can pause and resume a queue (what read-only mode forbids)', async () => {
    expect((await fetch(`${dash.url}/api/queues/infer/pause`, { method: 'PUT' })).ok).toBe(true);
    expect(await infer.isPaused()).toBe(true);
    expect((await fetch(`${dash.url}/api/queues/infer/resume`, { method: 'PUT' })).ok).toBe(true);
    expect(await infer.isPaused()).toBe(false);
  });
});

describe('a dashboard with credentials', () => {
  let dash: Dashboard;
  beforeAll(async () => {
    dash = await open({ dashboardUser: 'ops', dashboardPassword: 's3cret pass', dashboardToken: 'tok-0123456789' });
  });

  it('refuses every route without credentials, with a challenge', async () => {
    for (const path of ['/', '/queue/infer', '/api/queues', '/metrics', '/health', '/static/favicon-32x32.png', '/nonexistent']) {
      const res = await fetch(`${dash.url}${path}`);
      expect(res.status, path).toBe(401);
      expect(res.headers.get('www-authenticate'), path).toMatch(/^Basic realm="docbatch dashboard".*, Bearer realm/);
    }
    expect((await fetch(`${dash.url}/api/queues/infer/pause`, { method: 'PUT' })).status).toBe(401);
    expect(await infer.isPaused()).toBe(false);
  });

  it('refuses wrong credentials', async () => {
    for (const authorization of [basic('ops', 'wrong'), basic('root', 's3cret pass'), basic('ops', ''), 'Bearer tok-wrong', 'Bearer ', 'Basic', 'Digest abc', basic('ops', 's3cret pass').slice(0, -2)]) {
      expect((await fetch(`${dash.url}/api/queues`, { headers: { authorization } })).status, authorization).toBe(401);
    }
  });

  it('accepts the user and password, or the token', async () => {
    expect((await fetch(`${dash.url}/api/queues`, { headers: { authorization: basic('ops', 's3cret pass') } })).status).toBe(200);
    expect((await fetch(`${dash.url}/metrics`, { headers: { authorization: 'Bearer tok-0123456789' } })).status).toBe(200);
    expect((await fetch(`${dash.url}/health`, { headers: { authorization: 'bearer tok-0123456789' } })).status).toBe(200);
  });
});

describe('a read token (DASHBOARD_READ_TOKEN)', () => {
  it('opens the figures only: GET /metrics, /health and /api/backlog; never jobs, documents or a change', async () => {
    const dash = await open({ dashboardUser: 'ops', dashboardPassword: 's3cret pass', dashboardReadToken: 'read-0123456789' });
    const read = { authorization: 'Bearer read-0123456789' };
    for (const path of ['/metrics', '/health', '/api/backlog', '/api/backlog?queue=infer']) {
      expect((await fetch(`${dash.url}${path}`, { headers: read })).status, path).toBe(200);
    }
    for (const path of ['/', '/api/queues', '/queue/infer', '/documents', '/api/documents', `/api/documents/${DOC}`, '/metrics/', '/nonexistent']) {
      expect((await fetch(`${dash.url}${path}`, { headers: read })).status, path).toBe(401);
    }
    expect((await fetch(`${dash.url}/api/queues/infer/pause`, { method: 'PUT', headers: read })).status).toBe(401);
    expect((await fetch(`${dash.url}/api/backlog`, { method: 'POST', headers: read })).status).toBe(401);
    expect(await infer.isPaused()).toBe(false);
    // Not as a password, nor in another scheme; the admin credentials still open everything.
    expect((await fetch(`${dash.url}/metrics`, { headers: { authorization: basic('ops', 'read-0123456789') } })).status).toBe(401);
    expect((await fetch(`${dash.url}/api/queues`, { headers: { authorization: basic('ops', 's3cret pass') } })).status).toBe(200);
  });

  it('alone, lets the dashboard listen beyond loopback with everything but the figures closed', async () => {
    expect(() => assertSafeBinding('0.0.0.0', { readToken: 'r' })).not.toThrow();
    const dash = await open({ dashboardReadToken: 'read-only-token' });
    expect((await fetch(`${dash.url}/api/queues`)).status).toBe(401);
    expect((await fetch(`${dash.url}/api/queues`, { headers: { authorization: 'Bearer read-only-token' } })).status).toBe(401);
    expect((await fetch(`${dash.url}/metrics`, { headers: { authorization: 'Bearer read-only-token' } })).status).toBe(200);
    expect(authorized('Bearer read-only-token', { readToken: 'read-only-token' })).toBe(false);
    expect(readAuthorized('bearer  read-only-token ', { readToken: 'read-only-token' })).toBe(true);
    expect(readAuthorized('Bearer tok', { token: 'tok' })).toBe(false);
  });
});

describe('read-only mode', () => {
  it('is enforced by the server: no pause, retry, clean or add', async () => {
    const dash = await open({ dashboardReadOnly: true, dashboardToken: 'ro-token' });
    const headers = { authorization: 'Bearer ro-token', 'content-type': 'application/json' };
    const queues = (await (await fetch(`${dash.url}/api/queues`, { headers })).json()) as { queues: Array<{ readOnlyMode: boolean; allowRetries: boolean }> };
    expect(queues.queues.every((q) => q.readOnlyMode && !q.allowRetries)).toBe(true);
    const attempts: Array<[string, string]> = [
      ['PUT', '/api/queues/infer/pause'],
      ['PUT', '/api/queues/infer/retry/failed'],
      ['PUT', '/api/queues/infer/clean/completed'],
      ['PUT', `/api/queues/infer/${unitJobId(DOC, 1, 0)}/clean`],
      ['POST', '/api/queues/infer/add'],
      ['PUT', '/api/queues/infer/empty'],
    ];
    for (const [method, path] of attempts) {
      const res = await fetch(`${dash.url}${path}`, { method, headers, body: method === 'POST' ? JSON.stringify({ name: 'page', data: {} }) : null });
      expect(res.status, `${method} ${path}`).toBe(405);
    }
    expect(await infer.isPaused()).toBe(false);
    expect(await infer.getJobCounts('waiting')).toEqual({ waiting: 3 });
  });
});

describe('binding beyond loopback', () => {
  it('tells loopback addresses from the rest', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1']) expect(isLoopback(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '192.168.1.10', '10.0.0.2', 'dashboard.internal', '::ffff:10.0.0.1', '128.0.0.1']) expect(isLoopback(h), h).toBe(false);
  });

  it('refuses without credentials and allows with them', async () => {
    for (const host of ['0.0.0.0', '::', '10.1.2.3']) {
      const err = await startDashboard(config({ dashboardHost: host }), silentLogger()).then(
        () => null,
        (e: unknown) => e,
      );
      expect(isDocbatchError(err) && err.code).toBe('CONFIG_INVALID');
      expect(String((err as Error).message)).toMatch(/refusing to serve the dashboard on .* without credentials/);
    }
    expect(() => assertSafeBinding('0.0.0.0', { token: 't' })).not.toThrow();
    expect(() => assertSafeBinding('0.0.0.0', { user: 'u', password: 'p' })).not.toThrow();
    expect(() => assertSafeBinding('0.0.0.0', { user: 'u' })).toThrow(/without credentials/);
  });

  it('`docbatch dashboard --host 0.0.0.0` exits 2 with the reason', async () => {
    const child = spawn(resolve(root, 'bin/docbatch'), ['dashboard', '--host', '0.0.0.0', '--port', '0'], {
      cwd: root,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, REDIS_URL: TEST_REDIS_URL, DOCBATCH_PREFIX: prefix },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const [code] = (await once(child, 'exit')) as [number | null];
    clearTimeout(timer);
    expect(code).toBe(2);
    expect(stderr).toMatch(/CONFIG_INVALID: refusing to serve the dashboard on 0\.0\.0\.0 without credentials/);
    expect(stderr).toMatch(/DASHBOARD_USER.*DASHBOARD_PASSWORD.*DASHBOARD_TOKEN/);
  });

  it('checks the Authorization header in constant time for both schemes', () => {
    const c = { user: 'u', password: 'p:with:colons', token: 't' };
    expect(authorized(basic('u', 'p:with:colons'), c)).toBe(true);
    expect(authorized(basic('u', 'p'), c)).toBe(false);
    expect(authorized('Bearer t', c)).toBe(true);
    expect(authorized(undefined, c)).toBe(false);
    expect(authorized('Bearer t', { user: 'u', password: 'p' })).toBe(false);
    expect(authorized(undefined, {})).toBe(true);
  });
});

describe('job formatting', () => {
  it('names units and write jobs, with the error code once failed', () => {
    expect(jobTitle({ name: 'page', data: { docId: DOC, unit: 6, gen: 1 } })).toBe(`page 7 · ${DOC}`);
    expect(jobTitle({ name: 'chunk', data: { docId: DOC, unit: 4, gen: 1 }, failedReason: 'CONTEXT_TOO_LONG: 4000 > 1500' })).toBe(`chunk 4 · ${DOC} · CONTEXT_TOO_LONG`);
    expect(jobTitle({ name: 'reduce', data: { docId: DOC, unit: 9, gen: 1 } })).toBe(`reduce 9 · ${DOC}`);
    expect(jobTitle({ name: 'document', data: { docId: DOC, gen: 1 } })).toBe(`document · ${DOC}`);
    expect(jobTitle({ name: 'other', data: null })).toBe('other');
    expect(jobTitle({ name: 'page', data: { docId: 'x'.repeat(500), unit: 0 } }).length).toBeLessThanOrEqual(121);
  });

  it('reads the code of a failure reason', () => {
    expect(errorCodeOf('ENGINE_OOM: out of memory')).toBe('ENGINE_OOM');
    expect(errorCodeOf('job stalled more than allowable limit')).toBeNull();
    expect(errorCodeOf(undefined)).toBeNull();
  });

  it('cuts long strings, long lists and deep nesting', () => {
    const cut = cutShort({ text: 'a'.repeat(1000), list: Array.from({ length: 50 }, (_, i) => i), deep: { a: { b: { c: { d: { e: 1 } } } } } }) as Record<string, unknown>;
    expect(cut.text).toBe(`${'a'.repeat(160)}… (840 more characters)`);
    expect((cut.list as unknown[]).length).toBe(21);
    expect((cut.list as unknown[])[20]).toBe('… 30 more items');
    expect(JSON.stringify(cut.deep)).toBe('{"a":{"b":{"c":"{1 fields}"}}}');
    expect(unitData({ gen: 1, unit: 2, docId: DOC, reduce: { reduce: 9 } })).toEqual({ docId: DOC, unit: 2, gen: 1, reduce: { reduce: 9 } });
  });
});

describe('who the dashboard answers (before credentials)', () => {
  let dash: Dashboard;
  let host: string;
  beforeAll(async () => {
    dash = await open();
    host = new URL(dash.url).host;
  });

  it('answers only to its own Host names: a rebound name gets 403 on every route', async () => {
    for (const path of ['/', '/queue/infer', '/api/queues', '/metrics', '/health', '/static/favicon-32x32.png']) {
      const res = await rawRequest(`${dash.url}${path}`, { host: `rebind.attacker.example:${dash.port}` });
      expect(res.status, path).toBe(403);
      expect(res.text, path).toMatch(/does not answer to that Host name .*DASHBOARD_PUBLIC_NAMES/);
    }
    for (const name of [host, `localhost:${dash.port}`, 'localhost', `LOCALHOST.:${dash.port}`, `[::1]:${dash.port}`, '127.0.0.1']) {
      expect((await rawRequest(`${dash.url}/api/queues`, { host: name })).status, name).toBe(200);
    }
    for (const name of [`127.0.0.1.attacker.example:${dash.port}`, `localhost.attacker.example`]) {
      expect((await rawRequest(`${dash.url}/api/queues`, { host: name })).status, name).toBe(403);
    }
    // Malformed or missing: refused, by Node's parser (400) or by the guard (403).
    for (const name of [`user@127.0.0.1:${dash.port}`, '127.0.0.1/x', 'a b', '127.0.0.1:port', null]) {
      expect((await rawRequest(`${dash.url}/api/queues`, { host: name })).status, String(name)).toBeOneOf([400, 403]);
    }
  });

  it('answers to the names listed in DASHBOARD_PUBLIC_NAMES (behind a proxy)', async () => {
    const proxied = await open({ dashboardPublicNames: ['dash.example.com', '*.corp.example'] });
    for (const name of ['dash.example.com', 'DASH.example.com:443', 'board.corp.example', 'a.b.corp.example']) {
      expect((await rawRequest(`${proxied.url}/health`, { host: name })).status, name).toBe(200);
    }
    for (const name of ['corp.example', 'evilcorp.example', 'dash.example.com.evil', 'example.com']) {
      expect((await rawRequest(`${proxied.url}/health`, { host: name })).status, name).toBe(403);
    }
  });

  // The body a form with enctype="text/plain" sends: name=value, shaped so that Bull Board,
  // which parses any body as JSON, reads a job out of it.
  const formBody = '{"name":"injected","data":{"x":"=1"}}';

  it('refuses a cross-site request that changes something (Origin, Sec-Fetch-Site), and a body that is not JSON', async () => {
    const waitingBefore = await infer.getWaitingCount();
    const attempts: Array<[string, Record<string, string>, number]> = [
      ['another site', { origin: 'http://attacker.example', 'sec-fetch-site': 'cross-site', 'content-type': 'text/plain' }, 403],
      ['another site, Origin only', { origin: 'http://attacker.example', 'content-type': 'text/plain' }, 403],
      ['another port of localhost (same-site)', { origin: `http://localhost:${dash.port + 1}`, 'sec-fetch-site': 'same-site', 'content-type': 'text/plain' }, 403],
      ['a sandboxed frame (Origin null)', { origin: 'null', 'content-type': 'application/json' }, 403],
      ['Sec-Fetch-Site alone', { 'sec-fetch-site': 'cross-site', 'content-type': 'application/json' }, 403],
      ['no Origin, text/plain (a browser before Origin on forms)', { 'content-type': 'text/plain' }, 415],
      ['no Origin, a form encoding', { 'content-type': 'application/x-www-form-urlencoded' }, 415],
    ];
    for (const [what, headers, status] of attempts) {
      const res = await rawRequest(`${dash.url}/api/queues/infer/add`, { method: 'POST', headers, body: formBody });
      expect(res.status, what).toBe(status);
    }
    // PUTs without a body are checked by their origin too.
    const pause = await rawRequest(`${dash.url}/api/queues/infer/pause`, { method: 'PUT', headers: { origin: 'http://attacker.example' } });
    expect(pause.status).toBe(403);
    expect(await infer.isPaused()).toBe(false);
    expect(await infer.getWaitingCount()).toBe(waitingBefore);
  });

  it('accepts the same request from its own page (same origin, JSON), and from a client that is not a browser', async () => {
    const waitingBefore = await infer.getWaitingCount();
    const own = await rawRequest(`${dash.url}/api/queues/infer/add`, {
      method: 'POST',
      headers: { origin: `http://${host}`, 'sec-fetch-site': 'same-origin', 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'own-page', data: {} }),
    });
    expect(own.status).toBe(200);
    const script = await fetch(`${dash.url}/api/queues/infer/add`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'script', data: {} }) });
    expect(script.status).toBe(200);
    expect(await infer.getWaitingCount()).toBe(waitingBefore + 2);
    for (const job of await infer.getJobs(['waiting'])) if (['own-page', 'script'].includes(String(job.name))) await job.remove();
  });

  it('checks Host before credentials, so a rebound page is not asked for them', async () => {
    const guarded = await open({ dashboardToken: 'tok-host' });
    const res = await rawRequest(`${guarded.url}/`, { host: 'rebind.attacker.example' });
    expect(res.status).toBe(403);
    expect((await rawRequest(`${guarded.url}/health`, { headers: { authorization: 'Bearer tok-host' } })).status).toBe(200);
  });
});

describe('a model named after the dashboard started', () => {
  it('gets its queue shown in Bull Board, /metrics and the job links, before the write queue', async () => {
    const dash = await open({ dashboardUser: 'admin', dashboardPassword: 'pw-queues', dashboardReadOnly: true });
    const auth = { authorization: basic('admin', 'pw-queues') };
    const queue = inferQueueFor('acme/late-model-7b');
    // What `enqueue --model acme/late-model-7b` leaves: the queue in the prefix's set, units fed as jobs.
    const late = openQueue('infer', { redisUrl: TEST_REDIS_URL, prefix, attempts: 1 }, redis, queue);
    try {
      await redis.sadd(`${prefix}:queues`, queue);
      for (let unit = 0; unit < 2; unit++) await late.add('page', { docId: DOC, gen: 1, unit }, { jobId: unitJobId(DOC, 1, unit) });
      await new Promise((r) => setTimeout(r, 1100)); // past the dashboard's one look a second

      const metrics = parseMetrics(await (await fetch(`${dash.url}/metrics`, { headers: auth })).text());
      expect(sumOf(metrics, 'docbatch_queue_jobs', { queue, state: 'waiting' })).toBe(2);
      const board = (await (await fetch(`${dash.url}/api/queues?activeQueue=${queue}&status=waiting&page=1&jobsPerPage=10`, { headers: auth })).json()) as {
        queues: Array<{ name: string; readOnlyMode: boolean; jobs: Array<{ name: string }> }>;
      };
      expect(board.queues.map((q) => q.name)).toEqual(['infer', queue, 'write']);
      const shown = board.queues[1]!;
      expect(shown.readOnlyMode).toBe(true);
      expect(shown.jobs.map((j) => j.name).sort()).toEqual([`page 1 · ${DOC}`, `page 2 · ${DOC}`]);
      expect((await fetch(`${dash.url}/queue/${queue}`, { headers: auth })).status).toBe(200);
      // Read-only holds for the new queue too.
      expect((await fetch(`${dash.url}/api/queues/${queue}/pause`, { method: 'PUT', headers: auth })).status).toBe(405);
      expect(await late.isPaused()).toBe(false);
    } finally {
      await redis.srem(`${prefix}:queues`, queue);
      await late.obliterate({ force: true });
      await late.close();
    }
  });
});

describe('while Redis is away', () => {
  it('answers 503 in a sentence on its own pages and API, with no stack trace on stderr, and recovers', async () => {
    const proxy = await startRedisProxy();
    const errors: unknown[] = [];
    const spy = vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => void errors.push(args));
    let dash: Dashboard | undefined;
    try {
      dash = await open({ redisUrl: proxy.url });
      expect((await fetch(`${dash.url}/documents`)).status).toBe(200);
      await proxy.down();
      const page = await fetch(`${dash.url}/documents`);
      expect(page.status).toBe(503);
      expect(await page.text()).toMatch(/^Redis does not answer/);
      const api = await fetch(`${dash.url}/api/documents`);
      expect(api.status).toBe(503);
      expect(((await api.json()) as { error: string }).error).toMatch(/^Redis does not answer/);
      expect((await fetch(`${dash.url}/documents/${DOC}`)).status).toBe(503);
      expect(errors).toEqual([]);
      await proxy.up();
      const end = Date.now() + 15_000;
      let status = 0;
      while (Date.now() < end && (status = (await fetch(`${dash.url}/documents`)).status) !== 200) await new Promise((r) => setTimeout(r, 250));
      expect(status).toBe(200);
    } finally {
      spy.mockRestore();
      await dash?.close();
      await proxy.close();
    }
  }, 40_000);
});
