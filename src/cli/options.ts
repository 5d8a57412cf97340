/**
 * Commander options made from rows of the settings table (src/config.ts), so a flag, its
 * environment variable, its default and its help text can never disagree.
 */
import { Option, type Command } from 'commander';
import { loadConfig, SETTINGS, type Config, type Flags, type SettingKey } from '../config.ts';

/** Adds `--flag <value>` for each setting; returns a function that loads the config from the parsed options. */
export function settingOptions(command: Command, keys: SettingKey[]): (opts: Record<string, unknown>) => Config {
  const byAttribute = new Map<string, SettingKey>();
  for (const key of keys) {
    const setting = SETTINGS[key] as { env: string; flag?: string; describe: string; default?: unknown; defaultText?: string };
    if (!setting.flag) continue;
    const isBoolean = key === 'dashboardReadOnly' || key === 'textOnly' || key === 'schemaInPrompt';
    const option = new Option(isBoolean ? `--${setting.flag}` : `--${setting.flag} <value>`, `${setting.describe} [env ${setting.env}]`);
    byAttribute.set(option.attributeName(), key);
    command.addOption(option);
  }
  return (opts) => {
    const flags: Flags = {};
    for (const [attribute, key] of byAttribute) {
      if (opts[attribute] !== undefined) flags[key] = opts[attribute];
    }
    return loadConfig(flags);
  };
}

/** The settings every verb that talks to Redis takes. */
export const REDIS_SETTINGS: SettingKey[] = ['redisUrl', 'prefix', 'logLevel', 'logFormat'];
