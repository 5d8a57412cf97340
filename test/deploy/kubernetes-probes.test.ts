/**
 * The probes and hooks of the Kubernetes manifests that are scripts, run for real against what
 * they probe: vLLM's startup and liveness probes against the engine emulator (pass while it
 * lives, fail once it died), vLLM's preStop hook against a port that answers and then closes,
 * the dashboard's readiness probe against a real dashboard started with the manifest's settings
 * and the Secret's credentials (and with a wrong password), and the Redis StatefulSet's own
 * command line as a real redis-server with its readiness probe. Ports and hosts in the scripts
 * are moved to free loopback ports; nothing else is changed.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '../../src/emulator/index.ts';
import { deletePrefix, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.ts';
import { containerEnv, expand, find, podSpec } from './kustomize.ts';
import { committedBuild, gpuPool, root } from './overlay.ts';

const prefix = uniquePrefix(import.meta.filename);
const children: ChildProcess[] = [];
const closers: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null && c.pid) process.kill(-c.pid, 'SIGKILL');
  for (const close of closers) await close();
  await deletePrefix(prefix);
});

function run(argv: string[], env: Record<string, string>, cwd = root): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(argv[0]!, argv.slice(1), { cwd, env: { PATH: process.env.PATH!, HOME: process.env.HOME!, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  return { child, output: () => out, exited };
}

async function until<T>(what: string, probe: () => T | null | Promise<T | null>, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as { port: number };
  await new Promise((ok) => server.close(ok));
  return port;
}

const python = spawnSync('sh', ['-c', 'command -v python3'], { encoding: 'utf8' }).stdout.trim();
const redisServer = spawnSync('sh', ['-c', 'command -v redis-server && command -v redis-cli'], { encoding: 'utf8' }).status === 0;

describe('the probes and hooks, run', () => {
  const committed = committedBuild;
  if (!python) console.warn("vLLM's probes and preStop hook not run: no python3 here");
  if (!redisServer) console.warn("the Redis StatefulSet's command not run: no redis-server/redis-cli here");

  it.skipIf(!python)("vLLM's startup and liveness probes pass while the engine lives and fail once it died", async () => {
    const { vllm } = gpuPool(committed());
    const engine: Emulator = await startEmulator({});
    closers.push(() => engine.close());
    for (const probe of [vllm.startupProbe!, vllm.livenessProbe!]) {
      const argv = probe.exec!.command.map((a) => a.replace('127.0.0.1:8000', `127.0.0.1:${engine.port}`));
      expect(await run(argv, {}).exited).toBe(0);
    }
    engine.kill(); // as out of memory: /health turns 503, then connections are refused
    for (const probe of [vllm.startupProbe!, vllm.livenessProbe!]) {
      const argv = probe.exec!.command.map((a) => a.replace('127.0.0.1:8000', `127.0.0.1:${engine.port}`));
      expect(await run(argv, {}).exited).not.toBe(0);
    }
  });

  it.skipIf(!python)("vLLM's preStop hook waits while the worker's metrics port answers, and ends when it closes", async () => {
    const { vllm } = gpuPool(committed());
    const sockets = new Set<Socket>();
    let connections = 0;
    const server = createServer((s) => {
      connections += 1;
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    const { port } = server.address() as { port: number };
    const argv = vllm.lifecycle!.preStop!.exec!.command.map((a) => a.replace('("127.0.0.1", 9464)', `("127.0.0.1", ${port})`));
    expect(argv.join(' ')).toContain(String(port));
    const hook = run(argv, {});
    // It keeps checking (three connections seen) and is still running.
    await until('three checks of the port', () => (connections >= 3 ? true : null));
    expect(hook.child.exitCode).toBeNull();
    await new Promise((ok) => server.close(ok));
    for (const s of sockets) s.destroy();
    expect(await Promise.race([hook.exited, new Promise((r) => setTimeout(() => r('still running'), 15_000))])).toBe(0);
  });

  it("the dashboard's readiness probe passes with the Secret's credentials against a real dashboard, and fails with a wrong password", async () => {
    const b = committed();
    const dashboard = podSpec(find(b.objects, 'Deployment', 'docbatch-dashboard'))!.containers[0]!;
    const { env } = containerEnv(b.objects, dashboard);
    const argv = ['bin/docbatch', ...dashboard.args!.map((a) => expand(a, env))];
    // The manifest's environment, on this machine's test Redis and loopback, on a free port.
    const local = { ...env, REDIS_URL: TEST_REDIS_URL, DOCBATCH_PREFIX: prefix, DASHBOARD_HOST: '127.0.0.1', DASHBOARD_PORT: '0', BLOB_DIR: join(tmpdir(), 'unused'), OUT_DIR: join(tmpdir(), 'unused') };
    const server = run(argv, local);
    const url = await until('the dashboard URL', () => {
      if (server.child.exitCode !== null) throw new Error(`dashboard exited ${server.child.exitCode}: ${server.output()}`);
      return /^(http:\/\/127\.0\.0\.1:\d+)$/m.exec(server.output())?.[1] ?? null;
    }, 45_000);
    const port = new URL(url).port;
    const probe = dashboard.readinessProbe!.exec!.command.map((a) => a.replace('127.0.0.1:3000', `127.0.0.1:${port}`));
    expect(probe.join(' ')).toContain(`127.0.0.1:${port}/health`);
    const credentials = { DASHBOARD_USER: env.DASHBOARD_USER!, DASHBOARD_PASSWORD: env.DASHBOARD_PASSWORD! };
    expect(await run(probe, credentials).exited).toBe(0);
    expect(await run(probe, { ...credentials, DASHBOARD_PASSWORD: 'wrong' }).exited).toBe(1);
    process.kill(-server.child.pid!, 'SIGTERM');
    expect(await server.exited).toBe(0);
  }, 90_000);

  it.skipIf(!redisServer)("the Redis StatefulSet's command starts a Redis with AOF, noeviction and the Secret's password; its readiness probe needs that password", async () => {
    const b = committed();
    const redis = podSpec(find(b.objects, 'StatefulSet', 'docbatch-redis'))!.containers[0]!;
    const { env } = containerEnv(b.objects, redis);
    const port = await freePort();
    const dir = await mkdtemp(join(tmpdir(), 'docbatch-redis-'));
    closers.push(() => rm(dir, { recursive: true, force: true }));
    // The container's own command line, on loopback and a free port, its data in a temp folder.
    const argv = [...redis.command!];
    argv[argv.length - 1] = `${argv.at(-1)} --port ${port} --bind 127.0.0.1 --dir ${dir}`;
    const server = run(argv, { REDIS_PASSWORD: env.REDIS_PASSWORD! }, dir);
    const client = new Redis({ port, host: '127.0.0.1', password: env.REDIS_PASSWORD, lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => 100 });
    client.on('error', () => {}); // refused until it listens: the wait below retries
    closers.push(async () => client.disconnect());
    await until('redis answers', async () => {
      if (server.child.exitCode !== null) throw new Error(`redis-server exited ${server.child.exitCode}: ${server.output()}`);
      return (await client.ping().catch(() => null)) === 'PONG' ? true : null;
    });
    expect(await client.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
    expect(await client.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'noeviction']);
    const probe = redis.readinessProbe!.exec!.command.map((a) => a.replace('redis-cli ping', `redis-cli -p ${port} ping`));
    expect(await run(probe, { REDIS_PASSWORD: env.REDIS_PASSWORD! }).exited).toBe(0);
    expect(await run(probe, { REDIS_PASSWORD: 'wrong' }).exited).not.toBe(0);
    process.kill(-server.child.pid!, 'SIGTERM');
    await server.exited;
    expect(existsSync(join(dir, 'appendonlydir')) || existsSync(join(dir, 'appendonly.aof'))).toBe(true);
  });
});
