/**
 * Which `infer` queue a unit goes to. Work that names no model goes to the shared queue `infer`,
 * which every worker whose model takes images consumes. Work for a named model goes to that
 * model's own queue, which only workers whose engine serves that model consume. Queue names are
 * BullMQ queue names (no `:`), stable for a given model name, and readable in Redis and in
 * deployment files (KEDA's trigger names the model: deploy/kubernetes/base/keda.yaml).
 */
import { createHash } from 'node:crypto';
import { QUEUES } from './contracts.ts';

/** The shared queue: units of runs that name no model. */
export const SHARED_INFER_QUEUE = QUEUES.infer;

/**
 * The queue of a model: `infer-` + a readable slug of the name + 6 hex of its sha256 (two names
 * that slug alike stay apart). `Qwen/Qwen2.5-VL-7B-Instruct` → `infer-qwen-qwen2.5-vl-7b-instruct-<6 hex>`.
 * null (no model named) → the shared queue.
 */
export function inferQueueFor(model: string | null | undefined): string {
  if (!model) return SHARED_INFER_QUEUE;
  const slug = model
    .toLowerCase()
    .replace(/[^a-z0-9.]+/g, '-')
    .replace(/^[-.]+|[-.]+$/g, '')
    .slice(0, 48);
  const hash = createHash('sha256').update(model).digest('hex').slice(0, 6);
  return `${SHARED_INFER_QUEUE}-${slug || 'model'}-${hash}`;
}

/** Whether `name` is an infer queue's name as inferQueueFor makes them (`infer`, `infer-<slug>-<hash>`). */
export function isInferQueueName(name: string): boolean {
  return /^infer(-[a-z0-9.-]{1,80})?$/.test(name);
}

/**
 * The Redis list BullMQ keeps a queue's waiting jobs in: about FEED_DEPTH of them, the rest wait in
 * the feeding round (src/store/feed.ts), so its length is not the queue's backlog.
 */
export function waitListKey(prefix: string, queue: string): string {
  return `${prefix}:${queue}:wait`;
}
