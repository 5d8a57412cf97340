/**
 * Reading a docbatch command line found in a deployment file the way `bin/docbatch` would: the
 * verb must exist, every flag must be one of the verb's (from the real commander program), and
 * the settings it ends up with (flags over environment) must pass src/config.ts's validation.
 */
import type { Command } from 'commander';
import { loadConfig, SETTINGS, type Config, type Flags, type SettingKey } from '../../src/config.ts';
import { program } from '../../src/cli/main.ts';

/** Variables the AWS SDK reads itself (the S3 storage), which are not rows of SETTINGS. */
export const AWS_SDK_ENV = new Set(['AWS_REGION', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_ENDPOINT_URL', 'AWS_PROFILE', 'AWS_ROLE_ARN', 'AWS_WEB_IDENTITY_TOKEN_FILE']);

export const SETTING_ENV: ReadonlySet<string> = new Set<string>(Object.values(SETTINGS).map((s) => s.env));

export interface ParsedCommand {
  verb: string;
  flags: Flags;
  /** Option names given that the verb does not have. */
  unknown: string[];
  operands: string[];
}

/** Parses `[verb, ...args]` with the verb's real options; throws when the verb does not exist. */
const root = await program();

export function parseDocbatchArgs(argv: string[]): ParsedCommand {
  const [verb, ...rest] = argv;
  const sub = root.commands.find((c: Command) => c.name() === verb);
  if (!verb || !sub) throw new Error(`'${verb}' is not a docbatch verb`);
  const { operands, unknown } = sub.parseOptions(rest);
  const opts = sub.opts<Record<string, unknown>>();
  const flags: Flags = {};
  for (const option of sub.options) {
    const key = (Object.keys(SETTINGS) as SettingKey[]).find((k) => {
      const flag = (SETTINGS[k] as { flag?: string }).flag;
      return flag !== undefined && `--${flag}` === option.long;
    });
    const value = opts[option.attributeName()];
    if (key && value !== undefined) flags[key] = value;
  }
  return { verb, flags, unknown: unknown.filter((u) => u.startsWith('-')), operands };
}

/** The config a docbatch process would run with (throws the ConfigError it would exit with). */
export function configFor(argv: string[], env: Record<string, string>): Config {
  return loadConfig(parseDocbatchArgs(argv).flags, env);
}
