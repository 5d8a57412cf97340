/**
 * The dashboard's notes: work that waits and nothing will take, per queue, read cheaply (the
 * backlog counts it already keeps, the heartbeats, each queue's pause flag, the count of
 * documents not yet written), so the Documents view can say at a glance what `status` says per
 * document (workers.ts unservedWork): a queue paused in Bull Board, a queue no running worker
 * serves, one whose workers all take nothing now (budget spent, engine down), no writer.
 * Before, the page listed every worker as "taking work" while nothing moved.
 */
import { Gauge, type Registry } from 'prom-client';
import { QUEUES } from '../../queues/contracts.ts';
import { printable } from '../printable.ts';
import { withDeadline } from '../timeouts.ts';
import { METRIC_PREFIX } from './metrics.ts';
import { workerProblem, type WorkerBeat, type WriterBeat } from './workers.ts';

export interface QueueNotesInput {
  /** Units waiting per infer queue (wait list plus not yet fed: BacklogReader). */
  backlog: ReadonlyArray<{ queue: string; waiting: number }>;
  /** Queues paused (their meta's `paused`), the write queue included. */
  paused: readonly string[];
  workers: readonly WorkerBeat[];
  writers: readonly WriterBeat[];
  /** Documents not yet written (`{p}:active`). */
  unwritten: number;
}

const plural = (n: number, word: string) => `${n.toLocaleString('en-US')} ${word}${n === 1 ? '' : 's'}`;

export function queueNotes(input: QueueNotesInput): string[] {
  const notes: string[] = [];
  const live = input.workers.filter((w) => !w.silent);
  for (const { queue, waiting } of input.backlog) {
    if (waiting <= 0) continue;
    const name = JSON.stringify(printable(queue));
    if (input.paused.includes(queue)) {
      notes.push(`queue ${name} is paused: ${plural(waiting, 'unit')} wait until it is resumed (Resume on its page)`);
      continue;
    }
    if (live.length === 0) continue; // said once, below
    const serving = live.filter((w) => w.queues.includes(queue));
    if (serving.length === 0) {
      notes.push(`queue ${name}: ${plural(waiting, 'unit')} wait and no running worker serves it; start a worker whose engine serves its model`);
    } else if (serving.every((w) => workerProblem(w) !== null)) {
      notes.push(`queue ${name}: ${plural(waiting, 'unit')} wait and no worker that serves it takes work now (${serving.map((w) => `worker ${printable(w.name)}: ${printable(workerProblem(w)!)}`).join('; ')})`);
    }
  }
  if (live.length === 0 && input.backlog.some((b) => b.waiting > 0 && !input.paused.includes(b.queue))) {
    const units = input.backlog.filter((b) => !input.paused.includes(b.queue)).reduce((n, b) => n + b.waiting, 0);
    notes.push(`no worker has a heartbeat under this prefix (${input.workers.length > 0 ? `${input.workers.length} silent` : 'none started'}): ${plural(units, 'unit')} wait; start one (docbatch worker)`);
  }
  if (input.unwritten > 0) {
    if (input.paused.includes(QUEUES.write)) {
      notes.push(`queue "${QUEUES.write}" is paused: no document is written until it is resumed (${plural(input.unwritten, 'document')} not written yet)`);
    } else if (!input.writers.some((w) => !w.silent)) {
      notes.push(`no writer has a heartbeat under this prefix (${input.writers.length > 0 ? `${input.writers.length} silent` : 'none started'}): ${plural(input.unwritten, 'document')} not written yet will wait for one; start one (docbatch writer)`);
    }
  }
  return notes;
}

/**
 * Registers, for the dashboard, `docbatch_writers_live` (writers with a heartbeat in the last
 * 20 s) and `docbatch_documents_unwritten` (documents not written yet): a writer has no
 * /metrics of its own, so without these nothing told Prometheus that documents wait for a
 * writer that does not run.
 */
export function registerWriterMetrics(registry: Registry, read: () => Promise<{ writers: readonly WriterBeat[]; unwritten: number }>, timeoutMs = 2000): void {
  let sample: Promise<{ writers: readonly WriterBeat[]; unwritten: number } | null> | null = null;
  let at = 0;
  const once = () => {
    if (!sample || performance.now() - at > 250) {
      at = performance.now();
      sample = withDeadline(read(), timeoutMs).catch(() => null);
    }
    return sample;
  };
  new Gauge({
    name: `${METRIC_PREFIX}writers_live`,
    help: 'Writers with a heartbeat in the last 20 s (docbatch writer; each beats every 5 s).',
    registers: [registry],
    async collect() {
      this.reset();
      const s = await once();
      if (s) this.set(s.writers.filter((w) => !w.silent).length);
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}documents_unwritten`,
    help: 'Documents enqueued and not written yet (running, or waiting for a writer).',
    registers: [registry],
    async collect() {
      this.reset();
      const s = await once();
      if (s) this.set(s.unwritten);
    },
  });
}
