/**
 * `docbatch enqueue INPUT...`: the producer. Everything printed that came from outside (file
 * names, ids and fields in error places) is escaped (src/printable.ts); `--json` lines too, as
 * JSON escapes.
 */
import { Command, Option } from 'commander';
import { connectRedis } from '../../queues/connect.ts';
import { DocbatchError } from '../errors.ts';
import type { FileOutcome } from '../ingest/batch.ts';
import type { PdfInspector } from '../ingest/pdf.ts';
import { createLogger } from '../observe/log.ts';
import { progressPrinter } from '../observe/bar.ts';
import { waitForDocs } from '../observe/progress.ts';
import { printWaitResults } from './wait-results.ts';
import { unservedWatch } from '../observe/workers.ts';
import { DocStore } from '../store/docs.ts';
import { jsonLine, printable } from '../printable.ts';
import { promptArgument, type TaskSpec } from '../task/load.ts';
import type { TaskUnit } from '../task/types.ts';
import { outFolder } from './out-folder.ts';
import { REDIS_SETTINGS, requireRedis, settingOptions } from './options.ts';

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** `inspector`: one already started by the caller (src/cli/main.ts); this verb closes it once every input is in. */
export function enqueueCommand(inspector?: PdfInspector): Command {
  const command = new Command('enqueue')
    .description('Validate inputs, store them and queue their units (pages, documents or chat chunks) for the workers.')
    .argument('<inputs...>', 'PDFs, images (PNG, JPEG, TIFF, WebP), chat exports (ChatGPT conversations.json or .zip, Claude, JSONL), or folders of them (walked recursively)')
    .option('--wait', 'wait until every document is written; exit 1 if a unit or a write failed')
    .option('--task <file|name>', 'what to ask: a task file (YAML or JSON, docs/tasks.md) or a built-in (transcribe, summarize)')
    .option('--prompt <text|@file>', "the task's prompt (with --task: replaces it; alone: the default task with this prompt)")
    .option('--schema <file.json>', 'answers must be JSON valid against this JSON Schema')
    .addOption(new Option('--unit <unit>', 'what one request covers').choices(['page', 'document', 'chunk', 'conversation']))
    .option('--model <name>', 'run every unit on this model (repeat for several: each gets its own run and output folder)', collect)
    .option('--priority <n>', 'feeding priority: higher goes first', '0')
    .option('--out <folder>', 'outputs go to this folder inside OUT_DIR')
    .option('--glob <pattern>', 'in folders, only files whose relative path matches (e.g. "**/*.pdf", "{*.pdf,scans/**/*.tif}"; case-insensitive)')
    .option('--json', 'one JSON object per line instead of text')
    .option('--force', 'redo documents that were enqueued before (new generation)')
    .option('--conversation-summary', 'chat exports: also summarize each conversation from its chunk summaries (a line with "chunk": "summary")');
  const load = settingOptions(command, [...REDIS_SETTINGS, 'blobDir', 'pdfPassword', 'chunkTokens', 'chunkOverlapTokens', 'feedDepth', 'feedDocuments', 'attempts', 'zipMaxRatio', 'zipMaxBytes', 'exportMaxChunks', 'inputMaxPages', 'waitNotesAfterMs']);
  return command.action(async (inputs: string[], opts: Record<string, unknown>) => {
    const config = load(opts);
    await requireRedis(config);
    const log = createLogger({ level: config.logLevel === 'info' ? 'warn' : config.logLevel, pretty: config.logFormat === 'pretty' });
    const json = opts.json === true;
    const out = typeof opts.out === 'string' ? outFolder(opts.out, config.outDir) : '';
    const priority = Number(opts.priority);
    if (!Number.isInteger(priority) || Math.abs(priority) > 1000) {
      throw new (await import('../errors.ts')).ConfigError(`--priority must be an integer from -1000 to 1000, got ${JSON.stringify(opts.priority)}`);
    }
    const task: TaskSpec = {
      ...(typeof opts.task === 'string' ? { task: opts.task } : {}),
      ...(typeof opts.prompt === 'string' ? { prompt: promptArgument(opts.prompt) } : {}),
      ...(typeof opts.schema === 'string' ? { schema: opts.schema } : {}),
      ...(typeof opts.unit === 'string' ? { unit: opts.unit as TaskUnit } : {}),
      ...(Array.isArray(opts.model) ? { models: opts.model as string[] } : {}),
    };
    const controller = new AbortController();
    // Said as ABORTED (exit 1), not as an unexpected error: documents already in go on.
    const onSignal = (signal: NodeJS.Signals) =>
      controller.abort(new DocbatchError('ABORTED', `interrupted (${signal}): the documents enqueued so far stay queued and are worked on; \`docbatch status\` follows them`));
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const { enqueueFiles } = await import('../ingest/batch.ts');
    const { openSink } = await import('../write/sinks.ts');
    const { lazyS3Client } = await import('../store/storage.ts');
    const outcomes = await enqueueFiles(inputs, config, log, {
      // A written document enqueued again is checked against OUT_DIR's outputs as seen from here.
      outputs: openSink(config, lazyS3Client(config)),
      ...(config.pdfPassword !== undefined ? { password: config.pdfPassword } : {}),
      force: opts.force === true,
      conversationSummary: opts.conversationSummary === true,
      out,
      task,
      priority,
      ...(typeof opts.glob === 'string' ? { glob: opts.glob } : {}),
      signal: controller.signal,
      onOutcome: (o) => printOutcome(o, json),
      ...(inspector ? { inspector } : {}),
    }).finally(() => inspector?.close());
    const rejected = outcomes.some((o) => o.error);
    const docIds = outcomes.flatMap((o) => (o.runs ?? []).map((r) => r.docId));
    if (opts.wait !== true || docIds.length === 0) {
      process.exitCode = rejected ? 2 : 0;
      return;
    }
    const redis = connectRedis(config.redisUrl, 'worker');
    try {
      const store = new DocStore(redis, config.prefix);
      const final = await waitForDocs(store, docIds, { signal: controller.signal, intervalMs: 250, ...(json ? {} : { onTick: progressPrinter(process.stderr), notes: unservedWatch(redis, config.prefix, { graceMs: config.waitNotesAfterMs }) }) });
      const failed = printWaitResults(final, json);
      process.exitCode = rejected ? 2 : failed > 0 ? 1 : 0;
    } finally {
      redis.disconnect();
    }
  });
}

