/**
 * The dashboard's Documents routes, on the dashboard's Hono app (so the same Host/Origin guard,
 * credentials and headers cover them as cover Bull Board):
 *
 *   GET  /documents                      the list: search (?q=), filter (?state=), pages (?page=)
 *   GET  /documents/:id                  one document: facts, outputs, failed units, Retry
 *   GET  /documents/:id/outputs/:n       an output file, as text, when inside this OUT_DIR
 *   GET  /documents/assets/{style.css,app.js}
 *   GET  /api/documents                  {"documents": [...], total, page, per_page, pages, states, scanned, truncated}
 *   GET  /api/documents/:id              {"document": {...}, "failures": {from, failures, more}}
 *   POST /api/documents/:id/retry        reopens the failed units (what `docbatch retry` does); 405 read-only
 *   GET  /api/workers                    heartbeats with rates, and notes of work nothing takes
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { Readable } from 'node:stream';
import { Hono, type Context } from 'hono';
import { isDocbatchError } from '../errors.ts';
import type { BlobStore } from '../store/blobs.ts';
import type { DocStore } from '../store/docs.ts';
import { reopenDocument, type ReopenParts } from '../store/reopen.ts';
import type { Logger } from './log.ts';
import { SCRIPT, STYLE } from './documents-assets.ts';
import { detailPage, listPage, type PageContext } from './documents-page.ts';
import { documentFailures, documentJson, insideDir, listDocuments, parseState } from './documents.ts';
import { workerProblem, writerProblem, type WriterBeat } from './workers.ts';
import type { WorkerRates } from './worker-rates.ts';

export interface DocumentRoutesParts {
  store: DocStore;
  /** This dashboard's blob store (results archives of written documents), when it has one. */
  blobs: BlobStore | null;
  /** This dashboard's OUT_DIR: reports and outputs are read only from inside it. */
  outDir: string | null;
  rates: WorkerRates;
  /** What waits that nothing will take (queue-notes.ts), for the list page and /api/workers. */
  notes: () => Promise<string[]>;
  /** The writers' heartbeats (workers.ts readWriters). */
  writers: () => Promise<WriterBeat[]>;
  /** What a retry needs (queues, feeder, blob store), built on first use; null without a blob store. */
  reopenParts: () => ReopenParts | null;
  page: PageContext;
  gpuHourlyUsd?: number | undefined;
  log: Logger;
}

const DOC_ID = /^d[0-9a-f]{20}$/;

function pageNumber(value: string | undefined): number {
  const n = Number(value ?? 1);
  return Number.isInteger(n) && n >= 1 && n <= 1_000_000 ? n : 1;
}

export function documentRoutes(parts: DocumentRoutesParts): Hono {
  const app = new Hono();
  const { store } = parts;
  const money = parts.gpuHourlyUsd !== undefined ? { gpuHourlyUsd: parts.gpuHourlyUsd } : {};

  app.get('/documents/assets/style.css', (c) => c.body(STYLE, 200, { 'Content-Type': 'text/css; charset=utf-8', 'Cache-Control': 'no-cache' }));
  app.get('/documents/assets/app.js', (c) => c.body(SCRIPT, 200, { 'Content-Type': 'text/javascript; charset=utf-8', 'Cache-Control': 'no-cache' }));

  const listQuery = (c: Context) => {
    const state = parseState(c.req.query('state'));
    return { q: (c.req.query('q') ?? '').slice(0, 200), state, page: pageNumber(c.req.query('page')), perPage: Math.min(200, pageNumber(c.req.query('per_page') ?? '50')) };
  };

  app.get('/api/documents', async (c) => {
    const query = listQuery(c);
    if (query.state === null) return c.json({ error: 'state must be one of queued, running, written, failed' }, 400);
    return c.json(await listDocuments(store, { ...query, state: query.state, ...money }));
  });

  app.get('/documents', async (c) => {
    const query = listQuery(c);
    if (query.state === null) return c.text('state must be one of queued, running, written, failed\n', 400);
    const [list, rates, notes, writers] = await Promise.all([listDocuments(store, { ...query, state: query.state, ...money }), parts.rates.rates(), parts.notes(), parts.writers()]);
    return c.html(listPage(parts.page, list, { q: query.q, state: query.state }, rates, notes, writers));
  });

  const load = async (id: string) => (DOC_ID.test(id) ? store.get(id) : null);

  app.get('/api/documents/:id', async (c) => {
    const record = await load(c.req.param('id'));
    if (!record) return c.json({ error: 'no such document' }, 404);
    return c.json({ document: documentJson(record, money), failures: await documentFailures(store, parts.blobs, record, parts.outDir) });
  });

  app.get('/documents/:id', async (c) => {
    const record = await load(c.req.param('id'));
    if (!record) return c.text('no such document (its record may have expired: RETENTION_DAYS)\n', 404);
    const failures = await documentFailures(store, parts.blobs, record, parts.outDir);
    return c.html(detailPage(parts.page, documentJson(record, money), failures, record.meta.queue));
  });

  app.get('/documents/:id/outputs/:n', async (c) => {
    const record = await load(c.req.param('id'));
    const path = record?.files[Number(c.req.param('n'))];
    if (!record || path === undefined) return c.text('no such output\n', 404);
    if (!parts.outDir || !(await insideDir(path, parts.outDir))) {
      return c.text(`${path} is not inside this dashboard's OUT_DIR (${parts.outDir ?? 'not set'}): it is on the writer's machine; run the dashboard where OUT_DIR is mounted to read it here\n`, 404);
    }
    const info = await stat(path).catch(() => null);
    if (!info?.isFile()) return c.text(`${path} is gone\n`, 404);
    const type = extname(path) === '.json' ? 'application/json; charset=utf-8' : 'text/plain; charset=utf-8';
    // Shown as text whatever it holds (nosniff is set for every response); the name for saving it.
    return c.body(Readable.toWeb(createReadStream(path)) as ReadableStream, 200, {
      'Content-Type': type,
      'Content-Length': String(info.size),
      'Content-Disposition': `inline; filename*=UTF-8''${encodeURIComponent(basename(path))}`,
    });
  });

  app.post('/api/documents/:id/retry', async (c) => {
    if (parts.page.readOnly) return c.json({ error: 'this dashboard is read-only' }, 405);
    const record = await load(c.req.param('id'));
    if (!record) return c.json({ error: 'no such document' }, 404);
    if (record.meta.encrypted && (await store.password(record.docId)) === null) {
      return c.json({ error: `the PDF is encrypted and its password left Redis when it was written: run docbatch retry ${record.docId} --password-file FILE` }, 409);
    }
    const reopen = parts.reopenParts();
    if (!reopen) return c.json({ error: 'this dashboard has no BLOB_DIR: run it with the producers\' BLOB_DIR, or use docbatch retry' }, 409);
    try {
      const outcome = await reopenDocument(reopen, record, {});
      parts.log.info({ docId: record.docId, reopened: outcome.reopened.length, rewrite: outcome.rewrite }, 'retry from the dashboard');
      return c.json(outcome);
    } catch (err) {
      if (isDocbatchError(err)) return c.json({ error: err.describe(), code: err.code }, 409);
      throw err;
    }
  });

  app.get('/api/workers', async (c) => {
    const [rates, notes, writers] = await Promise.all([parts.rates.rates(), parts.notes(), parts.writers()]);
    return c.json({
      workers: rates.map(({ beat, kind, now, series }) => ({ ...beat, problem: workerProblem(beat), kind, rate: now, series })),
      writers: writers.map((w) => ({ ...w, problem: writerProblem(w) })),
      notes,
    });
  });

  return app;
}
