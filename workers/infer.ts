/**
 * Process entry: one GPU worker (`docbatch worker`), with its metrics server when METRICS_PORT
 * is set. It exits when signalled (drain, then force), or by itself after EXIT_WHEN_IDLE seconds
 * without work (0: nothing lost, everything it held finished).
 */
import type { Config } from '../src/config.ts';
import { createInferWorker } from '../src/infer/worker-parts.ts';
import { createLogger } from '../src/observe/log.ts';
import { openQueueCounter, registerQueueMetrics, WorkerMetrics } from '../src/observe/metrics.ts';
import { startMetricsServer, workerChecks, type MetricsServer } from '../src/observe/metrics-server.ts';
import { untilSignal } from './lifecycle.ts';

export async function runWorker(config: Config): Promise<number> {
  const log = createLogger({ level: config.logLevel, pretty: config.logFormat === 'pretty', base: { role: 'worker' } });
  const worker = createInferWorker(config, log);
  const metrics = config.metricsPort !== undefined ? new WorkerMetrics({ labels: { worker: config.workerName } }) : null;
  metrics?.attach(worker);
  try {
    await worker.start();
  } catch (err) {
    await worker.close({ force: true }).catch(() => undefined);
    throw err;
  }

  let server: MetricsServer | null = null;
  const counter = metrics ? openQueueCounter(config, worker.queueNames()) : null;
  if (metrics && counter) {
    registerQueueMetrics(metrics.registry, counter.queues);
    try {
      const shared = counter.queues.find((q) => q.name !== 'write')!.queue;
      server = await startMetricsServer({ registry: metrics.registry, checks: workerChecks(worker, { queue: shared, name: config.workerName }), host: config.metricsHost, port: config.metricsPort!, publicNames: config.metricsPublicNames });
    } catch (err) {
      await worker.close({ force: true });
      await counter.close();
      throw err;
    }
    log.info({ url: server.url }, 'metrics at /metrics, health at /health');
  }

  // The metrics server stays up while the worker drains, so /health reports the drain (503).
  const service = {
    close: async (o?: { force?: boolean }) => {
      try {
        await worker.close(o ?? {});
      } finally {
        await server?.close();
        await counter?.close();
      }
    },
  };
  const idle = new Promise<number>((resolve) => {
    worker.once('idle', () => {
      service.close().then(
        () => resolve(0),
        () => resolve(1),
      );
    });
  });
  return Promise.race([untilSignal(service, log, config.shutdownTimeoutMs), idle]);
}
