/**
 * The Prometheus queries docs/operations.md gives operators ("Useful queries and alerts"),
 * evaluated by Prometheus's own `promtool test rules` (Debian's `prometheus` package, installed
 * by scripts/ensure-promtool.sh) over series as a Prometheus scraping the dashboard and two workers
 * holds them: every one of those serves `docbatch_queue_jobs` for the queues it knows (workers
 * with their `worker` label), and the scrape adds `job` and `instance`. The units queued must
 * come out once per queue, and the alert for work nobody takes must fire, also for a model's
 * queue that no worker serves.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const promtool = spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' }).stdout.trim();
const doc = readFileSync(resolve(import.meta.dirname, '../../docs/operations.md'), 'utf8');

/**
 * The expression of a bullet of "Useful queries and alerts": its code spans that name a docbatch
 * metric, with the words between them as written (`a` and `b` is `a and b`).
 */
function query(bullet: string): string {
  const start = doc.indexOf(`- ${bullet}`);
  expect(start, `operations.md has no bullet "${bullet}"`).toBeGreaterThan(0);
  const text = doc.slice(start, doc.indexOf('\n- ', start + 1));
  const spans = [...text.matchAll(/`([^`]+)`/g)].filter((m) => m[1]!.includes('docbatch_'));
  let out = '';
  spans.forEach((m, i) => {
    if (i > 0) out += ` ${text.slice(spans[i - 1]!.index! + spans[i - 1]![0].length, m.index).trim()} `;
    out += m[1]!;
  });
  return out.replace(/\s+/g, ' ').trim();
}

const MODEL_QUEUE = 'infer-acme-7b-0a1b2c';
/** A queue whose only worker was killed with 3 units in flight: active, orphaned, nothing waiting. */
const CRASHED_QUEUE = 'infer-gone-3b-112233';
/** A queue at work: 2 waiting, 4 active, none orphaned. */
const BUSY_QUEUE = 'infer-busy-1b-445566';
const series: Array<[string, string]> = [];
const scrape = (target: string, labels: string, name: string, queue: string, state: string | null, value: number) => {
  const l = [`job="${target}"`, `instance="${target}:9464"`, ...(labels ? [labels] : []), `queue="${queue}"`, ...(state ? [`state="${state}"`] : [])].join(',');
  series.push([`${name}{${l}}`, `${value}x30`]);
};
for (const [target, labels] of [['dashboard', ''], ['gpu0', 'worker="gpu0"'], ['gpu1', 'worker="gpu1"']] as const) {
  // The shared queue: 200 jobs waiting, 2000 units not fed yet; nothing taken (no worker takes work).
  scrape(target, labels, 'docbatch_queue_jobs', 'infer', 'waiting', 200);
  scrape(target, labels, 'docbatch_queue_jobs', 'infer', 'active', 0);
  // The workers serve another model: they do not count this queue.
  if (target === 'dashboard') {
    scrape(target, labels, 'docbatch_queue_jobs', MODEL_QUEUE, 'waiting', 5);
    scrape(target, labels, 'docbatch_queue_jobs', MODEL_QUEUE, 'active', 0);
  }
  scrape(target, labels, 'docbatch_queue_jobs', 'write', 'waiting', 0);
  scrape(target, labels, 'docbatch_queue_jobs', 'write', 'active', 1);
  for (const [queue, waiting, active, orphaned] of [[CRASHED_QUEUE, 0, 3, 3], [BUSY_QUEUE, 2, 4, 0]] as const) {
    scrape(target, labels, 'docbatch_queue_jobs', queue, 'waiting', waiting);
    scrape(target, labels, 'docbatch_queue_jobs', queue, 'active', active);
    scrape(target, labels, 'docbatch_queue_jobs_orphaned', queue, null, orphaned);
  }
  for (const queue of ['infer', 'write', ...(target === 'dashboard' ? [MODEL_QUEUE] : [])]) scrape(target, labels, 'docbatch_queue_jobs_orphaned', queue, null, 0);
}
scrape('dashboard', '', 'docbatch_queue_units_unfed', CRASHED_QUEUE, null, 0);
scrape('dashboard', '', 'docbatch_queue_units_unfed', BUSY_QUEUE, null, 10);
scrape('dashboard', '', 'docbatch_queue_units_unfed', 'infer', null, 2000);
scrape('dashboard', '', 'docbatch_queue_units_unfed', MODEL_QUEUE, null, 0);

/** Runs `promtool test rules` on one alert over `input` series; returns its status and output. */
function promtoolAlert(alert: string, expr: string, forDuration: string, input: Array<[string, string]>, checks: Array<{ eval_time: string; exp_alerts: Array<{ exp_labels: Record<string, string> }> }>): { status: number | null; out: string } {
  const dir = mkdtempSync(join(tmpdir(), 'docbatch-promql-'));
  try {
    writeFileSync(join(dir, 'rules.yml'), JSON.stringify({ groups: [{ name: 'docbatch', rules: [{ alert, expr, for: forDuration }] }] }));
    const tests = {
      rule_files: ['rules.yml'],
      evaluation_interval: '1m',
      tests: [{ interval: '1m', input_series: input.map(([series, values]) => ({ series, values })), alert_rule_test: checks.map((c) => ({ alertname: alert, ...c })) }],
    };
    writeFileSync(join(dir, 'tests.yml'), JSON.stringify(tests));
    const r = spawnSync(promtool, ['test', 'rules', 'tests.yml'], { cwd: dir, encoding: 'utf8' });
    return { status: r.status, out: `${r.stdout}\n${r.stderr}\nexpr: ${expr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('the engine alerts of docs/operations.md, in Prometheus', () => {
  // gpu0: its primary is dead, its fallback serves (ENGINE_FALLBACK_URLS). gpu1: one engine, dead.
  // gpu2: all well. What each worker's /metrics says (test/observe/fallback-observed.test.ts
  // checks a real worker says this), as scraped.
  const at = (worker: string) => `job="gpu",instance="${worker}:9464",worker="${worker}"`;
  const engineSeries: Array<[string, string]> = [
    [`docbatch_engine_up{${at('gpu0')}}`, '0x40'],
    [`docbatch_engine_serving{${at('gpu0')}}`, '1x40'],
    [`docbatch_engine_endpoint_up{${at('gpu0')},engine="http://gpu0:8000",role="primary"}`, '0x40'],
    [`docbatch_engine_endpoint_up{${at('gpu0')},engine="https://api.example.com/v1",role="fallback"}`, '1x40'],
    [`docbatch_engine_up{${at('gpu1')}}`, '0x40'],
    [`docbatch_engine_serving{${at('gpu1')}}`, '0x40'],
    [`docbatch_engine_endpoint_up{${at('gpu1')},engine="http://gpu1:8000",role="primary"}`, '0x40'],
    [`docbatch_engine_up{${at('gpu2')}}`, '1x40'],
    [`docbatch_engine_serving{${at('gpu2')}}`, '1x40'],
    [`docbatch_engine_endpoint_up{${at('gpu2')},engine="http://gpu2:8000",role="primary"}`, '1x40'],
  ];

  it('page only for the worker no engine serves, not for the one its fallback serves', () => {
    expect(promtool, 'promtool is missing: run scripts/ensure-promtool.sh').not.toBe('');
    const r = promtoolAlert('DocbatchNoEngine', query('a worker with no engine for long'), '10m', engineSeries, [
      { eval_time: '5m', exp_alerts: [] },
      { eval_time: '15m', exp_alerts: [{ exp_labels: { job: 'gpu', instance: 'gpu1:9464', worker: 'gpu1' } }] },
    ]);
    expect(r.status, r.out).toBe(0);
  });

  it('say which engine is down while its worker goes on with another', () => {
    const r = promtoolAlert('DocbatchEngineDown', query('an engine down for long while the worker goes on'), '30m', engineSeries, [
      { eval_time: '20m', exp_alerts: [] },
      { eval_time: '35m', exp_alerts: [{ exp_labels: { job: 'gpu', instance: 'gpu0:9464', worker: 'gpu0', engine: 'http://gpu0:8000', role: 'primary' } }] },
    ]);
    expect(r.status, r.out).toBe(0);
  });
});

it('the alert for documents and no writer fires while no writer beats, not while one does', () => {
  const dash = 'job="dashboard",instance="dashboard:3000"';
  const input: Array<[string, string]> = [
    [`docbatch_documents_unwritten{${dash}}`, '3x40'],
    // No writer for the first 20 minutes, then one.
    [`docbatch_writers_live{${dash}}`, `${'0 '.repeat(20)}1x20`],
  ];
  const r = promtoolAlert('DocbatchNoWriter', query('documents and no writer to write them'), '10m', input, [
    { eval_time: '5m', exp_alerts: [] },
    { eval_time: '15m', exp_alerts: [{ exp_labels: { job: 'dashboard', instance: 'dashboard:3000' } }] },
    { eval_time: '30m', exp_alerts: [] },
  ]);
  expect(r.status, r.out).toBe(0);
});

describe('deploy/prometheus/docbatch-alerts.yaml', () => {
  const file = resolve(import.meta.dirname, '../../deploy/prometheus/docbatch-alerts.yaml');
  const rules = (parse(readFileSync(file, 'utf8')) as { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> }).groups.flatMap((g) => g.rules);
  const expr = (alert: string) => rules.find((r) => r.alert === alert)?.expr.replace(/\s+/g, ' ').trim();

  it('passes promtool check rules, and its alerts are the queries operations.md gives', () => {
    expect(promtool, 'promtool is missing: run scripts/ensure-promtool.sh').not.toBe('');
    const r = spawnSync(promtool, ['check', 'rules', file], { encoding: 'utf8' });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(expr('DocbatchWorkNotTaken')).toBe(query('work waiting and nobody taking it'));
    expect(expr('DocbatchNoEngine')).toBe(query('a worker with no engine for long'));
    expect(expr('DocbatchEngineDown')).toBe(query('an engine down for long while the worker goes on'));
    expect(expr('DocbatchNoWriter')).toBe(query('documents and no writer to write them'));
  });
});

describe('the queries of docs/operations.md, in Prometheus', () => {
  it('count the units queued once per queue, and alert on work nobody takes', () => {
    expect(promtool, 'promtool is missing: run scripts/ensure-promtool.sh').not.toBe('');
    const dir = mkdtempSync(join(tmpdir(), 'docbatch-promql-'));
    try {
      const stuck = query('work waiting and nobody taking it');
      writeFileSync(join(dir, 'rules.yml'), JSON.stringify({ groups: [{ name: 'docbatch', rules: [{ alert: 'DocbatchWorkNotTaken', expr: stuck, for: '10m' }] }] }));
      const tests = {
        rule_files: ['rules.yml'],
        evaluation_interval: '1m',
        tests: [
          {
            interval: '1m',
            input_series: series.map(([s, values]) => ({ series: s, values })),
            promql_expr_test: [
              {
                expr: query('units queued in all'),
                eval_time: '5m',
                exp_samples: [
                  { labels: '{queue="infer"}', value: 2200 },
                  { labels: `{queue="${MODEL_QUEUE}"}`, value: 5 },
                  { labels: `{queue="${CRASHED_QUEUE}"}`, value: 0 },
                  { labels: `{queue="${BUSY_QUEUE}"}`, value: 12 },
                ],
              },
            ],
            alert_rule_test: [
              { eval_time: '5m', alertname: 'DocbatchWorkNotTaken', exp_alerts: [] },
              // The crashed queue's units are orphaned (its active jobs have no lock): not taken.
              { eval_time: '15m', alertname: 'DocbatchWorkNotTaken', exp_alerts: [{ exp_labels: { queue: 'infer' } }, { exp_labels: { queue: MODEL_QUEUE } }, { exp_labels: { queue: CRASHED_QUEUE } }] },
            ],
          },
        ],
      };
      writeFileSync(join(dir, 'tests.yml'), JSON.stringify(tests));
      const r = spawnSync(promtool, ['test', 'rules', 'tests.yml'], { cwd: dir, encoding: 'utf8' });
      expect(r.status, `${r.stdout}\n${r.stderr}\nunits queued: ${query('units queued in all')}\nnot taken: ${stuck}`).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
