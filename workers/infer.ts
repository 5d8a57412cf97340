/** Process entry: one GPU worker (`docbatch worker`), with its metrics server when METRICS_PORT is set. */
import type { Config } from '../src/config.ts';
import { InferWorker } from '../src/infer/worker.ts';
import { createLogger } from '../src/observe/log.ts';
import { openQueueCounter, registerQueueMetrics, WorkerMetrics } from '../src/observe/metrics.ts';
import { startMetricsServer, workerChecks, type MetricsServer } from '../src/observe/metrics-server.ts';
import { untilSignal } from './lifecycle.ts';

export async function runWorker(config: Config): Promise<number> {
  const log = createLogger({ level: config.logLevel, pretty: config.logFormat === 'pretty', base: { role: 'worker' } });
  const metrics = config.metricsPort !== undefined ? new WorkerMetrics({ labels: { worker: config.workerName } }) : null;
  const worker = new InferWorker(config, log, metrics?.hooks ?? {});
  metrics?.attach(worker);
  await worker.start();

  let server: MetricsServer | null = null;
  const counter = metrics ? openQueueCounter(config) : null;
  if (metrics && counter) {
    registerQueueMetrics(metrics.registry, counter.queues);
    try {
      server = await startMetricsServer({ registry: metrics.registry, checks: workerChecks(worker, { queue: counter.queues.find((q) => q.name === 'infer')!.queue, name: config.workerName }), host: config.metricsHost, port: config.metricsPort!, publicNames: config.metricsPublicNames });
    } catch (err) {
      await worker.close({ force: true });
      await counter.close();
      throw err;
    }
    log.info({ url: server.url }, 'metrics at /metrics, health at /health');
  }

  // The metrics server stays up while the worker drains, so /health reports the drain (503).
  return untilSignal(
    {
      close: async (o) => {
        try {
          await worker.close(o ?? {});
        } finally {
          await server?.close();
          await counter?.close();
        }
      },
    },
    log,
    config.shutdownTimeoutMs,
  );
}
