/**
 * queueNotes, the dashboard's notes of work nothing takes, from the shapes real heartbeats and
 * backlog counts have (the browser end: test/ui/dashboard-notes.test.ts).
 */
import { expect, it } from 'vitest';
import { queueNotes } from '../../src/observe/queue-notes.ts';
import type { WorkerBeat, WriterBeat } from '../../src/observe/workers.ts';

const beat = (name: string, queues: string[], over: Partial<WorkerBeat> = {}): WorkerBeat => ({ name, at: Date.now(), engine: 'http://e', model: 'vl', engineDown: false, paused: [], unhealthy: null, window: 16, inFlight: 0, active: 0, queues, ageMs: 0, silent: false, ...over });
const writer: WriterBeat = { name: 'w', at: Date.now(), startedAt: null, out: '/out', written: 0, failed: 0, redisFull: false, ageMs: 0, silent: false };

it('says nothing while work flows, and each queue nothing takes with why', () => {
  const gpu0 = beat('gpu0', ['infer', 'infer-vl-aaaaaa']);
  expect(queueNotes({ backlog: [{ queue: 'infer', waiting: 10 }], paused: [], workers: [gpu0], writers: [writer], unwritten: 1 })).toEqual([]);
  expect(queueNotes({ backlog: [{ queue: 'infer-other-bbbbbb', waiting: 1200 }, { queue: 'infer', waiting: 0 }], paused: [], workers: [gpu0], writers: [writer], unwritten: 1 })).toEqual([
    'queue "infer-other-bbbbbb": 1,200 units wait and no running worker serves it; start a worker whose engine serves its model',
  ]);
  const spent = beat('gpu0', ['infer'], { paused: ['budget'] });
  expect(queueNotes({ backlog: [{ queue: 'infer', waiting: 3 }], paused: [], workers: [spent], writers: [writer], unwritten: 1 })).toEqual([
    'queue "infer": 3 units wait and no worker that serves it takes work now (worker gpu0: intake paused: BUDGET_USD is spent)',
  ]);
  expect(queueNotes({ backlog: [{ queue: 'infer', waiting: 3 }], paused: [], workers: [{ ...gpu0, silent: true, ageMs: 60_000 }], writers: [writer], unwritten: 1 })).toEqual([
    'no worker has a heartbeat under this prefix (1 silent): 3 units wait; start one (docbatch worker)',
  ]);
  expect(queueNotes({ backlog: [], paused: ['write'], workers: [gpu0], writers: [writer], unwritten: 2 })).toEqual([
    'queue "write" is paused: no document is written until it is resumed (2 documents not written yet)',
  ]);
});
