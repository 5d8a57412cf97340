/** `docbatch status [DOC]`: where documents are, what they cost, as text or JSON (names escaped: src/printable.ts). */
import { Command } from 'commander';
import { connectRedis } from '../../queues/connect.ts';
import { progressLine } from '../observe/bar.ts';
import { readProgress, type DocProgress } from '../observe/progress.ts';
import { DocStore } from '../store/docs.ts';
import { jsonLine } from '../printable.ts';
import { REDIS_SETTINGS, requireRedis, settingOptions } from './options.ts';

export function statusCommand(): Command {
  const command = new Command('status')
    .description('Show documents: units done of all, rate, time left, tokens, engine time and cost.')
    .argument('[doc]', 'a document id (or the start of one)')
    .option('--json', 'one JSON object per document, then one with the totals')
    .option('--limit <n>', 'newest documents to show', '50');
  const load = settingOptions(command, [...REDIS_SETTINGS, 'gpuHourlyUsd']);
  return command.action(async (doc: string | undefined, opts: Record<string, unknown>) => {
    const config = load(opts);
    await requireRedis(config);
    const price = config.gpuHourlyUsd;
    const costOf = (engineMs: number) => (price === undefined ? null : Math.round((engineMs / 3_600_000) * price * 1e6) / 1e6);
    const redis = connectRedis(config.redisUrl, 'client');
    try {
      const store = new DocStore(redis, config.prefix);
      let ids = await store.list(doc ? 100_000 : Number(opts.limit));
      if (doc) ids = ids.filter((id) => id.startsWith(doc));
      const progress = await readProgress(store, ids);
      const total = { documents: progress.length, units: 0, done: 0, failed: 0, prompt_tokens: 0, completion_tokens: 0, engine_seconds: 0, cost_usd: null as number | null };
      for (const p of progress) {
        const r = p.record;
        total.units += r.units;
        total.done += r.done;
        total.failed += r.failed;
        total.prompt_tokens += r.promptTokens;
        total.completion_tokens += r.completionTokens;
        total.engine_seconds += r.engineMs / 1000;
        if (opts.json) process.stdout.write(`${jsonLine(docJson(p, costOf(r.engineMs)))}\n`);
        else process.stdout.write(`${r.docId}  ${r.state.padEnd(9)} ${progressLine(p)}  ${tokensAndCost(r.completionTokens, r.engineMs, costOf(r.engineMs))}\n`);
      }
      total.cost_usd = costOf(total.engine_seconds * 1000);
      if (opts.json) {
        process.stdout.write(`${jsonLine({ total })}\n`);
      } else if (progress.length === 0) {
        process.stdout.write('no documents\n');
      } else {
        const perK = total.cost_usd !== null && total.done > 0 ? `, $${((total.cost_usd / total.done) * 1000).toFixed(4)} per 1,000 units` : '';
        process.stdout.write(
          `total: ${total.documents} documents, ${total.done + total.failed}/${total.units} units (${total.failed} failed), ${total.completion_tokens} tokens generated, ${total.engine_seconds.toFixed(1)} engine-s${total.cost_usd !== null ? `, $${total.cost_usd.toFixed(4)}${perK}` : ' (set GPU_HOURLY_USD for cost)'}\n`,
        );
      }
    } finally {
      redis.disconnect();
    }
  });
}

function tokensAndCost(completion: number, engineMs: number, cost: number | null): string {
  return `${completion} tok ${(engineMs / 1000).toFixed(1)} engine-s${cost !== null ? ` $${cost.toFixed(4)}` : ''}`;
}

function docJson(p: DocProgress, cost: number | null): Record<string, unknown> {
  const r = p.record;
  return {
    docId: r.docId,
    source: r.meta.source,
    kind: r.meta.kind,
    state: r.state,
    units: r.units,
    done: r.done,
    failed: r.failed,
    rate: p.rate,
    eta_seconds: p.etaSeconds,
    prompt_tokens: r.promptTokens,
    completion_tokens: r.completionTokens,
    engine_seconds: r.engineMs / 1000,
    cost_usd: cost,
    started_at: r.startedAt,
    finished_at: r.finishedAt,
    files: r.files,
  };
}
