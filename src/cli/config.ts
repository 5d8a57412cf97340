/**
 * `docbatch config`: the settings in force and where each came from (default, environment,
 * file, flag), secrets masked and URLs without their password; or the table of all settings.
 * Every setting's flag is accepted, so `docbatch config --batch-size 8` shows what a verb given
 * that flag would run with.
 *
 *     BATCH_SIZE=8  # flag --batch-size
 *     REDIS_URL=redis://ops:***@redis:6379/0  # file REDIS_URL_FILE
 *     MODEL=  # default
 */
import { Command } from 'commander';
import { describeSource, redactUrl, SETTINGS, settingsTable, type SettingKey } from '../config.ts';
import { jsonLine, printable } from '../printable.ts';
import { settingSources } from './options.ts';

export function configCommand(): Command {
  const command = new Command('config')
    .description('Print the settings in force and where each came from (default, environment, file, flag).')
    .option('--markdown', 'print the table of every setting (as in docs/configuration.md)')
    .option('--json', 'one JSON object per setting: {setting, env, value, source, from}');
  const load = settingSources(command, Object.keys(SETTINGS) as SettingKey[]);
  return command.action((opts: Record<string, unknown>) => {
    if (opts.markdown) {
      process.stdout.write(`${settingsTable()}\n`);
      return;
    }
    const { config, sources } = load(opts);
    for (const key of Object.keys(SETTINGS) as SettingKey[]) {
      const setting = SETTINGS[key] as { env: string; secret?: boolean };
      const value: unknown = config[key];
      let shown = value === undefined ? '' : Array.isArray(value) ? value.join(',') : String(value);
      // URLs with their password masked (the rest is worth seeing); other secrets not at all.
      if (/^[a-z][a-z0-9+.-]*:\/\//i.test(shown)) shown = redactUrl(shown);
      else if (setting.secret && shown !== '') shown = '***'; // nothing set shows as nothing
      const source = sources[key];
      if (opts.json) process.stdout.write(`${jsonLine({ setting: key, env: setting.env, value: shown, source: source.kind, from: source.name ?? null })}\n`);
      else process.stdout.write(`${setting.env}=${printable(shown)}  # ${describeSource(source)}\n`);
    }
  });
}
