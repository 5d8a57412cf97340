/**
 * Commander options made from rows of the settings table (src/config.ts), so a flag, its
 * environment variable, its default and its help text can never disagree.
 */
import { Option, type Command } from 'commander';
import { probeRedis } from '../../queues/redis-link.ts';
import { fileEnv, loadConfigWithSources, secretFlagWarnings, SETTINGS, type Config, type FileFlags, type Flags, type SettingKey, type SettingSource } from '../config.ts';

/**
 * Adds `--flag <value>` for each setting (and `--flag-file <path>` for a secret); returns a
 * function that loads the config from the parsed options, after warning on stderr about each
 * secret given on the command line (it shows in `ps`).
 */
export function settingOptions(command: Command, keys: SettingKey[]): (opts: Record<string, unknown>) => Config {
  const load = settingSources(command, keys);
  return (opts) => load(opts).config;
}

/** As settingOptions, also saying where each value came from (default, environment, file, flag). */
export function settingSources(command: Command, keys: SettingKey[]): (opts: Record<string, unknown>) => { config: Config; sources: Record<SettingKey, SettingSource> } {
  const byAttribute = new Map<string, SettingKey>();
  const fileByAttribute = new Map<string, SettingKey>();
  for (const key of keys) {
    const setting = SETTINGS[key] as { env: string; flag?: string; describe: string; default?: unknown; defaultText?: string; secret?: boolean };
    if (!setting.flag) continue;
    const isBoolean = key === 'dashboardReadOnly' || key === 'textOnly' || key === 'schemaInPrompt';
    const option = new Option(isBoolean ? `--${setting.flag}` : `--${setting.flag} <value>`, `${setting.describe} [env ${setting.env}]`);
    // A list setting's flag repeats: `--fallback-engine-url A --fallback-engine-url B`.
    if (REPEATABLE.has(key)) option.argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value]);
    byAttribute.set(option.attributeName(), key);
    command.addOption(option);
    if (setting.secret) {
      const file = new Option(`--${setting.flag}-file <path>`, `read --${setting.flag} from this file (keeps it out of \`ps\`) [env ${fileEnv(setting)}]`);
      fileByAttribute.set(file.attributeName(), key);
      command.addOption(file);
    }
  }
  return (opts) => {
    const flags: Flags = {};
    const files: FileFlags = {};
    for (const [attribute, key] of byAttribute) {
      if (opts[attribute] !== undefined) flags[key] = opts[attribute];
    }
    for (const [attribute, key] of fileByAttribute) {
      if (typeof opts[attribute] === 'string') files[key] = opts[attribute];
    }
    const loaded = loadConfigWithSources(flags, process.env, files);
    for (const warning of secretFlagWarnings(flags)) process.stderr.write(`docbatch: warning: ${warning}\n`);
    return loaded;
  };
}

const REPEATABLE = new Set<SettingKey>(['fallbackEngineUrls']);

/** The settings every verb that talks to Redis takes. */
export const REDIS_SETTINGS: SettingKey[] = ['redisUrl', 'prefix', 'logLevel', 'logFormat'];

/**
 * Every verb that talks to Redis calls this first: a wrong REDIS_URL, an unreachable host or a
 * refused password is one line with its code (REDIS_UNREACHABLE, REDIS_AUTH_FAILED; exit 2)
 * before anything starts, not a hang or an ioredis dump.
 */
export function requireRedis(config: Pick<Config, 'redisUrl'>): Promise<void> {
  return probeRedis(config.redisUrl);
}
