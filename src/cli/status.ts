/**
 * `docbatch status [FILE|ID]`: where documents are, what they cost, as text or JSON (names
 * escaped: src/printable.ts). A document is found by its id or the start of one, its input path
 * or file name (or a part of its path), or the content of a file that exists. After the
 * documents: the total (units, tokens, engine time, cost, rate, elapsed time, time left), one
 * line per model when there are several, what is wrong with any worker (its engine down,
 * unhealthy, paused, silent), the writers, and work no running worker or writer will take.
 */
import { Command } from 'commander';
import { wholeNumber } from './number-options.ts';
import { connectRedis, openQueue } from '../../queues/connect.ts';
import { progressLine } from '../observe/bar.ts';
import { byModel, formatDuration, formatRate, readProgress, totalsOf, type DocProgress, type Totals } from '../observe/progress.ts';
import { pausedWork, readPausedQueues, readWorkers, readWriters, unservedWork, unwrittenWork, workerNote, workerProblem, writerProblem } from '../observe/workers.ts';
import { costPer1000Units, costUsd } from '../observe/cost.ts';
import { readWriteRetries, writeFailingLine, type WriteRetrying } from '../observe/write-retries.ts';
import { DocStore } from '../store/docs.ts';
import { findDocuments } from '../store/find.ts';
import { jsonLine, printable } from '../printable.ts';
import { formatTokens, totalJson, usageKeys } from '../usage.ts';
import { REDIS_SETTINGS, requireRedis, settingOptions } from './options.ts';

/** Unfinished documents read besides those shown, for the notes of work nothing takes. */
const UNFINISHED_READ = 10_000;

