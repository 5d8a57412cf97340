/** `docbatch gc`: remove what retention left behind (the writer also runs it every hour). */
import { Command } from 'commander';
import { connectRedis, openInferQueues } from '../../queues/connect.ts';
import { createLogger } from '../observe/log.ts';
import { checkLocations } from '../store/locations.ts';
import { openBlobStore } from '../store/storage.ts';
import { isS3Uri } from '../s3-uri.ts';
import { DocStore } from '../store/docs.ts';
import { Feeder } from '../store/feed.ts';
import { collect } from '../store/gc.ts';
import { sweepTemporaries } from '../write/atomic.ts';
import { REDIS_SETTINGS, requireRedis, settingOptions } from './options.ts';

export function gcCommand(): Command {
  const command = new Command('gc')
    .description('Remove what expired documents left: index entries, names, results archives, unused blobs, temporary files.')
    .option('--dry-run', 'only count what would go')
    .option('--json', 'the counts as one JSON object');
  const load = settingOptions(command, [...REDIS_SETTINGS, 'blobDir', 'outDir', 'retentionDays']);
  return command.action(async (opts: Record<string, unknown>) => {
    const config = load(opts);
    checkLocations(config); // gc removes BLOB_DIR's temporaries: never outputs
    await requireRedis(config);
    const log = createLogger({ level: config.logLevel === 'info' ? 'warn' : config.logLevel, pretty: config.logFormat === 'pretty' });
    const redis = connectRedis(config.redisUrl, 'client');
    const queues = openInferQueues(config, redis);
    try {
      const store = new DocStore(redis, config.prefix);
      const feeder = new Feeder(redis, config.prefix, (name) => queues.get(name));
      const dryRun = opts.dryRun === true;
      const report = await collect({ store, blobs: openBlobStore(config), feeder, log }, { retentionMs: config.retentionDays * 86_400_000, dryRun });
      const temporaries = dryRun || isS3Uri(config.outDir) ? 0 : await sweepTemporaries(config.outDir, 3_600_000);
      const all = { ...report, outputTemporaries: temporaries, dryRun };
      if (opts.json) process.stdout.write(`${JSON.stringify(all)}\n`);
      else process.stdout.write(`${dryRun ? 'would remove' : 'removed'}: ${report.documents} expired documents from the index, ${report.names} names, ${report.feedEntries} feed entries, ${report.archives} results archives, ${report.blobs} blobs (${(report.blobBytes / 1e6).toFixed(1)} MB), ${report.temporaries + temporaries} temporary files\n`);
    } finally {
      await queues.close();
      redis.disconnect();
    }
  });
}
