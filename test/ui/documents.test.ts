/**
 * Issue 14, the Documents view in a real browser (Debian's Chromium driven by playwright-core)
 * over a real run: Bull Board's header links to it; during a run `/documents?q=<part of a file
 * name>` shows that document with its progress, and the page follows the run without a reload;
 * the workers' throughput is shown; a document's page lists its failed units with their codes,
 * and its Retry button runs them again; names with markup stay text; the page needs nothing from
 * outside this machine; Bull Board's metrics charts have data (workers keep BullMQ's metrics).
 *
 * The screenshot of the view during a run goes to a temp dir, or to DOCBATCH_SCREENSHOT_DOCUMENTS:
 * `DOCBATCH_SCREENSHOT_DOCUMENTS=docs/img/documents.png npx vitest run test/ui/documents.test.ts`
 * regenerates the one in docs/operations.md.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { startDashboard, type Dashboard } from '../../src/observe/dashboard.ts';
import { silentLogger } from '../../src/observe/log.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { SMALL_CONTEXT, SMALL_IMAGE, writeInputs } from '../observe/fixtures.ts';
import { until } from '../helpers/until.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];

let p: Pipeline;
let browser: Browser;
let dash: Dashboard;
const contexts: BrowserContext[] = [];
let chatId: string;

async function newPage(): Promise<{ page: Page; offsite: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  contexts.push(context);
  const offsite: string[] = [];
  await context.route('**/*', (route) => {
    const { hostname } = new URL(route.request().url());
    if (hostname === '127.0.0.1' || hostname === 'localhost') return route.continue();
    offsite.push(route.request().url());
    return route.abort();
  });
  return { page: await context.newPage(), offsite };
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/ensure-chromium.sh`);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  p = await startPipeline({
    file: import.meta.filename,
    emulator: { speed: 20, maxModelLen: SMALL_CONTEXT },
    config: { imageSize: SMALL_IMAGE, initialInFlight: 2, maxInFlight: 4, batchSize: 2, attempts: 1 },
  });
  const a = await writeInputs(p.dir, { pages: 5, tag: 'support-chats' });
  const ids = acceptedIds(await p.enqueue([a.pdf, a.chat]));
  chatId = ids[1]!;
  await p.wait(ids, 60_000);
  dash = await startDashboard(
    {
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
      outDir: p.config.outDir,
      blobDir: p.config.blobDir,
      gpuHourlyUsd: 2.5,
    },
    silentLogger(),
  );
}, 120_000);

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => {});
  await browser?.close();
  await dash?.close();
  await p?.stop();
});

describe('the Documents view in a browser', () => {
  it("is linked from Bull Board's header", async () => {
    const { page, offsite } = await newPage();
    await page.goto(`${dash.url}/`);
    await page.locator('header button[aria-haspopup="menu"]').first().click();
    await page.getByRole('menuitem', { name: 'Documents' }).click();
    await page.waitForURL(`${dash.url}/documents`);
    await expect.poll(async () => (await page.locator('h1').textContent()) ?? '').toBe('Documents');
    expect(offsite).toEqual([]);
  });

  it('shows a document in progress found by part of its file name, and follows the run (screenshot)', async () => {
    p.engine.setTiming({ speed: 0.4 });
    const pdf = join(p.dir, 'board-minutes-2025-q3.pdf');
    writeFileSync(pdf, numberedPdf(16));
    const [id] = acceptedIds(await p.enqueue([pdf]));
    await until('a few pages done', async () => ((await p.store.get(id!))?.done ?? 0) >= 3);

    const { page, offsite } = await newPage();
    await page.goto(`${dash.url}/documents`);
    await page.getByRole('searchbox', { name: /search/ }).fill('minutes-2025');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.waitForURL(/\/documents\?q=minutes-2025/);
    const row = page.locator(`tr[data-id="${id}"]`);
    await expect.poll(async () => (await row.textContent()) ?? '').toMatch(/board-minutes-2025-q3[\s\S]*running[\s\S]*\d+ \/ 16/);
    expect(await page.locator('tbody#documents tr').count()).toBe(1);
    // The workers' throughput: a rate in pages per second.
    await expect.poll(async () => (await page.locator('section.workers').textContent()) ?? '', { timeout: 15_000 }).toMatch(/taking work[\s\S]*\d+\.\d\d pages\/s/);

    // The whole list, for the docs: written documents, one with failed units, one running.
    const all = (await newPage()).page;
    await all.goto(`${dash.url}/documents`);
    await expect.poll(async () => (await all.locator('section.workers').textContent()) ?? '', { timeout: 15_000 }).toMatch(/pages\/s/);
    // The throughput line needs a few heartbeats (every 5 s); the page redraws itself meanwhile.
    await expect.poll(async () => all.locator('section.workers svg.spark polyline').count(), { timeout: 30_000 }).toBe(1);
    const shot = resolve(process.env.DOCBATCH_SCREENSHOT_DOCUMENTS ?? join(p.dir, 'documents.png'));
    await all.screenshot({ path: shot, fullPage: true });
    expect((await stat(shot)).size).toBeGreaterThan(20_000);

    // Without a reload, the page catches up with the run (it refreshes every 5 s).
    p.engine.setTiming({ speed: 50 });
    await p.wait([id!], 60_000);
    await expect.poll(async () => (await row.textContent()) ?? '', { timeout: 20_000 }).toMatch(/written[\s\S]*16 \/ 16/);
    expect(offsite).toEqual([]);
  }, 120_000);

  it("a document's page lists its failed units, and Retry runs them again", async () => {
    const { page } = await newPage();
    await page.goto(`${dash.url}/documents?q=support-chats`);
    await page.locator(`tr[data-id="${chatId}"] a`).first().click();
    await page.waitForURL(`${dash.url}/documents/${chatId}`);
    const failures = page.locator('table.failures tbody tr');
    expect(await failures.count()).toBe(2);
    expect(await failures.first().textContent()).toMatch(/support-chats-long · chunk 0\s*CONTEXT_TOO_LONG.*maximum context length/);
    const before = (await p.store.get(chatId))!.writtenAt;
    const posted = page.waitForResponse((r) => r.url().endsWith(`/api/documents/${chatId}/retry`));
    await page.getByRole('button', { name: 'Retry 2 failed units' }).click();
    expect((await posted).status()).toBe(200);
    await expect.poll(async () => (await page.locator('#retry-result').textContent()) ?? '').toBe('Retrying 2 units.');
    await until('written again', async () => {
      const r = await p.store.get(chatId);
      return r?.state === 'written' && r.writtenAt !== before;
    });
  }, 60_000);

  it('keeps markup in file names as text', async () => {
    const pdf = join(p.dir, 'notes <img src=x id=injected onerror=window.__pwned=1>.pdf');
    writeFileSync(pdf, numberedPdf(1, 9));
    const [id] = acceptedIds(await p.enqueue([pdf]));
    await p.wait([id!], 60_000);
    const { page } = await newPage();
    await page.goto(`${dash.url}/documents?q=notes`);
    await expect.poll(async () => (await page.locator(`tr[data-id="${id}"]`).textContent()) ?? '').toContain('onerror=window.__pwned=1>.pdf');
    await page.goto(`${dash.url}/documents/${id}`);
    await expect.poll(async () => (await page.locator('dl.facts').textContent()) ?? '').toContain('<img src=x id=injected');
    expect(await page.locator('#injected').count()).toBe(0);
    expect(await page.evaluate('typeof window.__pwned')).toBe('undefined');
  }, 60_000);

  it("Bull Board's metrics charts have data: workers keep BullMQ's metrics", async () => {
    const res = await fetch(`${dash.url}/api/queues/infer/metrics`);
    expect(res.status).toBe(200);
    // Completed jobs are counted as they finish (`meta.count`); a data point per minute follows.
    const body = (await res.json()) as { completed: { meta: { count: number }; data: number[] } | null };
    expect(body.completed?.meta.count).toBeGreaterThanOrEqual(6); // the pages and the chunk that fit, at least
  });
});
