/** `docbatch dashboard`: Bull Board over the queues, with /metrics and /health. */
import { Command } from 'commander';
import { REDIS_SETTINGS, requireRedis, settingOptions } from './options.ts';

export function dashboardCommand(): Command {
  const command = new Command('dashboard').description(
    'Serve the queue dashboard (Bull Board), the Documents view (/documents), /metrics and /health. Loopback only unless DASHBOARD_USER/DASHBOARD_PASSWORD or DASHBOARD_TOKEN are set.',
  );
  const load = settingOptions(command, [
    ...REDIS_SETTINGS, 'dashboardPort', 'dashboardHost', 'dashboardPublicNames', 'dashboardUser', 'dashboardPassword', 'dashboardToken', 'dashboardReadToken', 'dashboardReadOnly',
    'outDir', 'blobDir', 'gpuHourlyUsd',
  ]);
  return command.action(async (opts: Record<string, unknown>) => {
    // Loaded on use: Bull Board and Hono are not needed by the other verbs.
    const { runDashboard } = await import('../../workers/dashboard.ts');
    const config = load(opts);
    await requireRedis(config);
    process.exitCode = await runDashboard(config);
  });
}
