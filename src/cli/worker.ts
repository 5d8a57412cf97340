/** `docbatch worker`: one GPU worker. */
import { Command } from 'commander';
import { REDIS_SETTINGS, requireRedis, settingOptions } from './options.ts';

export function workerCommand(): Command {
  const command = new Command('worker').description('Take units from the queue and send them to one engine (run one per GPU).');
  const load = settingOptions(command, [
    ...REDIS_SETTINGS,
    'engineUrl', 'engineApiKey', 'model', 'batchSize', 'maxInFlight', 'initialInFlight', 'imageSize', 'imageFormat',
    'imageQuality', 'renderers', 'renderTimeoutMs', 'renderer', 'renderMemoryMb', 'pageMaxTokens', 'chatMaxTokens', 'requestTimeoutMs', 'attempts',
    'engineReleaseMs', 'engineStartTimeoutMs', 'textOnly', 'cleanIntervalMs', 'ceilingHoldMs', 'lockDurationMs', 'stalledIntervalMs', 'shutdownTimeoutMs', 'workerName', 'blobDir',
    'metricsPort', 'metricsHost', 'metricsPublicNames', 'gpuHourlyUsd', 'budgetUsd', 'feedDepth', 'feedDocuments', 'exitWhenIdleS', 'schemaInPrompt', 'writeAttempts',
    'engineRpm', 'engineTpm', 'engineRateWindowMs', 'engineRetryAfterMaxMs', 'fallbackEngineUrls', 'fallbackApiKeys', 'fallbackAfterMs',
  ]);
  return command.action(async (opts: Record<string, unknown>) => {
    const { runWorker } = await import('../../workers/infer.ts');
    const config = load(opts);
    await requireRedis(config);
    process.exitCode = await runWorker(config);
  });
}
