/**
 * What a prefix holds in Redis, by kind of key, measured with MEMORY USAGE (bytes Redis itself
 * reports for each key, overhead included). Shared by bench/redis-footprint.ts and its test.
 */
import type { Redis } from 'ioredis';

export interface Footprint {
  keys: number;
  bytes: number;
  /** Bytes by kind of key: results, doc records, BullMQ jobs, events, ... */
  byKind: Record<string, { keys: number; bytes: number }>;
  /** Keys holding engine answers (a document's results): none once documents are written. */
  resultKeys: string[];
}

/** The kind of a key under `prefix`, for the table. */
export function kindOf(prefix: string, key: string): string {
  const rest = key.slice(prefix.length + 1);
  if (/^doc:[^:]+:r:\d+$/.test(rest)) return 'results (engine answers)';
  if (/^doc:[^:]+:g:\d+$/.test(rest)) return 'conversation groups';
  if (/^doc:[^:]+$/.test(rest)) return 'document records';
  if (/^(docs|active|names|queues|stats|workers)$/.test(rest)) return `index: ${rest}`;
  if (rest.startsWith('feed:')) return 'feeding rounds';
  if (rest === 'blob-pins' || rest.startsWith('blob-gc:')) return 'blob pins (gc guard, a day)';
  if (/^doc:[^:]+:claim$/.test(rest)) return 'name claims (an hour at most)';
  if (/^[^:]+:events$/.test(rest)) return 'BullMQ events streams';
  if (/^[^:]+:(completed|failed|wait|active|paused|delayed|prioritized|meta|id|stalled-check|marker|pc|limiter|stalled|de:.*)$/.test(rest)) return 'BullMQ queue structures';
  if (/^[^:]+:[^:]+:(lock|logs)$/.test(rest)) return 'BullMQ job locks and logs';
  if (/^[^:]+:[^:]+$/.test(rest)) return 'BullMQ jobs';
  return 'other';
}

export async function footprint(redis: Redis, prefix: string): Promise<Footprint> {
  const out: Footprint = { keys: 0, bytes: 0, byKind: {}, resultKeys: [] };
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length === 0) continue;
    const pipeline = redis.pipeline();
    for (const key of keys) pipeline.call('MEMORY', 'USAGE', key, 'SAMPLES', '0');
    const sizes = (await pipeline.exec()) ?? [];
    keys.forEach((key, i) => {
      const bytes = Number(sizes[i]?.[1] ?? 0);
      const kind = kindOf(prefix, key);
      const slot = (out.byKind[kind] ??= { keys: 0, bytes: 0 });
      slot.keys++;
      slot.bytes += bytes;
      out.keys++;
      out.bytes += bytes;
      if (kind === 'results (engine answers)') out.resultKeys.push(key);
    });
  } while (cursor !== '0');
  return out;
}