export function statusCommand(): Command {
  const command = new Command('status')
    .description('Show documents: units done of all, rate, time left, tokens, engine time and cost; totals, models, and workers in trouble.')
    .argument('[doc]', 'a document id (or its start), an input file name or path (or part of one), or a file whose content was enqueued')
    .option('--json', 'one JSON object per document, then {models}, {workers}, {writers}, and {total} last')
    .option('--limit <n>', 'newest documents to show (a whole number from 1)', wholeNumber('--limit'), 50);
  const load = settingOptions(command, [...REDIS_SETTINGS, 'gpuHourlyUsd']);
  return command.action(async (doc: string | undefined, opts: Record<string, unknown>) => {
    const config = load(opts);
    await requireRedis(config);
    const price = config.gpuHourlyUsd;
    // The report's figures (observe/cost.ts): per 1,000 units answered, failures paid for included.
    const costOf = (engineMs: number, done: number): Cost => ({ usd: costUsd(engineMs, price), per1000: costPer1000Units(engineMs, done, price) });
    const redis = connectRedis(config.redisUrl, 'client');
    try {
      const store = new DocStore(redis, config.prefix);
      const ids = doc ? (await findDocuments(store, doc, { partial: true })).map((r) => r.docId) : await store.list(Number(opts.limit));
      // A document asked for by name and not found is an error a script can test (as retry's):
      // said on stderr, and nothing on stdout, so `--json` output is never an empty report
      // (a total of 0 documents) that reads as success, nor are worker lines taken for its status.
      if (doc && ids.length === 0) {
        process.stderr.write(`docbatch: DOC_NOT_FOUND: no document found for ${printable(doc)}\n`);
        process.exitCode = 2;
        return;
      }
      const progress = await readProgress(store, ids);
      // The total is of the documents shown: with more under the prefix than --limit, say so
      // (the index may still hold a few whose record expired, until gc removes them).
      const indexed = doc ? ids.length : await redis.zcard(store.docsKey);
      const cut = indexed > ids.length;
      const now = Date.now();
      const total = totalsOf(progress, now);
      const models = byModel(progress, now);
      const workers = await readWorkers(redis, config.prefix, now);
      const writers = await readWriters(redis, config.prefix, now);
      // What waits and nothing takes is said of every unfinished document, not only the newest
      // --limit shown: an older model's documents wait just as long.
      const unfinished = doc ? progress : [...progress, ...(await readProgress(store, (await store.active(UNFINISHED_READ)).filter((id) => !ids.includes(id))))];
      const pausedQueues = await readPausedQueues(redis, config.prefix, unfinished);
      // Writes that failed and wait to be tried again: said, not shown as a slow document.
      const writeQueue = openQueue('write', config, redis);
      const retrying = await readWriteRetries(writeQueue, progress).finally(() => writeQueue.close());
      const out = (line: string) => process.stdout.write(`${line}\n`);
      if (opts.json) {
        for (const p of progress) out(jsonLine(docJson(p, costOf(p.record.engineMs, p.record.done), retrying.get(p.record.docId))));
        out(jsonLine({ models: models.map((m) => ({ model: m.model, ...totalsJson(m.totals, costOf(m.totals.engineMs, m.totals.done)) })) }));
        out(jsonLine({ workers: workers.map((w) => ({ name: w.name, engine: w.engine, model: w.model, engine_down: w.engineDown, sending_to: w.sendingTo === undefined ? w.engine : w.sendingTo, fallbacks: w.fallbacks ?? [], unhealthy: w.unhealthy, paused: w.paused, silent: w.silent, problem: workerProblem(w), note: workerNote(w) })) }));
        out(jsonLine({ writers: writers.map((w) => ({ name: w.name, out: w.out, written: w.written, failed: w.failed, silent: w.silent, problem: writerProblem(w) })) }));
        out(jsonLine({ total: { ...totalsJson(total, costOf(total.engineMs, total.done)), documents_total: cut ? indexed : progress.length } }));
        return;
      }
      if (progress.length === 0) out('no documents');
      for (const p of progress) {
        const r = p.record;
        out(`${r.docId}  ${p.state.padEnd(7)} ${progressLine(p)}  ${tokensAndCost(formatTokens(r.completionTokens, r.unitsWithoutUsage), r.engineMs, costOf(r.engineMs, r.done).usd)}`);
        // A document failed with every unit answered: why (its outputs could not be written).
        if (r.writeError) out(`${r.docId}  write failed: ${r.writeError.code}: ${printable(r.writeError.message)} (docbatch retry ${r.docId} writes it again)`);
        const w = retrying.get(r.docId);
        if (w) out(writeFailingLine(r.docId, w));
      }
      if (progress.length > 0) {
        out(`total: ${summary(total, costOf(total.engineMs, total.done), true)}`);
        if (cut) out(`the total is of the newest ${progress.length} of ${indexed} documents: --limit ${indexed} counts them all`);
        if (models.length > 1) for (const m of models) out(`model ${printable(m.model ?? '(the engine\u2019s own)')}: ${summary(m.totals, costOf(m.totals.engineMs, m.totals.done), false)}`);
      }
      const troubled = workers.map((w) => ({ w, problem: workerProblem(w) })).filter((x) => x.problem !== null);
      if (workers.length > 0) out(`workers: ${workers.length}${troubled.length > 0 ? `, ${troubled.length} not taking work` : ', all taking work'}`);
      else if (unfinished.some((p) => !p.finished && p.record.state !== 'complete')) out('workers: none has a heartbeat: start one (docbatch worker), or check that workers reach this Redis and prefix');
      for (const { w, problem } of troubled) out(`worker ${printable(w.name)}: ${printable(problem!)}`);
      // Taking work, but on a fallback (or with one down): worth knowing at a glance.
      for (const w of workers) {
        const note = workerNote(w);
        if (note) out(`worker ${printable(w.name)}: ${printable(note)}`);
      }
      // A model no running worker serves (with workers: none at all is said above).
      // A paused queue is said whether or not workers run; work no worker takes, when some run.
      for (const note of workers.length > 0 ? unservedWork(unfinished, workers, { pausedQueues }) : pausedWork(unfinished, pausedQueues)) out(note);
      // Writers as workers: how many, the ones not writing, and documents none will write.
      const stuck = writers.map((w) => ({ w, problem: writerProblem(w) })).filter((x) => x.problem !== null);
      if (writers.length > 0) out(`writers: ${writers.length}${stuck.length > 0 ? `, ${stuck.length} not writing` : ', all writing'}`);
      for (const { w, problem } of stuck) out(`writer ${printable(w.name)}: ${printable(problem!)}`);
      for (const note of unwrittenWork(unfinished, writers, pausedQueues)) out(note);
    } finally {
      redis.disconnect();
    }
  });
}