function printOutcome(o: FileOutcome, json: boolean): void {
  const file = printable(o.file);
  if (o.skipped !== undefined) {
    if (json) process.stdout.write(`${jsonLine({ file: o.file, skipped: o.skipped })}\n`);
    else process.stdout.write(`skipped  ${file}: not a document (${printable(o.skipped)})\n`);
    return;
  }
  for (const r of o.runs ?? []) {
    if (json) {
      process.stdout.write(`${jsonLine({ file: o.file, docId: r.docId, kind: r.kind, units: r.units, outcome: r.outcome, name: r.name, task: r.task, unit: r.unit, model: r.model, queue: r.queue })}\n`);
      continue;
    }
    const what = r.unit === 'document' ? 'document' : r.kind === 'chat' ? (r.unit === 'conversation' ? 'units (conversations)' : 'chunks') : r.units === 1 ? 'page' : 'pages';
    const extra = r.outcome === 'resumed' ? ` (${r.settled} already done)` : r.outcome === 'done' ? ' (already written; --force to redo)' : '';
    const model = r.model ? `  model ${printable(r.model)}` : '';
    process.stdout.write(`${r.docId}  ${r.outcome.padEnd(8)}  ${file}  ${r.units} ${what}${model}${extra}\n`);
  }
  // After the runs that went in, if some did before one was refused.
  if (o.error) {
    if (json) {
      process.stdout.write(`${jsonLine({ file: o.file, error: { code: o.error.code, message: o.error.message, place: o.error.place ?? null } })}\n`);
    }
    const described = o.error.describe();
    process.stderr.write(`docbatch: rejected ${described.startsWith(file) ? described : `${file}: ${described}`}\n`);
  }
}
