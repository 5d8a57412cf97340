/**
 * Issue 14, the dashboard's Documents view over HTTP, on a real run (Redis, emulator, worker,
 * writer): `/api/documents?q=` finds a document in progress by part of its file name, with its
 * progress; filters by state and pages; a document's failed units with codes and messages from
 * its results, its report or its archive; Retry reopens only the failed units (as `docbatch
 * retry`), is refused read-only and from another site; outputs are served as text from inside
 * OUT_DIR only; names are escaped in the HTML; workers come with their rates.
 * The browser side is test/ui/documents.test.ts.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { startDashboard, type Dashboard, type DashboardConfig } from '../../src/observe/dashboard.ts';
import type { DocumentJson, FailuresResult, ListResult } from '../../src/observe/documents.ts';
import { silentLogger } from '../../src/observe/log.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { SMALL_CONTEXT, SMALL_IMAGE, writeInputs } from './fixtures.ts';
import { until } from '../helpers/until.ts';

let p: Pipeline;
const dashboards: Dashboard[] = [];
let chatId: string;

function config(overrides: Partial<DashboardConfig> = {}): DashboardConfig {
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
    outDir: p.config.outDir,
    blobDir: p.config.blobDir,
    gpuHourlyUsd: 2,
    ...overrides,
  };
}

async function open(overrides: Partial<DashboardConfig> = {}): Promise<Dashboard> {
  const d = await startDashboard(config(overrides), silentLogger());
  dashboards.push(d);
  return d;
}

async function getJson<T>(url: string): Promise<{ status: number; body: T }> {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as T };
}

beforeAll(async () => {
  p = await startPipeline({
    file: import.meta.filename,
    emulator: { speed: 20, maxModelLen: SMALL_CONTEXT },
    config: { imageSize: SMALL_IMAGE, initialInFlight: 2, maxInFlight: 4, batchSize: 2, attempts: 1 },
  });
  const inputs = await writeInputs(p.dir, { pages: 3, tag: 'minutes' });
  const ids = acceptedIds(await p.enqueue([inputs.pdf, inputs.chat]));
  chatId = ids[1]!;
  await p.wait(ids, 60_000);
}, 120_000);

afterAll(async () => {
  for (const d of dashboards) await d.close();
  await p?.stop();
});

describe('/api/documents', () => {
  let dash: Dashboard;

  it('finds a document in progress by part of its file name, with its progress', async () => {
    dash = await open();
    p.engine.setTiming({ speed: 0.5 });
    const pdf = join(p.dir, 'Annual Report 2025 <b>final.pdf');
    writeFileSync(pdf, numberedPdf(12));
    const [id] = acceptedIds(await p.enqueue([pdf]));
    await until('a few pages done', async () => ((await p.store.get(id!))?.done ?? 0) >= 2);
    const { status, body } = await getJson<ListResult>(`${dash.url}/api/documents?q=report%202025`);
    p.engine.setTiming({ speed: 50 });
    expect(status).toBe(200);
    expect(body.documents).toHaveLength(1);
    const d = body.documents[0]!;
    // The output name is made safe for file systems; the input path is kept as given.
    expect(d).toMatchObject({ id, name: 'Annual Report 2025 _b_final', source: pdf, kind: 'pdf', task: 'transcribe', state: 'running', units: 12, failed: 0, model: null });
    expect(d.done).toBeGreaterThanOrEqual(2);
    expect(d.done).toBeLessThan(12);
    expect(d.rate).toBeGreaterThan(0);
    expect(d.eta_seconds).toBeGreaterThan(0);
    expect(d.started_at).not.toBeNull();
    expect(d.finished_at).toBeNull();
    expect(d.cost_usd).toBeGreaterThanOrEqual(0);
    expect(body).toMatchObject({ total: 1, page: 1, pages: 1 });
    expect(body.states.running).toBe(1);
    // The HTML page has it too, its name as text.
    const page = await (await fetch(`${dash.url}/documents?q=report+2025`)).text();
    expect(page).toContain('Annual Report 2025 &lt;b&gt;final.pdf');
    expect(page).not.toContain('<b>final');
    await p.wait([id!], 60_000);
    const written = await getJson<ListResult>(`${dash.url}/api/documents?q=ANNUAL&state=written`);
    expect(written.body.documents.map((x) => x.id)).toEqual([id]);
    expect(written.body.documents[0]).toMatchObject({ done: 12, state: 'written', eta_seconds: 0 });
    expect(written.body.documents[0]!.outputs.map((o) => o.name)).toEqual(['Annual Report 2025 _b_final.md', 'Annual Report 2025 _b_final.report.json']);
  }, 90_000);

  it('filters by state, finds by id, and pages', async () => {
    const all = await getJson<ListResult>(`${dash.url}/api/documents`);
    expect(all.body.total).toBe(3);
    expect(all.body.documents.map((d) => d.state)).toEqual(['written', 'written', 'written']);
    const byId = await getJson<ListResult>(`${dash.url}/api/documents?q=${chatId.slice(0, 9)}`);
    expect(byId.body.documents.map((d) => d.id)).toEqual([chatId]);
    const second = await getJson<ListResult>(`${dash.url}/api/documents?per_page=1&page=2`);
    expect(second.body).toMatchObject({ total: 3, page: 2, per_page: 1, pages: 3 });
    expect(second.body.documents).toHaveLength(1);
    expect((await getJson<ListResult>(`${dash.url}/api/documents?state=queued`)).body.total).toBe(0);
    const bad = await getJson<{ error: string }>(`${dash.url}/api/documents?state=green`);
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/queued, running, written, failed/);
  });

  it("lists a document's failed units: from its report, from its archive, or says why not", async () => {
    const fromReport = await getJson<{ document: DocumentJson; failures: FailuresResult }>(`${dash.url}/api/documents/${chatId}`);
    // The long conversation makes two chunks; neither fits the engine's context.
    expect(fromReport.body.document).toMatchObject({ id: chatId, kind: 'chat', failed: 2, state: 'written' });
    expect(fromReport.body.failures.from).toBe('report');
    const tooLong = (chunk: number) => expect.objectContaining({ unit: chunk + 1, code: 'CONTEXT_TOO_LONG', conversation_id: 'minutes-long', chunk, message: expect.stringMatching(/maximum context length/) });
    expect(fromReport.body.failures.failures).toEqual([tooLong(0), tooLong(1)]);
    const noOut = await open({ outDir: undefined });
    const fromArchive = await getJson<{ failures: FailuresResult }>(`${noOut.url}/api/documents/${chatId}`);
    expect(fromArchive.body.failures.from).toBe('archive');
    expect(fromArchive.body.failures.failures.map((f) => [f.unit, f.code])).toEqual([[1, 'CONTEXT_TOO_LONG'], [2, 'CONTEXT_TOO_LONG']]);
    const blind = await open({ outDir: undefined, blobDir: undefined });
    const none = await getJson<{ failures: FailuresResult }>(`${blind.url}/api/documents/${chatId}`);
    expect(none.body.failures).toMatchObject({ from: 'none', failures: [] });
    expect(none.body.failures.note).toMatch(/not readable inside this dashboard's OUT_DIR/);
    const html = await (await fetch(`${dash.url}/documents/${chatId}`)).text();
    expect(html).toContain('CONTEXT_TOO_LONG');
    expect(html).toMatch(/<button type="button" id="retry" data-doc="d[0-9a-f]{20}">Retry 2 failed units<\/button>/);
    expect((await fetch(`${dash.url}/api/documents/d00000000000000000000`)).status).toBe(404);
    expect((await fetch(`${dash.url}/documents/not-an-id`)).status).toBe(404);
  });

  it('serves outputs as text from inside OUT_DIR only', async () => {
    const res = await fetch(`${dash.url}/documents/${chatId}/outputs/0`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect((await res.text()).split('\n')[0]).toMatch(/^\{"conversation_id":/);
    const elsewhere = await open({ outDir: join(p.dir, 'blobs') });
    const refused = await fetch(`${elsewhere.url}/documents/${chatId}/outputs/0`);
    expect(refused.status).toBe(404);
    expect(await refused.text()).toMatch(/is not inside this dashboard's OUT_DIR/);
    expect((await fetch(`${dash.url}/documents/${chatId}/outputs/9`)).status).toBe(404);
  });

  it('Retry reopens only the failed units and the document is written again; refused read-only and from another site', async () => {
    const readOnly = await open({ dashboardReadOnly: true });
    const ro = await fetch(`${readOnly.url}/api/documents/${chatId}/retry`, { method: 'POST' });
    expect(ro.status).toBe(405);
    const host = new URL(dash.url).host;
    const offsite = await fetch(`${dash.url}/api/documents/${chatId}/retry`, { method: 'POST', headers: { Origin: 'http://evil.example', Host: host } });
    expect(offsite.status).toBe(403);
    const before = (await p.store.get(chatId))!;
    const res = await fetch(`${dash.url}/api/documents/${chatId}/retry`, { method: 'POST', headers: { 'Content-Type': 'application/json', Origin: dash.url }, body: '{}' });
    expect(res.status).toBe(200);
    const outcome = (await res.json()) as { docId: string; reopened: number[]; rewrite: boolean };
    expect(outcome).toMatchObject({ docId: chatId, rewrite: false });
    expect(outcome.reopened).toEqual([1, 2]);
    await until('written again', async () => {
      const r = await p.store.get(chatId);
      return r !== null && r.state === 'written' && r.writtenAt !== before.writtenAt;
    }, 60_000);
    const after = (await p.store.get(chatId))!;
    // The chunk that fits was not sent again; those that do not failed again.
    expect(after).toMatchObject({ done: before.done, failed: 2 });
  }, 90_000);

  it('lists workers with their rates', async () => {
    type Workers = { workers: Array<{ name: string; problem: string | null; kind: string; rate: number | null; settled?: Record<string, number> }> };
    // Heartbeats come every 5 s: wait for one written after the pages settled.
    let body: Workers = { workers: [] };
    await until('a heartbeat counting the pages', async () => {
      body = (await getJson<Workers>(`${dash.url}/api/workers`)).body;
      return (body.workers[0]?.settled?.pages ?? 0) >= 15;
    }, 20_000);
    expect(body.workers).toHaveLength(1);
    expect(body.workers[0]).toMatchObject({ name: p.config.workerName, problem: null });
    expect(body.workers[0]!.kind).toBe('pages');
    expect(body.workers[0]!.rate).toBeGreaterThan(0);
  }, 30_000);
});
