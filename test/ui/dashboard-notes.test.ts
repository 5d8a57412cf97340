/**
 * The Documents view in a real browser (Debian's Chromium, playwright-core) says what waits that
 * nothing will take, as `status` does: a queue paused in Bull Board, no writer running. Before,
 * it listed the worker as "taking work" and nothing else while nothing moved. The note goes by
 * itself (the page refreshes every 5 s) once the queue is resumed and a writer runs. Real Redis,
 * the engine emulator, a worker, writers and the dashboard.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { openQueue } from '../../queues/connect.ts';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { startDashboard, type Dashboard } from '../../src/observe/dashboard.ts';
import { silentLogger } from '../../src/observe/log.ts';
import { createWriter, type DocumentWriter } from '../../src/write/writer.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { parseMetrics, sumOf } from '../observe/fixtures.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];

let p: Pipeline;
let browser: Browser;
let dash: Dashboard;
let writer: DocumentWriter | undefined;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/ensure-chromium.sh`);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  p = await startPipeline({ file: import.meta.filename });
  dash = await startDashboard(
    { redisUrl: p.config.redisUrl, prefix: p.config.prefix, attempts: 1, dashboardHost: '127.0.0.1', dashboardPort: 0, dashboardPublicNames: [], dashboardUser: undefined, dashboardPassword: undefined, dashboardToken: undefined, dashboardReadOnly: false },
    silentLogger(),
    { backlogTtlMs: 200 },
  );
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await dash?.close();
  await writer?.close();
  await p?.stop();
});

it('says a paused queue and a missing writer, and stops saying them once work flows', async () => {
  const infer = openQueue('infer', p.config, p.redis);
  try {
    await infer.pause();
    await p.writer.close();
    const pdf = join(p.dir, 'held.pdf');
    writeFileSync(pdf, numberedPdf(3));
    const [id] = acceptedIds(await p.enqueue([pdf]));

    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    await page.goto(`${dash.url}/documents`);
    const notes = page.locator('section.notes[role="alert"]');
    await expect.poll(async () => notes.isVisible()).toBe(true);
    const text = (await notes.textContent()) ?? '';
    expect(text).toContain('queue "infer" is paused: 3 units wait until it is resumed');
    expect(text).toContain('no writer has a heartbeat under this prefix (none started): 1 document not written yet will wait for one; start one (docbatch writer)');
    expect(await page.locator('p.writers').textContent()).toContain('Writers: none has a heartbeat under this prefix');
    // The same notes for scripts, and for Prometheus (a writer has no /metrics of its own).
    const api = (await (await fetch(`${dash.url}/api/workers`)).json()) as { notes: string[] };
    expect(api.notes).toHaveLength(2);
    const scrape = async () => parseMetrics(await (await fetch(`${dash.url}/metrics`)).text());
    let m = await scrape();
    expect(sumOf(m, 'docbatch_writers_live')).toBe(0);
    expect(sumOf(m, 'docbatch_documents_unwritten')).toBe(1);
    expect(sumOf(m, 'docbatch_queue_paused', { queue: 'infer' })).toBe(1);

    // Resumed, and a writer again: the document is written, and the notes go by themselves.
    await infer.resume();
    writer = createWriter(p.config, silentLogger(), { reconcileIntervalMs: 500 });
    await writer.start();
    const [final] = await p.wait([id!], 30_000);
    expect(final!.record.state).toBe('written');
    await notes.waitFor({ state: 'detached', timeout: 15_000 });
    // The writer is listed under the workers, writing.
    await expect.poll(async () => (await page.locator('p.writers').textContent()) ?? '', { timeout: 10_000 }).toMatch(new RegExp(`Writers: ${p.config.workerName} writing`));
    const api2 = (await (await fetch(`${dash.url}/api/workers`)).json()) as { writers: Array<{ name: string; problem: string | null }> };
    expect(api2.writers).toEqual([expect.objectContaining({ name: p.config.workerName, problem: null })]);
    m = await scrape();
    expect(sumOf(m, 'docbatch_writers_live')).toBe(1);
    expect(sumOf(m, 'docbatch_documents_unwritten')).toBe(0);
    await context.close();
  } finally {
    await infer.close();
  }
}, 90_000);
