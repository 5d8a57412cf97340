/** `docbatch status [DOC]`: where documents are, as text or JSON. */
import { Command } from 'commander';
import { connectRedis } from '../../queues/connect.ts';
import { formatDuration, readProgress } from '../observe/progress.ts';
import { DocStore } from '../store/docs.ts';
import { REDIS_SETTINGS, settingOptions } from './options.ts';

export function statusCommand(): Command {
  const command = new Command('status')
    .description('Show documents: units done of all, rate, time left, outputs.')
    .argument('[doc]', 'a document id (or a prefix of one)')
    .option('--json', 'one JSON object per document')
    .option('--limit <n>', 'newest documents to show', '50');
  const load = settingOptions(command, REDIS_SETTINGS);
  return command.action(async (doc: string | undefined, opts: Record<string, unknown>) => {
    const config = load(opts);
    const redis = connectRedis(config.redisUrl, 'client');
    try {
      const store = new DocStore(redis, config.prefix);
      let ids = await store.list(doc ? 100_000 : Number(opts.limit));
      if (doc) ids = ids.filter((id) => id.startsWith(doc));
      const progress = await readProgress(store, ids);
      for (const p of progress) {
        const r = p.record;
        if (opts.json) {
          process.stdout.write(`${JSON.stringify({ docId: r.docId, source: r.meta.source, kind: r.meta.kind, state: r.state, units: r.units, done: r.done, failed: r.failed, rate: p.rate, eta_seconds: p.etaSeconds, prompt_tokens: r.promptTokens, completion_tokens: r.completionTokens, engine_seconds: r.engineMs / 1000, files: r.files })}\n`);
        } else {
          const rate = p.rate ? `${p.rate.toFixed(2)}/s` : '-';
          process.stdout.write(`${r.docId}  ${r.state.padEnd(9)} ${String(p.settled).padStart(6)}/${r.units}  ${r.failed ? `${r.failed} failed  ` : ''}${rate}  eta ${formatDuration(p.etaSeconds)}  ${r.meta.source}\n`);
        }
      }
      if (progress.length === 0 && !opts.json) process.stdout.write('no documents\n');
    } finally {
      redis.disconnect();
    }
  });
}
