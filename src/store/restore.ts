/**
 * Putting a written document's results back into Redis from its archive (for retry or a
 * rewrite), whole or not at all (RESTORE_LUA in scripts.ts). DocStore's `restoreState` and
 * `restoreResults` call these; archive.ts reads the archive they are given.
 */
import { randomBytes } from 'node:crypto';
import type { ScriptedRedis } from './doc-commands.ts';

/** The keys a restore touches: DocStore's. */
export interface RestoreKeys {
  readonly redis: ScriptedRedis;
  docKey(docId: string): string;
  unitsKey(docId: string, gen: number): string;
}

/** Whether a generation's results are in Redis, and the record's reopen count (read before an archive). */
export async function restoreState(keys: RestoreKeys, docId: string, gen: number): Promise<{ present: boolean; reopens: number } | null> {
  const [[, h], [, exists]] = (await keys.redis.multi().hmget(keys.docKey(docId), 'gen', 'reopens').exists(keys.unitsKey(docId, gen)).exec()) as [[unknown, Array<string | null>], [unknown, number]];
  if (Number(h[0] ?? -1) !== gen) return null;
  return { present: exists === 1, reopens: Number(h[1] ?? 0) };
}

/**
 * Puts results back (a written document's archive, for retry or a rewrite), whole or not at
 * all: they fill a temporary hash (expiring within the hour, should this process die), which
 * becomes the results only if none are there and the record was not reopened since `reopens`
 * was read (RESTORE_LUA in scripts.ts). 'changed': read the archive again. `entries` are taken
 * as they come (an archive streamed line by line) and sent in batches; if they fail part-way,
 * the temporary hash goes and nothing is restored.
 */
export async function restoreResults(keys: RestoreKeys, docId: string, gen: number, entries: AsyncIterable<[number, string]> | Iterable<[number, string]>, reopens: number): Promise<'restored' | 'present' | 'stale' | 'changed'> {
  const temp = `${keys.unitsKey(docId, gen)}:restoring:${randomBytes(6).toString('hex')}`;
  let batch: Record<string, string> = {};
  let count = 0;
  let chars = 0;
  const flush = async () => {
    if (count === 0) return;
    await keys.redis.multi().hset(temp, batch).expire(temp, 3600).exec();
    batch = {};
    count = 0;
    chars = 0;
  };
  try {
    for await (const [unit, result] of entries) {
      batch[String(unit)] = result;
      chars += result.length;
      if (++count >= 1000 || chars >= 8 << 20) await flush();
    }
    await flush();
  } catch (err) {
    await keys.redis.unlink(temp).catch(() => {});
    throw err;
  }
  const out = await keys.redis.docbatchRestore(keys.docKey(docId), keys.unitsKey(docId, gen), temp, gen, reopens);
  return out === 1 ? 'restored' : out === 0 ? 'present' : out === -1 ? 'stale' : 'changed';
}