/** Cost and cost per 1,000 units answered (null: no GPU_HOURLY_USD, or nothing answered). */
interface Cost {
  usd: number | null;
  per1000: number | null;
}

/** `1234 tok`, `≥1234 tok` (some units had no usage), `? tok` (none reported). */
function tokensAndCost(completion: string, engineMs: number, cost: number | null): string {
  return `${completion} tok ${(engineMs / 1000).toFixed(1)} engine-s${cost !== null ? ` $${cost.toFixed(4)}` : ''}`;
}

/** `3 documents, 40/52 units (1 failed), 1234 tokens generated, 12.0 engine-s, $0.0120, 3.2/s, elapsed 12s, eta 4s` (`≥1234`, `?`: src/usage.ts). */
function summary(t: Totals, cost: Cost, hint: boolean): string {
  const settled = t.done + t.failed;
  const perK = cost.per1000 !== null ? `, $${cost.per1000.toFixed(4)} per 1,000 units answered` : '';
  const money = cost.usd !== null ? `, $${cost.usd.toFixed(4)}${perK}` : hint ? ' (set GPU_HOURLY_USD for cost)' : '';
  const time = `, ${formatRate(t.rate)}, elapsed ${formatDuration(t.elapsedSeconds)}${t.finished ? '' : `, eta ${formatDuration(t.etaSeconds)}`}`;
  return `${t.documents} documents, ${settled}/${t.units} units (${t.failed} failed), ${formatTokens(t.completionTokens, t.unitsWithoutUsage)} tokens generated, ${(t.engineMs / 1000).toFixed(1)} engine-s${money}${time}`;
}

function totalsJson(t: Totals, cost: Cost): Record<string, unknown> {
  return {
    documents: t.documents,
    states: t.byState,
    units: t.units,
    done: t.done,
    failed: t.failed,
    prompt_tokens: totalJson(t.promptTokens, t.unitsWithoutUsage),
    completion_tokens: totalJson(t.completionTokens, t.unitsWithoutUsage),
    ...usageKeys(t.unitsWithoutUsage),
    engine_seconds: t.engineMs / 1000,
    cost_usd: cost.usd,
    cost_per_1000_units: cost.per1000,
    rate: t.rate,
    elapsed_seconds: t.elapsedSeconds,
    eta_seconds: t.etaSeconds,
  };
}

function docJson(p: DocProgress, cost: Cost, retrying: WriteRetrying | undefined): Record<string, unknown> {
  const r = p.record;
  return {
    docId: r.docId,
    source: r.meta.source,
    name: r.meta.name,
    kind: r.meta.kind,
    model: r.meta.model,
    state: r.state,
    view_state: p.state,
    units: r.units,
    done: r.done,
    failed: r.failed,
    rate: p.rate,
    eta_seconds: p.etaSeconds,
    prompt_tokens: totalJson(r.promptTokens, r.unitsWithoutUsage),
    completion_tokens: totalJson(r.completionTokens, r.unitsWithoutUsage),
    ...usageKeys(r.unitsWithoutUsage),
    engine_seconds: r.engineMs / 1000,
    cost_usd: cost.usd,
    cost_per_1000_units: cost.per1000,
    started_at: r.startedAt,
    finished_at: r.finishedAt,
    files: r.files,
    /** Why its outputs could not be written (null: they were, or are not yet). */
    write_error: r.writeError,
    /** Its write failed and waits to be tried again (null: not so). */
    write_retrying: retrying ? { code: retrying.code, message: retrying.message, attempts_made: retrying.attemptsMade, attempts: retrying.attempts } : null,
  };
}
