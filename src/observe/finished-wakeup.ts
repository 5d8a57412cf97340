/**
 * Sleeps between polls of `waitForDocs` that end early when one of the awaited documents is
 * written or failed: the store publishes each such document's id on its `finishedChannel`
 * (docs.ts). `enqueue --wait` then returns as the last output lands instead of up to a poll
 * later. Best effort: a Redis that refuses pub/sub (an ACL without channels, a proxy that does
 * not pass it) or a writer of an older version leaves the plain poll, which stays as it was.
 */
import type { Redis } from 'ioredis';
import type { DocStore } from '../store/docs.ts';
import { withDeadline } from '../timeouts.ts';

/** Polls woken by a message are at least this far apart (a burst of documents is one poll). */
const MIN_GAP_MS = 30;
/** How long subscribing may take before the wait goes on without it. */
const SUBSCRIBE_TIMEOUT_MS = 2000;

export interface Wakeup {
  /** Waits `ms`, or less once an awaited document is announced finished. */
  sleep(ms: number): Promise<void>;
  close(): void;
}

export async function finishedWakeup(store: DocStore, docIds: readonly string[]): Promise<Wakeup> {
  const wanted = new Set(docIds);
  let announced = false;
  let wake: (() => void) | undefined;
  let sub: Redis | undefined;
  try {
    // Subscribed again after a reconnect by this module, not by ioredis (autoResubscribe): its
    // own SUBSCRIBE's promise is nobody's, and a close before the reply rejected it unhandled
    // ("Connection is closed."), which ended `enqueue --wait` with exit 1 after its last line.
    sub = store.redis.duplicate({ lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false, autoResubscribe: false, connectionName: 'docbatch:wait' });
    let subscribed = false;
    sub.on('error', () => {}); // the poll goes on regardless; nothing to report
    sub.on('ready', () => {
      if (subscribed) sub?.subscribe(store.finishedChannel).catch(() => {});
    });
    sub.on('message', (_channel: string, id: string) => {
      if (!wanted.has(id)) return;
      announced = true;
      wake?.();
    });
    await withDeadline(sub.connect().then(() => sub!.subscribe(store.finishedChannel)), SUBSCRIBE_TIMEOUT_MS);
    subscribed = true;
  } catch {
    sub?.disconnect();
    sub = undefined;
  }
  let lastPoll = 0;
  return {
    async sleep(ms: number): Promise<void> {
      if (!announced) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, ms);
          function done() {
            clearTimeout(timer);
            wake = undefined;
            resolve();
          }
          wake = done;
        });
      }
      announced = false;
      const gap = MIN_GAP_MS - (Date.now() - lastPoll);
      if (gap > 0) await new Promise((r) => setTimeout(r, gap));
      lastPoll = Date.now();
    },
    close(): void {
      sub?.disconnect();
    },
  };
}
