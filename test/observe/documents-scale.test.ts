/**
 * The Documents view with thousands of documents registered: what one request costs Redis. The
 * list counts the newest documents per state on every request (the page refreshes itself every
 * 5 s), and a state filter reads the newest 50,000; both must read the few fields a state needs,
 * not every record whole with its settings. Bytes are counted on a real TCP forwarder between
 * the dashboard and a real Redis; records are written as the producer and writer leave them.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis } from '../../queues/connect.ts';
import { startDashboard, type Dashboard } from '../../src/observe/dashboard.ts';
import type { ListResult } from '../../src/observe/documents.ts';
import { silentLogger } from '../../src/observe/log.ts';
import { deletePrefix, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.ts';

const prefix = uniquePrefix(import.meta.filename);
const redis = connectRedis(TEST_REDIS_URL, 'client');
const DOCS = 3000;
let server: Server;
const sockets = new Set<Socket>();
let fromRedis = 0;
let dash: Dashboard;

beforeAll(async () => {
  const t0 = Date.parse('2026-01-01T00:00:00Z');
  const task = { name: 'transcribe', unit: 'page', output: 'text', hash: 'h'.repeat(64), blob: 'b'.repeat(64) };
  const pipe = redis.pipeline();
  for (let i = 0; i < DOCS; i++) {
    const docId = `d${i.toString(16).padStart(20, '0')}`;
    const name = `archive-${String(i).padStart(6, '0')}`;
    const running = i >= DOCS - 10;
    const at = new Date(t0 + i * 1000).toISOString();
    const meta = {
      docId, kind: 'pdf', source: `/data/inbox/2026/${name}.pdf`, sha256: docId.padEnd(64, '0'), name, outSub: '', units: 10, feedUnits: 10,
      blob: docId.padEnd(64, 'a'), pages: 10, task, model: null, queue: 'infer', priority: 0, enqueuedAt: at,
    };
    pipe.hset(`${prefix}:doc:${docId}`, {
      meta: JSON.stringify(meta), gen: 1, units: 10, state: running ? 'running' : 'written', done: running ? 5 : 10, failed: 0,
      prompt_tokens: 9000, completion_tokens: 3000, engine_ms: 12000, created_at: at, started_at: at,
      ...(running ? {} : { finished_at: at, written_at: at, files: JSON.stringify([`/data/out/${name}.md`, `/data/out/${name}.report.json`]) }),
    });
    pipe.zadd(`${prefix}:docs`, t0 + i * 1000, docId);
  }
  await pipe.exec();

  // Counts the bytes Redis sends to the dashboard.
  const target = new URL(TEST_REDIS_URL);
  server = createServer((client) => {
    const upstream = connect(Number(target.port || 6379), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    upstream.on('data', (chunk: Buffer) => (fromRedis += chunk.length));
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const url = `redis://127.0.0.1:${(server.address() as AddressInfo).port}`;
  dash = await startDashboard(
    { redisUrl: url, prefix, attempts: 1, dashboardHost: '127.0.0.1', dashboardPort: 0, dashboardPublicNames: [], dashboardUser: undefined, dashboardPassword: undefined, dashboardToken: undefined, dashboardReadOnly: false },
    silentLogger(),
  );
}, 60_000);

afterAll(async () => {
  await dash?.close();
  for (const s of sockets) s.destroy();
  await new Promise((ok) => server?.close(ok));
  redis.disconnect();
  await deletePrefix(prefix);
});

async function measured(path: string): Promise<{ body: ListResult; bytes: number }> {
  await fetch(`${dash.url}${path}`); // warm: connections, scripts, the queue list
  const before = fromRedis;
  const body = (await (await fetch(`${dash.url}${path}`)).json()) as ListResult;
  return { body, bytes: fromRedis - before };
}

describe(`the Documents API over ${DOCS} documents`, () => {
  it('lists a page with counts per state reading a few bytes per document counted, not whole records', async () => {
    const { body, bytes } = await measured('/api/documents');
    expect(body.total).toBe(DOCS);
    expect(body.states).toEqual({ queued: 0, running: 10, written: DOCS - 10, failed: 0 });
    expect(body.documents).toHaveLength(50);
    expect(body.documents[0]!.name).toBe(`archive-${String(DOCS - 1).padStart(6, '0')}`);
    // Whole records: about 900 B each (2.7 MB); their state fields: under 100 B each.
    expect(bytes).toBeLessThan(DOCS * 150);
  });

  it('filters by state reading the state fields, and whole records only for the page shown', async () => {
    const { body, bytes } = await measured('/api/documents?state=running&per_page=5&page=2');
    expect(body.total).toBe(10);
    expect(body.documents.map((d) => d.state)).toEqual(Array(5).fill('running'));
    expect(body.documents[0]!.name).toBe(`archive-${String(DOCS - 6).padStart(6, '0')}`);
    expect(body.states).toEqual({ queued: 0, running: 10, written: DOCS - 10, failed: 0 });
    expect(bytes).toBeLessThan(DOCS * 150);
  });

  it('still searches names and paths', async () => {
    const { body } = await measured('/api/documents?q=archive-00123');
    expect(body.total).toBe(10);
    expect(body.documents.every((d) => d.name.startsWith('archive-00123'))).toBe(true);
  });
});
