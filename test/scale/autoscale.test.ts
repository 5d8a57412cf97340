/**
 * What the GPU pool's autoscaler sees. The production overlay's ScaledObject
 * (deploy/kubernetes/base/keda.yaml) is read here as KEDA's operator reads its `metrics-api`
 * trigger — a GET of its URL with the trigger's credentials and Host, its value at
 * `valueLocation` — against a real Redis holding real enqueued documents and a real dashboard.
 * Fair feeding keeps BullMQ's wait lists near FEED_DEPTH, so the figure must come from what is
 * registered, not from the lists: 2,410 units waiting ask for three pods, not one (the `redis`
 * triggers this replaced read 16 here: one pod).
 *
 * Also Feeder.backlog itself: settled units are not counted again after a restart of the
 * feeding cursor (a retry), and the dashboard's /api/backlog refuses malformed questions.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis, openQueue } from '../../queues/connect.ts';
import { inferQueueFor, SHARED_INFER_QUEUE } from '../../queues/routes.ts';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { loadConfig } from '../../src/config.ts';
import { startDashboard, type Dashboard } from '../../src/observe/dashboard.ts';
import { silentLogger } from '../../src/observe/log.ts';
import { Feeder } from '../../src/store/feed.ts';
import { build, containerEnv, find, podSpec, secretData, type Build, type K8sObject } from '../deploy/kustomize.ts';
import { overlay } from '../deploy/overlay.ts';
import { rawRequest } from '../observe/fixtures.ts';
import { acceptedIds, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

interface Trigger {
  type: string;
  metadata: Record<string, string>;
  authenticationRef?: { name: string };
}
interface ScaledObjectSpec {
  minReplicaCount: number;
  maxReplicaCount: number;
  triggers: Array<Trigger & { name: string }>;
}

let p: Pipeline;
let dashboard: Dashboard;
let objects: K8sObject[];
const MODEL_PAGES = 10;
const SHARED_PAGES = [800, 800, 800];

/** What KEDA's operator reads for one trigger (the metrics-api scaler, basic or bearer). */
async function kedaReads(trigger: Trigger): Promise<number> {
  if (trigger.type !== 'metrics-api') throw new Error(`this stand-in does not know KEDA's ${trigger.type} scaler`);
  const url = new URL(trigger.metadata.url!);
  const param = (name: string) => {
    const auth = find(objects, 'TriggerAuthentication', trigger.authenticationRef!.name).spec as { secretTargetRef: Array<{ parameter: string; name: string; key: string }> };
    const ref = auth.secretTargetRef.find((r) => r.parameter === name)!;
    return secretData(find(objects, 'Secret', ref.name))[ref.key]!;
  };
  const headers: Record<string, string> = {};
  if (trigger.metadata.authMode === 'basic') headers.authorization = `Basic ${Buffer.from(`${param('username')}:${param('password')}`).toString('base64')}`;
  if (trigger.metadata.authMode === 'bearer') headers.authorization = `Bearer ${param('token')}`;
  // The dashboard runs here: the request goes to it, naming the Service as KEDA's would.
  const res = await rawRequest(`${dashboard.url}${url.pathname}${url.search}`, { host: url.host, headers });
  expect(res.status, res.text).toBe(200);
  // valueLocation is a GJSON path; ours are plain dotted keys.
  let value: unknown = JSON.parse(res.text);
  for (const key of trigger.metadata.valueLocation!.split('.')) value = (value as Record<string, unknown>)[key];
  expect(typeof value).toBe('number');
  return value as number;
}

/** The replicas KEDA and the HPA settle on for its one trigger's reading (AverageValue target, activation at 0). */
async function desiredReplicas(spec: ScaledObjectSpec): Promise<{ value: number; replicas: number }> {
  expect(spec.triggers).toHaveLength(1);
  const [trigger] = spec.triggers;
  const value = await kedaReads(trigger!);
  const target = Number(trigger!.metadata.targetValue);
  const replicas = value <= 0 ? spec.minReplicaCount : Math.min(spec.maxReplicaCount, Math.max(spec.minReplicaCount, Math.ceil(value / target)));
  return { value, replicas };
}

