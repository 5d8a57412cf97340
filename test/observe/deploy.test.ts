/**
 * The deployment files. Every Procfile line is started as a process manager would (`sh -c`),
 * against the real Redis with a test prefix and free ports: each process must come up (the
 * engines and the dashboard print their URL, the workers' /health turns 200 — Redis, engine
 * and loop — and the writer logs its start) and exit 0 on SIGTERM. docker-compose.yml must be
 * accepted by `docker-compose config` where that binary exists (Debian's `docker-compose`).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { deletePrefix, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.ts';

const root = resolve(import.meta.dirname, '../..');
const prefix = uniquePrefix(import.meta.filename);
const children: ChildProcess[] = [];
let dir: string | undefined;

afterAll(async () => {
  // Only what this file started: each child leads its own process group (detached).
  for (const c of children) if (c.exitCode === null && c.signalCode === null && c.pid) process.kill(-c.pid, 'SIGKILL');
  await deletePrefix(prefix);
  if (dir) await rm(dir, { recursive: true, force: true });
});

function procfile(): Array<{ name: string; command: string }> {
  return readFileSync(join(root, 'Procfile'), 'utf8')
    .split('\n')
    .flatMap((line) => {
      const m = /^([A-Za-z0-9_-]+):\s*(.+)$/.exec(line);
      return m ? [{ name: m[1]!, command: m[2]! }] : [];
    });
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as { port: number };
  await new Promise((ok) => server.close(ok));
  return port;
}

interface Running {
  name: string;
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function start(name: string, command: string, env: NodeJS.ProcessEnv): Running {
  const child = spawn('sh', ['-c', command], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  return { name, child, output: () => out, exited };
}

async function until<T>(what: string, probe: () => Promise<T | null>, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => null);
    if (value !== null) return value;
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function status(url: string): Promise<number | null> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  await res.arrayBuffer();
  return res.status;
}

describe('Procfile', () => {
  it('names the dashboard, a worker per GPU, the writer and local engines', () => {
    expect(procfile().map((l) => l.name)).toEqual(['web', 'worker_gpu0', 'worker_gpu1', 'writer', 'engine_gpu0', 'engine_gpu1']);
  });

  it('starts every process, each comes up, and each stops with exit 0 on SIGTERM', async () => {
    dir = await mkdtemp(join(tmpdir(), 'docbatch-procfile-'));
    const [p0, p1] = [await freePort(), await freePort()];
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      REDIS_URL: TEST_REDIS_URL,
      DOCBATCH_PREFIX: prefix,
      BLOB_DIR: join(dir, 'blobs'),
      OUT_DIR: join(dir, 'out'),
      LOG_FORMAT: 'json',
      LOG_LEVEL: 'info',
      RENDERERS: '1',
      PORT: '0',
      ENGINE_PORT_GPU0: String(p0),
      ENGINE_PORT_GPU1: String(p1),
      ENGINE_URL_GPU0: `http://127.0.0.1:${p0}`,
      ENGINE_URL_GPU1: `http://127.0.0.1:${p1}`,
      METRICS_PORT_GPU0: '0',
      METRICS_PORT_GPU1: '0',
    };
    const running = procfile().map(({ name, command }) => start(name, command, env));
    const byName = new Map(running.map((r) => [r.name, r]));
    const urlIn = (r: Running, re: RegExp) => async () => {
      if (r.child.exitCode !== null) throw new Error(`${r.name} exited ${r.child.exitCode}: ${r.output()}`);
      return re.exec(r.output())?.[1] ?? null;
    };
    const ready = async (name: string): Promise<string> => {
      const r = byName.get(name)!;
      try {
        if (name.startsWith('engine_')) {
          const url = await until(`${name} URL`, urlIn(r, /^(http:\/\/127\.0\.0\.1:\d+)$/m), 45_000);
          await until(`${name} /health`, async () => ((await status(`${url}/health`)) === 200 ? true : null), 20_000);
          return url;
        }
        if (name === 'web') {
          const url = await until('dashboard URL', urlIn(r, /^(http:\/\/127\.0\.0\.1:\d+)$/m), 45_000);
          await until('dashboard /health', async () => ((await status(`${url}/health`)) === 200 ? true : null), 20_000);
          return url;
        }
        if (name.startsWith('worker_')) {
          // The worker's own /health: Redis, its engine and its loop (registered in Redis).
          const url = await until(`${name} metrics URL`, urlIn(r, /"url":"(http:\/\/127\.0\.0\.1:\d+)","msg":"metrics at/), 45_000);
          await until(`${name} /health`, async () => ((await status(`${url}/health`)) === 200 ? true : null), 20_000);
          return url;
        }
        await until(`${name} start`, urlIn(r, /"msg":"(writer started)"/), 45_000);
        return 'started';
      } catch (err) {
        throw new Error(`${(err as Error).message}\n--- ${name} output ---\n${r.output()}`, { cause: err });
      }
    };
    const up = await Promise.all(running.map((r) => ready(r.name)));
    expect(up.every(Boolean)).toBe(true);
    // Each worker talks to its own engine.
    expect(byName.get('worker_gpu0')!.output()).toContain(`"engine":"http://127.0.0.1:${p0}"`);
    expect(byName.get('worker_gpu1')!.output()).toContain(`"engine":"http://127.0.0.1:${p1}"`);

    for (const r of running) process.kill(-r.child.pid!, 'SIGTERM');
    const codes = await Promise.all(running.map(async (r) => [r.name, await r.exited] as const));
    expect(Object.fromEntries(codes)).toEqual({ web: 0, worker_gpu0: 0, worker_gpu1: 0, writer: 0, engine_gpu0: 0, engine_gpu1: 0 });
  }, 120_000);
});

const compose = spawnSync('sh', ['-c', 'command -v docker-compose'], { encoding: 'utf8' }).stdout.trim();

describe('docker-compose.yml', () => {
  if (!compose) {
    console.warn('docker-compose.yml not validated: no docker-compose binary here (apt-get install -y docker-compose)');
  }

  it.skipIf(!compose)('is accepted by `docker-compose config`, with every service', () => {
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, DASHBOARD_PASSWORD: 'test-only' };
    const run = (args: string[]) => spawnSync(compose, ['-f', join(root, 'docker-compose.yml'), ...args], { cwd: root, env, encoding: 'utf8', timeout: 60_000 });
    const config = run(['config']);
    expect(config.status, config.stderr).toBe(0);
    const services = run(['config', '--services']).stdout.trim().split('\n').sort();
    expect(services).toEqual(['dashboard', 'enqueue', 'redis', 'vllm-gpu0', 'vllm-gpu1', 'worker-gpu0', 'worker-gpu1', 'writer']);
    const text = config.stdout;
    expect(text).toMatch(/- --appendonly\n\s+- "yes"/);
    expect(text).toMatch(/- --maxmemory-policy\n\s+- noeviction/);
    expect(text).toContain('ENGINE_URL: http://vllm-gpu0:8000');
    expect(text).toContain('ENGINE_URL: http://vllm-gpu1:8000');
    expect(text).toMatch(/device_ids:\n\s+- '0'/);
    expect(text).toMatch(/device_ids:\n\s+- '1'/);
  });

  it.skipIf(!compose)('refuses to configure a dashboard without a password', () => {
    const env = { PATH: process.env.PATH, HOME: process.env.HOME };
    const r = spawnSync(compose, ['-f', join(root, 'docker-compose.yml'), 'config'], { cwd: root, env, encoding: 'utf8', timeout: 60_000 });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('set DASHBOARD_PASSWORD');
  });
});

describe('Dockerfile', () => {
  it('builds from Node 24 with npm install (the lock pins versions) and runs bin/docbatch', () => {
    const text = readFileSync(join(root, 'Dockerfile'), 'utf8');
    expect(text).toMatch(/^FROM node:24[-\w.]*$/m);
    expect(text).toMatch(/^RUN npm install --omit=dev\b/m);
    expect(text).toMatch(/^ENTRYPOINT \["bin\/docbatch"\]$/m);
    // Everything the CLI imports at run time is copied in.
    for (const path of ['bin', 'queues', 'src', 'workers', 'package.json', 'package-lock.json']) {
      expect(text, path).toMatch(new RegExp(`^COPY .*\\b${path.replace('.', '\\.')}\\b`, 'm'));
      expect(existsSync(join(root, path)), path).toBe(true);
    }
  });
});
