/**
 * The dashboard in a real browser (Debian's Chromium driven by playwright-core) over a real run:
 * real Redis, the engine emulator, a worker and the writer. One chat chunk does not fit the
 * engine's small context and fails for good (CONTEXT_TOO_LONG); the rest completes. The page
 * lists the queues, shows finished and failed jobs with the error code, keeps markup in job
 * data and failure reasons as text, and asks for credentials when they are configured. Its own
 * UI still pauses, resumes and adds jobs, while a page on another site cannot (a text/plain form
 * post, a no-cors fetch) and a rebound name (DNS rebinding) gets nothing.
 *
 * A screenshot is taken during a run (jobs active and waiting). It goes to a temp dir, or to
 * DOCBATCH_SCREENSHOT when set: `DOCBATCH_SCREENSHOT=docs/img/dashboard.png npx vitest run test/ui`
 * regenerates the one in docs/operations.md.
 */
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { UnrecoverableError } from 'bullmq';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { connectRedis, openQueue, openWorker, type TypedQueue } from '../../queues/connect.ts';
import type { UnitJobData } from '../../queues/contracts.ts';
import { startDashboard, type Dashboard, type DashboardConfig } from '../../src/observe/dashboard.ts';
import { silentLogger } from '../../src/observe/log.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { deletePrefix, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.ts';
import { SMALL_CONTEXT, SMALL_IMAGE, writeInputs } from '../observe/fixtures.ts';
import { until } from '../helpers/until.ts';

const CHROMIUM = '/usr/bin/chromium';
// `rebind.test` resolves to 127.0.0.1 in this browser: what a DNS-rebinding attacker's name does.
const REBIND = 'rebind.test';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic', `--host-resolver-rules=MAP ${REBIND} 127.0.0.1`];
const XSS = '<img src="x" id="injected" onerror="window.__pwned=1">';

let p: Pipeline;
let browser: Browser;
const dashboards: Dashboard[] = [];
const contexts: BrowserContext[] = [];
let docA: string;
let docB: string;
let shotPath: string;

function dashboardConfig(overrides: Partial<DashboardConfig> = {}): DashboardConfig {
  return {
    redisUrl: p.config.redisUrl,
    prefix: p.config.prefix,
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

async function open(config: DashboardConfig): Promise<Dashboard> {
  const d = await startDashboard(config, silentLogger());
  dashboards.push(d);
  return d;
}

/** A page whose requests may go to this machine only (the dashboard must need nothing else). */
async function newPage(options: Parameters<Browser['newContext']>[0] = {}): Promise<{ page: Page; offsite: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 }, ...options });
  contexts.push(context);
  const offsite: string[] = [];
  await context.route('**/*', (route) => {
    const { hostname } = new URL(route.request().url());
    if (hostname === '127.0.0.1' || hostname === 'localhost' || hostname === REBIND) return route.continue();
    offsite.push(route.request().url());
    return route.abort();
  });
  return { page: await context.newPage(), offsite };
}

