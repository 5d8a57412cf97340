/**
 * `docbatch retry FILE|DOC...`: run failed units (and failed writes) again. File names printed
 * are escaped (src/printable.ts), as enqueue prints them.
 */
import { Command } from 'commander';
import { connectRedis } from '../../queues/connect.ts';
import { createLogger } from '../observe/log.ts';
import { progressPrinter } from '../observe/bar.ts';
import { waitForDocs } from '../observe/progress.ts';
import { printWaitResults } from './wait-results.ts';
import { unservedWatch } from '../observe/workers.ts';
import { DocStore } from '../store/docs.ts';
import { jsonLine, printable } from '../printable.ts';
import { ConfigError, ERROR_CODES } from '../errors.ts';
import { REDIS_SETTINGS, requireRedis, settingOptions } from './options.ts';

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** States of a document that has not ended (written or failed). */
const UNFINISHED = new Set(['enqueuing', 'running', 'complete']);

export function retryCommand(): Command {
  const command = new Command('retry')
    .description("Run a document's failed units again (only those: successful units are never sent again), then rewrite its outputs; a document whose write failed is written again.")
    .argument('<targets...>', 'input files (every run of their content) or document ids (or their start)')
    .option('--code <CODE>', 'only failures with this code (repeatable)', collect)
    .option('--wait', 'wait until the documents are written again; exit 1 if a unit still failed (or a document could not be retried)')
    .option('--rewrite', 'write the outputs again even when no unit failed')
    .option('--json', 'one JSON object per document');
  // --password / --password-file / PDF_PASSWORD: an encrypted PDF's password leaves Redis once it is written.
  const load = settingOptions(command, [...REDIS_SETTINGS, 'blobDir', 'pdfPassword', 'waitNotesAfterMs']);
  return command.action(async (targets: string[], opts: Record<string, unknown>) => {
    // A misspelt code would match no failure: nothing retried, and nothing said why.
    for (const code of Array.isArray(opts.code) ? (opts.code as string[]) : []) {
      if (code in ERROR_CODES) continue;
      const { didYouMean } = await import('../task/load.ts');
      throw new ConfigError(`--code ${printable(code)} is not an error code${didYouMean(code, Object.keys(ERROR_CODES))} (docs/errors.md lists them)`);
    }
    const config = load(opts);
    await requireRedis(config);
    const json = opts.json === true;
    const log = createLogger({ level: config.logLevel === 'info' ? 'warn' : config.logLevel, pretty: config.logFormat === 'pretty' });
    const { retryDocuments } = await import('../ingest/retry.ts');
    const { outcomes, unknown, failures } = await retryDocuments(targets, config, log, {
      ...(Array.isArray(opts.code) ? { codes: opts.code as string[] } : {}),
      ...(config.pdfPassword !== undefined ? { password: config.pdfPassword } : {}),
      ...(opts.rewrite === true ? { rewrite: true } : {}),
    });
    for (const target of unknown) process.stderr.write(`docbatch: DOC_NOT_FOUND: no document found for ${printable(target)}\n`);
    // A document that could not be retried is said, with its code and place; the others went on.
    for (const f of failures) {
      if (json) process.stdout.write(`${jsonLine({ docId: f.docId, source: f.source, error: { code: f.error.code, message: f.error.message } })}\n`);
      process.stderr.write(`docbatch: ${f.docId} (${printable(f.source)}): not retried: ${f.error.describe()}\n`);
    }
    const notRetried = failures.length > 0 ? 1 : 0;
    // A document not finished (units still to settle, an earlier retry's included, or its write
    // pending) has nothing to retry yet; --wait waits for it all the same.
    const unfinished = (o: (typeof outcomes)[number]) => o.reopened.length === 0 && !o.rewrite && UNFINISHED.has(o.record.state);
    for (const o of outcomes) {
      const what = o.reopened.length > 0 ? `retrying ${o.reopened.length} unit${o.reopened.length === 1 ? '' : 's'}` : o.rewrite ? 'writing again' : unfinished(o) ? 'still running: nothing to retry until it ends' : 'nothing to retry';
      if (json) process.stdout.write(`${jsonLine({ docId: o.docId, source: o.source, reopened: o.reopened, rewrite: o.rewrite })}\n`);
      else process.stdout.write(`${o.docId}  ${what}  ${printable(o.source)}\n`);
    }
    const active = outcomes.filter((o) => o.reopened.length > 0 || o.rewrite || unfinished(o)).map((o) => o.docId);
    if (opts.wait !== true || active.length === 0) {
      process.exitCode = unknown.length > 0 ? 2 : notRetried;
      return;
    }
    const redis = connectRedis(config.redisUrl, 'worker');
    try {
      const final = await waitForDocs(new DocStore(redis, config.prefix), active, { intervalMs: 250, ...(json ? {} : { onTick: progressPrinter(process.stderr), notes: unservedWatch(redis, config.prefix, { graceMs: config.waitNotesAfterMs }) }) });
      const failed = printWaitResults(final, json);
      process.exitCode = unknown.length > 0 ? 2 : failed > 0 ? 1 : notRetried;
    } finally {
      redis.disconnect();
    }
  });
}