beforeAll(async () => {
  const built: Build = build(overlay, { exampleSecrets: true });
  objects = built.objects;
  const container = podSpec(find(objects, 'Deployment', 'docbatch-dashboard'))!.containers[0]!;
  const { env } = containerEnv(objects, container);
  const config = loadConfig({}, env);
  p = await startPipeline({ file: import.meta.filename, worker: false, config: { feedDepth: 8 } });
  // The overlay's dashboard settings, on loopback with a free port, over this test's Redis.
  dashboard = await startDashboard(
    { ...p.config, dashboardHost: '127.0.0.1', dashboardPort: 0, dashboardPublicNames: config.dashboardPublicNames, dashboardUser: config.dashboardUser, dashboardPassword: config.dashboardPassword, dashboardToken: undefined, dashboardReadToken: config.dashboardReadToken, dashboardReadOnly: true },
    silentLogger(),
    // Each reading counts again (a deployment's counts serve callers for 5 s).
    { backlogTtlMs: 0 },
  );
}, 60_000);

afterAll(async () => {
  await dashboard?.close();
  await p?.stop();
});

describe("the GPU pool's autoscaler", () => {
  it('sees every unit waiting, not the FEED_DEPTH jobs BullMQ holds: 2,410 units ask for 3 pods', async () => {
    const spec = find(objects, 'ScaledObject', 'docbatch-gpu').spec as ScaledObjectSpec;
    const worker = podSpec(find(objects, 'Deployment', 'docbatch-gpu'))!.containers.find((c) => c.args?.[0] === 'worker')!;
    const model = loadConfig({}, containerEnv(objects, worker).env).model!;
    expect(model).toBeTruthy();
    expect(await desiredReplicas(spec)).toEqual({ value: 0, replicas: 0 });

    const files = SHARED_PAGES.map((pages, i) => {
      const file = join(p.dir, `shared-${i}.pdf`);
      writeFileSync(file, numberedPdf(pages, 20 + i));
      return file;
    });
    acceptedIds(await p.enqueue(files));
    const modelFile = join(p.dir, 'model.pdf');
    writeFileSync(modelFile, numberedPdf(MODEL_PAGES, 7));
    acceptedIds(await p.enqueue([modelFile], { task: { models: [model] } }));

    // BullMQ holds FEED_DEPTH jobs per queue; the rest is registered, not queued.
    expect(await p.redis.llen(`${p.config.prefix}:${SHARED_INFER_QUEUE}:wait`)).toBe(8);
    expect(await p.redis.llen(`${p.config.prefix}:${inferQueueFor(model)}:wait`)).toBe(8);

    const total = SHARED_PAGES.reduce((a, b) => a + b, 0) + MODEL_PAGES;
    const max = spec.maxReplicaCount;
    expect(await desiredReplicas(spec)).toEqual({ value: total, replicas: Math.min(max, 3) });
  }, 120_000);

  it('/api/backlog answers per queue, and refuses a malformed question', async () => {
    const get = (search: string) => rawRequest(`${dashboard.url}/api/backlog${search}`, { headers: { authorization: `Basic ${Buffer.from('admin:CHANGE-ME').toString('base64')}` } });
    const all = JSON.parse((await get('')).text) as { waiting: number; queues: Array<{ queue: string; jobs: number; unfed: number; documents: number }> };
    expect(all.queues.find((q) => q.queue === SHARED_INFER_QUEUE)).toMatchObject({ jobs: 8, unfed: 2392, documents: 3 });
    expect(all.waiting).toBe(2410);
    const shared = JSON.parse((await get('?queue=infer')).text) as { waiting: number };
    expect(shared.waiting).toBe(2400);
    for (const bad of ['?queue=wait', '?queue=infer&model=x', '?model=']) expect((await get(bad)).status, bad).toBe(400);
    expect((await rawRequest(`${dashboard.url}/api/backlog`)).status).toBe(401);
  });
});

