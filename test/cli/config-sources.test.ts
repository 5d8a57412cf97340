/**
 * Issue 14: `docbatch config` says where each value came from: a flag over the environment over
 * a file over the default, for any setting (its flag is accepted by `config` itself), as text
 * (`KEY=value  # source`) and as JSON.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { loadConfigWithSources } from '../../src/config.ts';
import { runCli } from '../helpers/cli.ts';

it('names the source of every value: flag, environment, file, default', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'docbatch-config-'));
  const urlFile = join(dir, 'redis-url');
  writeFileSync(urlFile, 'redis://ops:s3cret@redis.internal:6379/0\n');
  const env = { BATCH_SIZE: '12', MAX_IN_FLIGHT: '64', REDIS_URL_FILE: urlFile };
  const r = await runCli(['config', '--batch-size', '8'], env);
  expect(r.code).toBe(0);
  const lines = r.stdout.split('\n');
  expect(lines).toContain('BATCH_SIZE=8  # flag --batch-size');
  expect(lines).toContain('MAX_IN_FLIGHT=64  # environment MAX_IN_FLIGHT');
  expect(lines).toContain('REDIS_URL=redis://ops:***@redis.internal:6379/0  # file REDIS_URL_FILE');
  expect(lines).toContain('IMAGE_SIZE=1288  # default');
  expect(r.stdout).not.toContain('s3cret');

  const json = await runCli(['config', '--json', '--attempts', '3'], env);
  expect(json.code).toBe(0);
  const rows = json.stdout.trim().split('\n').map((l) => JSON.parse(l) as { setting: string; env: string; value: string; source: string; from: string | null });
  expect(rows.find((row) => row.setting === 'attempts')).toEqual({ setting: 'attempts', env: 'ATTEMPTS', value: '3', source: 'flag', from: '--attempts' });
  expect(rows.find((row) => row.setting === 'batchSize')).toMatchObject({ value: '12', source: 'environment', from: 'BATCH_SIZE' });
  expect(rows.find((row) => row.setting === 'chunkTokens')).toMatchObject({ source: 'default', from: null });
  // A bad flag is still named, and exits 2.
  const bad = await runCli(['config', '--batch-size', 'lots'], {});
  expect(bad.code).toBe(2);
  expect(bad.stderr).toMatch(/CONFIG_INVALID: setting BATCH_SIZE from --batch-size = "lots" is invalid/);
});

it('loadConfigWithSources: a secret flag file counts as a file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'docbatch-config-'));
  const keyFile = join(dir, 'key');
  writeFileSync(keyFile, 'sk-1\n');
  const { config, sources } = loadConfigWithSources({}, {}, { engineApiKey: keyFile });
  expect(config.engineApiKey).toBe('sk-1');
  expect(sources.engineApiKey).toEqual({ kind: 'file', name: '--engine-api-key-file' });
  expect(sources.redisUrl).toEqual({ kind: 'default' });
});

it('an engine URL without its scheme is CONFIG_INVALID naming the setting, not a crash', async () => {
  for (const [args, env, setting] of [
    [['config', '--engine-url', '127.0.0.1:8000'], {}, 'ENGINE_URL'],
    [['config'], { ENGINE_FALLBACK_URLS: 'gpu-b:8000' }, 'ENGINE_FALLBACK_URLS'],
  ] as const) {
    const r = await runCli([...args], { ...env });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`CONFIG_INVALID: setting ${setting}.*must be a URL starting with http:// or https://`));
    expect(r.stderr).not.toMatch(/TypeError|unexpected error/);
  }
});