async function inferCounts(): Promise<Record<string, number>> {
  const queue = openQueue('infer', { ...p.config }, p.redis);
  try {
    return await queue.getJobCounts('active', 'waiting', 'completed', 'failed');
  } finally {
    await queue.close();
  }
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/ensure-chromium.sh`);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  p = await startPipeline({
    file: import.meta.filename,
    emulator: { speed: 20, maxModelLen: SMALL_CONTEXT },
    config: { imageSize: SMALL_IMAGE, initialInFlight: 2, maxInFlight: 4, batchSize: 2, attempts: 1 },
  });
  const a = await writeInputs(p.dir, { pages: 4, tag: 'ui-a' });
  const ids = acceptedIds(await p.enqueue([a.pdf, a.chat]));
  docA = ids[0]!;
  await p.wait(ids, 60_000);
}, 120_000);

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => {});
  await browser?.close();
  for (const d of dashboards) await d.close();
  await p?.stop();
});

describe('dashboard in a browser', () => {
  let dash: Dashboard;

  it('lists the docbatch queues', async () => {
    dash = await open(dashboardConfig());
    const { page, offsite } = await newPage();
    await page.goto(`${dash.url}/`);
    const nav = page.getByRole('navigation').or(page.locator('aside')).first();
    await expect.poll(async () => (await nav.textContent()) ?? '', { timeout: 15_000 }).toMatch(/infer[\s\S]*write/);
    await expect.poll(async () => (await page.textContent('body')) ?? '', { timeout: 15_000 }).toContain(`prefix ${p.config.prefix}`);
    expect(offsite).toEqual([]);
  });

  it('shows jobs active and waiting during a run (screenshot)', async () => {
    // A slow engine and a bigger document: units stay active and waiting long enough to look at,
    // even on a loaded machine (at speed 0.5 and 16 pages the run once ended before the page loaded).
    p.engine.setTiming({ speed: 0.2 });
    const b = await writeInputs(p.dir, { pages: 40, tag: 'ui-b' });
    docB = acceptedIds(await p.enqueue([b.pdf]))[0]!;
    await until('active and waiting units', async () => {
      const c = await inferCounts();
      return (c.active ?? 0) > 0 && (c.waiting ?? 0) > 0;
    });
    const { page } = await newPage();
    await page.goto(`${dash.url}/queue/infer`);
    const body = async () => (await page.textContent('body')) ?? '';
    await expect.poll(body, { timeout: 15_000 }).toMatch(new RegExp(`page \\d+ · ${docB}`));
    await expect.poll(body, { timeout: 15_000 }).toMatch(/ACTIVE\s*\d+/i);
    await expect.poll(body, { timeout: 15_000 }).toMatch(/WAITING\s*\d+/i);
    shotPath = resolve(process.env.DOCBATCH_SCREENSHOT ?? join(p.dir, 'dashboard.png'));
    await page.screenshot({ path: shotPath });
    expect((await stat(shotPath)).size).toBeGreaterThan(20_000);
    p.engine.setTiming({ speed: 50 });
    await p.wait([docB], 60_000);
  }, 120_000);

  it('shows a finished job with its page and document', async () => {
    const { page } = await newPage();
    await page.goto(`${dash.url}/queue/infer?status=completed`);
    // Newest first: the pages of the second document.
    await expect.poll(async () => (await page.textContent('body')) ?? '', { timeout: 15_000 }).toMatch(new RegExp(`page \\d+ · ${docB}`));
    const write = (await newPage()).page;
    await write.goto(`${dash.url}/queue/write?status=completed`);
    await expect.poll(async () => (await write.textContent('body')) ?? '', { timeout: 15_000 }).toContain(`document · ${docA}`);
    expect(await write.textContent('body')).toContain(`document · ${docB}`);
  });

  it('shows a failed job with its error code', async () => {
    const { page } = await newPage();
    await page.goto(`${dash.url}/queue/infer?status=failed`);
    const body = async () => (await page.textContent('body')) ?? '';
    await expect.poll(body, { timeout: 15_000 }).toMatch(/chunk \d+ · d[0-9a-f]+ · CONTEXT_TOO_LONG/);
    // The failure reason itself (BullMQ's failedReason, `CODE: message`): a failed job opens on its Error tab.
    await expect.poll(body, { timeout: 15_000 }).toMatch(/CONTEXT_TOO_LONG: .*maximum context length/);
  });
});

describe('markup in job data and failure reasons', () => {
  const prefix = uniquePrefix('dashboard-xss.test.ts');
  let dash: Dashboard | undefined;

  afterAll(async () => {
    // Closed before its keys go: nothing under the prefix is read or written after the delete.
    await dash?.close();
    await deletePrefix(prefix);
  });

  it('is shown as text, never turned into elements', async () => {
    const redis = connectRedis(TEST_REDIS_URL, 'worker');
    const target = { redisUrl: TEST_REDIS_URL, prefix, attempts: 1 };
    const queue = openQueue('infer', target, redis);
    const data = { docId: XSS, gen: 1, unit: 0, note: `${XSS}${'x'.repeat(400)}` } as UnitJobData;
    await queue.add('page', data, { jobId: 'xss-1' });
    const workerRedis = connectRedis(TEST_REDIS_URL, 'worker');
    const worker = openWorker('infer', async () => {
      throw new UnrecoverableError(`PAGE_TOO_LARGE: ${XSS}`);
    }, target, workerRedis);
    try {
      await until('the job to fail', async () => (await queue.getJobCounts('failed')).failed === 1);
    } finally {
      await worker.close();
      await queue.close();
      workerRedis.disconnect();
      redis.disconnect();
    }

    dash = await open({ ...dashboardConfig(), prefix });
    const { page } = await newPage();
    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await page.goto(`${dash.url}/queue/infer?status=failed`);
    const body = async () => (await page.textContent('body')) ?? '';
    // Error tab (a failed job opens on it): the reason with its markup, as characters.
    await expect.poll(body, { timeout: 15_000 }).toContain(`PAGE_TOO_LARGE: ${XSS}`);
    // Data tab: the long field is cut short, and the markup is there as characters too.
    await page.getByRole('button', { name: /^Data$/ }).or(page.getByRole('tab', { name: /^Data$/ })).first().click();
    await expect.poll(body, { timeout: 15_000 }).toContain('more characters');
    expect(await body()).toContain('onerror=');
    expect(await page.locator('#injected').count()).toBe(0);
    expect(await page.locator('img[src="x"]').count()).toBe(0);
    expect(await page.evaluate('typeof window.__pwned')).toBe('undefined');
    expect(dialogs).toEqual([]);
  });
});

describe('credentials in the browser', () => {
  it('loads with basic auth, and a request without credentials is refused', async () => {
    const dash = await open(dashboardConfig({ dashboardUser: 'ops', dashboardPassword: 'correct horse', dashboardToken: 'tok-123' }));
    const bare = await fetch(`${dash.url}/`);
    expect(bare.status).toBe(401);
    expect(bare.headers.get('www-authenticate')).toMatch(/^Basic /);
    const { page } = await newPage({ httpCredentials: { username: 'ops', password: 'correct horse' } });
    const res = await page.goto(`${dash.url}/queue/infer`);
    expect(res?.status()).toBe(200);
    await expect.poll(async () => (await page.textContent('body')) ?? '', { timeout: 15_000 }).toMatch(/page \d+ · d[0-9a-f]+/);
    const wrong = (await newPage({ httpCredentials: { username: 'ops', password: 'wrong' } })).page;
    expect((await wrong.goto(`${dash.url}/`))?.status()).toBe(401);
  });
});

describe('other sites and rebound names', () => {
  const prefix = uniquePrefix('dashboard-csrf.test.ts');
  const target = { redisUrl: TEST_REDIS_URL, prefix, attempts: 1 };
  // Opened in beforeAll, not as the file is collected: a queue opened then writes its meta key
  // under the prefix, and when this block's hooks do not run (its tests filtered out with -t, the
  // file's beforeAll failed) nothing closed it or deleted that key.
  let redis: Redis | undefined;
  let queue: TypedQueue<'infer'>;
  let dash: Dashboard;
  let attacker: Server;
  let attackerUrl: string;
  let attackerPage = '';
  const names = async () => (await queue.getJobs(['waiting'])).map((j) => String(j.name)).sort();

  beforeAll(async () => {
    redis = connectRedis(TEST_REDIS_URL, 'worker');
    queue = openQueue('infer', target, redis);
    await queue.add('page', { docId: 'd0000000000000000000a', gen: 1, unit: 0 }, { jobId: 'csrf-1' });
    dash = await open({ ...dashboardConfig(), prefix });
    // Another site: a page on another port that the test fills in before each visit.
    attacker = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(attackerPage));
    await new Promise<void>((ok) => attacker.listen(0, '127.0.0.1', ok));
    attackerUrl = `http://localhost:${(attacker.address() as AddressInfo).port}/`;
  });

  afterAll(async () => {
    await new Promise((ok) => (attacker ? attacker.close(ok) : ok(undefined)));
    await dash?.close();
    await queue?.close();
    redis?.disconnect();
    await deletePrefix(prefix);
  });

  it("the dashboard's own UI still pauses, resumes and adds a job", async () => {
    const { page } = await newPage();
    await page.goto(`${dash.url}/queue/infer`);
    // The queue's own menu (the header has one too: its links, Documents among them).
    const menu = page.locator('section button[aria-haspopup="menu"]').first();
    const act = async (item: string) => {
      await menu.click();
      await page.getByRole('menuitem', { name: item }).click();
    };
    await act('Pause');
    await page.getByRole('button', { name: 'Confirm' }).click();
    await expect.poll(() => queue.isPaused(), { timeout: 15_000 }).toBe(true);
    await act('Resume');
    await page.getByRole('button', { name: 'Confirm' }).click();
    await expect.poll(() => queue.isPaused(), { timeout: 15_000 }).toBe(false);
    await act('Add job');
    await page.locator('#job-name').fill('added-from-the-ui');
    await page.getByRole('dialog').getByRole('button', { name: 'Add' }).click();
    await expect.poll(names, { timeout: 15_000 }).toContain('added-from-the-ui');
    for (const job of await queue.getJobs(['waiting'])) if (String(job.name) === 'added-from-the-ui') await job.remove();
  });

  it('a page on another site cannot add a job or pause the queue (form post, no-cors fetch)', async () => {
    const before = await names();
    // A text/plain form: its body is `name=value`, shaped so that a JSON parser reads a job from it.
    attackerPage = `<form id="f" method="POST" enctype="text/plain" action="${dash.url}/api/queues/infer/add">
      <input name='{"name":"injected-by-form","data":{"x":"' value='"}}'></form>
      <script>
        fetch(${JSON.stringify(`${dash.url}/api/queues/infer/add`)}, { method: 'POST', mode: 'no-cors', body: '{"name":"injected-by-fetch","data":{}}' })
          .finally(() => document.getElementById('f').submit());
      </script>`;
    const { page } = await newPage();
    const refused = page.waitForResponse((r) => r.url() === `${dash.url}/api/queues/infer/add` && r.request().resourceType() === 'document');
    await page.goto(attackerUrl);
    const res = await refused;
    expect(res.status()).toBe(403);
    expect(await res.text()).toMatch(/must come from the dashboard's own pages/);
    expect(await names()).toEqual(before);
    expect(await queue.isPaused()).toBe(false);
  });

  it('a rebound name gets nothing: 403 for the page and for its own API calls', async () => {
    const { page } = await newPage();
    const port = new URL(dash.url).port;
    const res = await page.goto(`http://${REBIND}:${port}/queue/infer`);
    expect(res?.status()).toBe(403);
    // What the attacker's script would run once its name points at the dashboard: same-origin requests.
    const answers = await page.evaluate(async () => {
      const get = await fetch('/api/queues');
      const put = await fetch('/api/queues/infer/pause', { method: 'PUT' });
      return [get.status, put.status];
    });
    expect(answers).toEqual([403, 403]);
    expect(await queue.isPaused()).toBe(false);
  });
});
