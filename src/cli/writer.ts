/** `docbatch writer`: assembles finished documents into files. */
import { Command } from 'commander';
import { REDIS_SETTINGS, requireRedis, settingOptions } from './options.ts';

export function writerCommand(): Command {
  const command = new Command('writer').description('Write finished documents (Markdown, JSONL, reports) to the output directory.');
  const load = settingOptions(command, [...REDIS_SETTINGS, 'outDir', 'blobDir', 'gpuHourlyUsd', 'shutdownTimeoutMs', 'workerName', 'retentionDays', 'feedDepth', 'feedDocuments', 'attempts', 'writeAttempts']);
  return command.action(async (opts: Record<string, unknown>) => {
    const { runWriter } = await import('../../workers/writer.ts');
    const config = load(opts);
    await requireRedis(config);
    process.exitCode = await runWriter(config);
  });
}
