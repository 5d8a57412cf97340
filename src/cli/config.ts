/** `docbatch config`: the effective settings (secrets masked, URLs without their password), or the docs table. */
import { Command } from 'commander';
import { loadConfig, redactUrl, SETTINGS, settingsTable, type SettingKey } from '../config.ts';
import { printable } from '../printable.ts';

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
        const value: unknown = config[key];
        let shown = value === undefined ? '' : Array.isArray(value) ? value.join(',') : String(value);
        // URLs with their password masked (the rest is worth seeing); other secrets not at all.
        if (/^[a-z][a-z0-9+.-]*:\/\//i.test(shown)) shown = redactUrl(shown);
        else if (setting.secret && value !== undefined) shown = '***';
        process.stdout.write(`${setting.env}=${printable(shown)}\n`);
      }
    });
}
