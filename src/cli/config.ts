/** `docbatch config`: the effective settings (secrets masked), or the docs table. */
import { Command } from 'commander';
import { loadConfig, redactUrl, SETTINGS, settingsTable, type SettingKey } from '../config.ts';

export function configCommand(): Command {
  return new Command('config')
    .description('Print the effective configuration (from flags, environment and defaults).')
    .option('--markdown', 'print the table of every setting (as in the README)')
    .action((opts: { markdown?: boolean }) => {
      if (opts.markdown) {
        process.stdout.write(`${settingsTable()}\n`);
        return;
      }
      const config = loadConfig();
      for (const key of Object.keys(SETTINGS) as SettingKey[]) {
        const setting = SETTINGS[key] as { env: string; secret?: boolean };
        let value: unknown = config[key];
        if (key === 'redisUrl') value = redactUrl(String(value));
        else if (setting.secret && value !== undefined) value = '***';
        process.stdout.write(`${setting.env}=${value === undefined ? '' : String(value)}\n`);
      }
    });
}