describe('Feeder.backlog', () => {
  it('leaves out settled units when the cursor restarts at 0 (a retry), and counts again what is fed', async () => {
    // A record of its own under a prefix of its own (cleaned with the pipeline's): the fields the feeder reads.
    const prefix = `${p.config.prefix}:sub`;
    const redis = connectRedis(p.config.redisUrl, 'client');
    const queue = openQueue('infer', { ...p.config, prefix }, redis, 'infer');
    try {
      const feeder = new Feeder(redis, prefix, () => queue);
      const docId = 'd0123456789abcdef0123';
      const docKey = `${prefix}:doc:${docId}`;
      await redis.hset(docKey, { gen: 1, units: 20, feed_end: 20, fed: 0, job_name: 'page', priority: 0 });
      await feeder.add(docId, 'infer', true);
      expect(await feeder.backlog('infer')).toEqual({ jobs: 0, unfed: 20, documents: 1, capped: false });
      expect(await feeder.feed('infer', 6)).toBe(6);
      expect(await feeder.backlog('infer')).toEqual({ jobs: 6, unfed: 14, documents: 1, capped: false });
      // 12 units have results (as after a first pass), then a retry restarts the cursor at 0.
      for (let unit = 0; unit < 12; unit++) await redis.hset(`${docKey}:r:1`, String(unit), '{}');
      await feeder.add(docId, 'infer', true);
      expect((await feeder.backlog('infer')).unfed).toBe(8);
      // A record that is gone counts nothing; a cap stops the count early and says so.
      await redis.hset(`${prefix}:doc:gone`, 'x', 1);
      await redis.zadd(`${prefix}:feed:infer:backlog`, 1, 'gone');
      await redis.del(`${prefix}:doc:gone`);
      expect(await feeder.backlog('infer')).toMatchObject({ unfed: 8, documents: 2 });
      expect(await feeder.backlog('infer', 5)).toMatchObject({ unfed: 8, capped: true });

      // A chat document's results also hold its conversations' summaries (units 20-29, past
      // feed_end): they do not make fed units look settled. 5 chunks and 10 summaries settled.
      const chat = 'd1123456789abcdef0123';
      await redis.hset(`${prefix}:doc:${chat}`, { gen: 1, units: 30, feed_end: 20, fed: 0, job_name: 'chunk', priority: 0 });
      for (const unit of [0, 1, 2, 3, 4, ...Array.from({ length: 10 }, (_, i) => 20 + i)]) await redis.hset(`${prefix}:doc:${chat}:r:1`, String(unit), '{}');
      await feeder.add(chat, 'infer', true);
      expect(await feeder.backlog('infer')).toMatchObject({ unfed: 8 + 15, documents: 3 });
    } finally {
      await queue.obliterate({ force: true });
      await queue.close();
      redis.disconnect();
    }
  }, 60_000);

  it('pages through more documents than one script call reads, each once, whatever joins meanwhile', async () => {
    const prefix = `${p.config.prefix}:many`;
    const redis = connectRedis(p.config.redisUrl, 'client');
    try {
      const feeder = new Feeder(redis, prefix, () => {
        throw new Error('nothing is fed here');
      });
      const batch = redis.pipeline();
      for (let i = 0; i < 1234; i++) {
        const id = `d${String(i).padStart(20, '0')}`;
        batch.hset(`${prefix}:doc:${id}`, { gen: 1, units: 3, feed_end: 3, fed: i % 3, job_name: 'page', priority: 0 });
        batch.zadd(`${prefix}:feed:infer:backlog`, i + 1, id);
      }
      await batch.exec();
      // 1234 documents with 3, 2 or 1 units left (412 + 411 + 411).
      expect(await feeder.backlog('infer')).toEqual({ jobs: 0, unfed: 412 * 3 + 411 * 2 + 411, documents: 1234, capped: false });
    } finally {
      redis.disconnect();
    }
  }, 60_000);
});
