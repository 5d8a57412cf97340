/**
 * `docbatch enqueue FILE...`: the producer. Everything printed that came from outside (file
 * names, ids and fields in error places) is escaped (src/printable.ts); `--json` lines too, as
 * JSON escapes.
 */
import { Command } from 'commander';
import { resolve } from 'node:path';
import { connectRedis } from '../../queues/connect.ts';
import type { FileOutcome } from '../ingest/batch.ts';
import { createLogger } from '../observe/log.ts';
import { progressPrinter } from '../observe/bar.ts';
import { waitForDocs } from '../observe/progress.ts';
import { DocStore } from '../store/docs.ts';
import { jsonLine, printable } from '../printable.ts';
import { REDIS_SETTINGS, settingOptions } from './options.ts';

export function enqueueCommand(): Command {
  const command = new Command('enqueue')
    .description('Validate files, store them and queue one job per page or chat chunk.')
    .argument('<files...>', 'PDF files and chat exports (ChatGPT conversations.json or .zip, Claude, JSONL)')
    .option('--wait', 'wait until every document is written; exit 1 if a unit failed')
    .option('--json', 'one JSON object per line instead of text')
    .option('--force', 'redo documents that were enqueued before (new generation)')
    .option('--conversation-summary', 'chat exports: also summarize each conversation from its chunk summaries (a line with "chunk": "summary")');
  const load = settingOptions(command, [...REDIS_SETTINGS, 'outDir', 'blobDir', 'pdfPassword', 'chunkTokens', 'chunkOverlapTokens', 'maxQueued', 'attempts', 'zipMaxRatio', 'zipMaxBytes', 'exportMaxChunks']);
  return command.action(async (files: string[], opts: Record<string, unknown>) => {
    const config = load(opts);
    const log = createLogger({ level: config.logLevel === 'info' ? 'warn' : config.logLevel, pretty: config.logFormat === 'pretty' });
    const json = opts.json === true;
    const controller = new AbortController();
    const onSignal = () => controller.abort(new Error('interrupted'));
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const { enqueueFiles } = await import('../ingest/batch.ts');
    const outcomes = await enqueueFiles(files, config, log, {
      ...(config.pdfPassword !== undefined ? { password: config.pdfPassword } : {}),
      force: opts.force === true,
      conversationSummary: opts.conversationSummary === true,
      // --out is recorded with the document only when given explicitly.
      ...(opts.out !== undefined ? { outDir: resolve(String(opts.out)) } : {}),
      signal: controller.signal,
      onOutcome: (o) => printOutcome(o, json),
    });
    const rejected = outcomes.some((o) => o.error);
    const docIds = outcomes.flatMap((o) => (o.report ? [o.report.docId] : []));
    if (opts.wait !== true || docIds.length === 0) {
      process.exitCode = rejected ? 2 : 0;
      return;
    }
    const redis = connectRedis(config.redisUrl, 'worker');
    try {
      const store = new DocStore(redis, config.prefix);
      const final = await waitForDocs(store, docIds, { signal: controller.signal, intervalMs: 250, ...(json ? {} : { onTick: progressPrinter(process.stderr) }) });
      let failedUnits = 0;
      for (const p of final) {
        failedUnits += p.record.failed;
        if (json) process.stdout.write(`${jsonLine({ docId: p.record.docId, state: 'written', units: p.record.units, completed: p.record.done, failed: p.record.failed, files: p.record.files })}\n`);
        else process.stdout.write(`${p.record.docId}  written  ${printable(p.record.meta.source)}: ${p.record.done}/${p.record.units} done${p.record.failed ? `, ${p.record.failed} FAILED` : ''} → ${p.record.files.map(printable).join(', ')}\n`);
      }
      process.exitCode = rejected ? 2 : failedUnits > 0 ? 1 : 0;
    } finally {
      redis.disconnect();
    }
  });
}

function printOutcome(o: FileOutcome, json: boolean): void {
  const file = printable(o.file);
  if (o.error) {
    if (json) {
      process.stdout.write(`${jsonLine({ file: o.file, error: { code: o.error.code, message: o.error.message, place: o.error.place ?? null } })}\n`);
    }
    const described = o.error.describe();
    process.stderr.write(`docbatch: rejected ${described.startsWith(file) ? described : `${file}: ${described}`}\n`);
    return;
  }
  const r = o.report!;
  if (json) {
    process.stdout.write(`${jsonLine({ file: o.file, docId: r.docId, kind: r.kind, units: r.units, outcome: r.outcome, added: r.added, name: r.name })}\n`);
    return;
  }
  const what = r.kind === 'pdf' ? 'pages' : 'chunks';
  const extra = r.outcome === 'resumed' ? ` (${r.settled} already done, ${r.added} queued)` : r.outcome === 'done' ? ' (already written; --force to redo)' : '';
  process.stdout.write(`${r.docId}  ${r.outcome.padEnd(8)}  ${file}  ${r.units} ${what}${extra}\n`);
}
