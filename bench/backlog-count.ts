/**
 * How long the dashboard's count of units waiting (`/api/backlog`, what KEDA scales the GPU pool
 * on; Feeder.backlog) takes with many documents waiting, capped (the default, 100,000 units) and
 * counted to the end. Records are written straight into Redis under a prefix of their own (the
 * fields the feeder reads, as enqueue leaves them), in the feeding backlog, then removed.
 * docs/benchmarks.md quotes it; KEDA's metrics-api scaler gives up after 3 s by default.
 *
 *   node_modules/.bin/node bench/backlog-count.ts [--docs 300000] [--pages 3] [--rounds 3]
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { purgePrefix } from '../src/store/admin.ts';
import { BACKLOG_CAP_UNITS, Feeder } from '../src/store/feed.ts';

const { values } = parseArgs({
  options: {
    docs: { type: 'string', default: '300000' },
    pages: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '3' },
  },
});
const docs = Number(values.docs);
const pages = Number(values.pages);
const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const prefix = `bench-backlog-${randomBytes(3).toString('hex')}`;

try {
  const started = performance.now();
  for (let i = 0; i < docs; i += 5000) {
    const batch = redis.pipeline();
    for (let j = i; j < Math.min(docs, i + 5000); j++) {
      const id = `d${String(j).padStart(20, '0')}`;
      batch.hset(`${prefix}:doc:${id}`, { gen: 1, units: pages, feed_end: pages, fed: 0, job_name: 'page', priority: 0 });
      batch.zadd(`${prefix}:feed:infer:backlog`, j + 1, id);
    }
    await batch.exec();
  }
  console.log(`${docs} documents of ${pages} pages waiting (written in ${((performance.now() - started) / 1000).toFixed(1)} s)`);
  const feeder = new Feeder(redis, prefix, () => {
    throw new Error('nothing is fed here');
  });
  for (const [label, cap] of [[`capped at ${BACKLOG_CAP_UNITS} units (the default)`, BACKLOG_CAP_UNITS], ['counted to the end', Infinity]] as const) {
    const times: number[] = [];
    let last = { unfed: 0, documents: 0, capped: false };
    for (let r = 0; r < Number(values.rounds); r++) {
      const t0 = performance.now();
      last = await feeder.backlog('infer', cap);
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    console.log(`${label}: ${last.unfed} units of ${last.documents} documents${last.capped ? ' (capped)' : ''}: median ${times[times.length >> 1]!.toFixed(0)} ms (${times.map((t) => t.toFixed(0)).join(', ')})`);
  }
} finally {
  await purgePrefix(redis, prefix);
  redis.disconnect();
}
