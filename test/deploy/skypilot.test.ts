/**
 * The SkyPilot task (deploy/skypilot/docbatch-gpu.yaml). Its fields are checked against what
 * SkyPilot's YAML accepts and what the issue asks: GPUs, spot with an on-demand fallback,
 * autodown when idle, recovery, pinned images (vLLM's the same as Kubernetes'), settings and
 * required secrets, the preemption settings Kubernetes uses too; `setup` and `run` must be valid
 * bash, and the docbatch and vLLM command lines in `run` must pair each GPU's worker with its
 * engine. Then `run` itself is run on this machine with a stand-in for `docker`
 * (./docker-standin.ts: the engine emulator for vLLM, real `bin/docbatch` workers) for a node of
 * two GPUs: every worker goes idle and the task ends 0; and SIGTERM stops the workers (which
 * drain and exit 0) before their engines, and the task exits 143.
 */
import { LocalBlobStore } from '../../src/store/blobs-local.ts';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { deletePrefix, TEST_REDIS_URL, uniquePrefix } from '../helpers/redis.ts';
import { AWS_SDK_ENV, configFor, parseDocbatchArgs, SETTING_ENV } from './docbatch-args.ts';
import { dockerCalls, installDockerStandin } from './docker-standin.ts';
import { podSpec, splitImage } from './kustomize.ts';
import { committedBuild, root } from './overlay.ts';

const taskFile = join(root, 'deploy/skypilot/docbatch-gpu.yaml');

interface Task {
  name: string;
  resources: {
    accelerators: string | string[] | Record<string, null | number>;
    any_of?: Array<Record<string, unknown>>;
    use_spot?: boolean;
    autostop?: { idle_minutes: number; down?: boolean };
    job_recovery?: { strategy?: string; max_restarts_on_errors?: number };
    [field: string]: unknown;
  };
  envs: Record<string, string>;
  secrets: Record<string, string | null>;
  setup: string;
  run: string;
  [field: string]: unknown;
}

const task = parse(readFileSync(taskFile, 'utf8')) as Task;

/** Fields of SkyPilot's task YAML (docs: reference/yaml-spec). */
const TASK_FIELDS = new Set(['name', 'workdir', 'num_nodes', 'resources', 'envs', 'secrets', 'file_mounts', 'setup', 'run', 'config', 'volumes']);
const RESOURCE_FIELDS = new Set([
  'infra', 'cloud', 'region', 'zone', 'accelerators', 'accelerator_args', 'cpus', 'memory', 'instance_type', 'use_spot', 'disk_size', 'disk_tier',
  'network_tier', 'image_id', 'ports', 'labels', 'autostop', 'any_of', 'ordered', 'job_recovery', 'max_hourly_cost',
]);

/** `--flag VALUE` in a command line. */
const flagValue = (argv: string[], flag: string) => argv[argv.indexOf(flag) + 1];

/** Shell text of the `docker run` whose image is `image` (continuation lines joined). */
function dockerRunOf(image: string): string {
  const joined = task.run.replace(/\\\n\s*/g, ' ');
  const line = joined.split('\n').find((l) => l.includes('docker run') && l.includes(`"$${image}"`));
  if (!line) throw new Error(`no docker run of $${image} in run`);
  return line.trim();
}

const CLI_HAS_EXIT_WHEN_IDLE = parseDocbatchArgs(['worker', '--exit-when-idle', '1']).unknown.length === 0;

describe('the SkyPilot task', () => {
  it("uses only SkyPilot's task and resource fields", () => {
    expect(Object.keys(task).filter((k) => !TASK_FIELDS.has(k))).toEqual([]);
    expect(Object.keys(task.resources).filter((k) => !RESOURCE_FIELDS.has(k))).toEqual([]);
    expect(task.name).toMatch(/^[a-z][a-z0-9-]*$/);
  });

  it('asks for one GPU of a few kinds, spot first with an on-demand fallback, autodown when idle, and recovery', () => {
    const acc = task.resources.accelerators;
    const choices = typeof acc === 'string' ? [acc] : Array.isArray(acc) ? acc : Object.keys(acc);
    expect(choices.length).toBeGreaterThanOrEqual(1);
    for (const c of choices) expect(c, 'NAME:1, one GPU per node by default').toMatch(/^[A-Za-z0-9-]+:1$/);
    // use_spot only inside any_of: one candidate on spot, one on demand.
    expect(task.resources.use_spot).toBeUndefined();
    expect(task.resources.any_of).toEqual([{ use_spot: true }, { use_spot: false }]);
    // Spot nodes cannot be stopped: autostop must tear down.
    expect(task.resources.autostop).toMatchObject({ down: true });
    expect(task.resources.autostop!.idle_minutes).toBeGreaterThan(0);
    expect(task.resources.job_recovery?.strategy).toMatch(/^(FAILOVER|EAGER_NEXT_REGION)$/);
  });

  it('pins both images; vLLM is the one the Kubernetes GPU pod runs', () => {
    for (const name of ['DOCBATCH_IMAGE', 'VLLM_IMAGE']) {
      const { tag, digest } = splitImage(task.envs[name]!);
      expect(digest ?? tag, name).toBeTruthy();
      expect(tag, name).not.toBe('latest');
    }
    const k8s = committedBuild();
    const gpuPod = podSpec(k8s.objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'docbatch-gpu')!)!;
    expect(gpuPod.containers.map((c) => c.image)).toContain(task.envs.VLLM_IMAGE);
    expect(splitImage(task.envs.DOCBATCH_IMAGE!).tag).toBe(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version);
  });

  it('requires the credentials as secrets, never as plain envs, and carries the preemption settings Kubernetes uses', () => {
    expect(task.secrets).toEqual({ REDIS_URL: null, AWS_ACCESS_KEY_ID: null, AWS_SECRET_ACCESS_KEY: null });
    for (const name of Object.keys(task.envs)) expect(name, 'a credential among the plain envs').not.toMatch(/PASSWORD|SECRET|TOKEN|REDIS_URL/);
    const k8s = committedBuild();
    const config = k8s.objects.find((o) => o.kind === 'ConfigMap')!.data as Record<string, string>;
    for (const name of ['SHUTDOWN_TIMEOUT_MS', 'LOCK_DURATION_MS', 'STALLED_INTERVAL_MS', 'DOCBATCH_PREFIX', 'MODEL']) {
      expect(task.envs[name], name).toBe(config[name]);
    }
  });

  it('has setup and run scripts that bash accepts; setup pulls both images', () => {
    for (const script of [task.setup, task.run]) {
      const r = spawnSync('bash', ['-n'], { input: script, encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
    }
    expect(task.setup).toContain('docker pull "$VLLM_IMAGE"');
    expect(task.setup).toContain('docker pull "$DOCBATCH_IMAGE"');
  });

  it("pairs each GPU's worker with its engine on localhost, and passes the worker only real settings", () => {
    const vllm = dockerRunOf('VLLM_IMAGE');
    expect(vllm).toContain('--gpus "device=$i"');
    expect(vllm).toContain('--network=host');
    expect(vllm).toContain('serve "$MODEL" --host 127.0.0.1 --port "$((ENGINE_PORT_BASE + i))"');
    const worker = dockerRunOf('DOCBATCH_IMAGE');
    expect(worker).toContain('--network=host');
    expect(worker).toContain('worker --engine-url "http://127.0.0.1:$((ENGINE_PORT_BASE + i))"');
    expect(worker).toContain('--exit-when-idle "$EXIT_WHEN_IDLE_SECONDS"');
    const forwarded = [...worker.matchAll(/-e ([A-Z_][A-Z0-9_]*)/g)].map((m) => m[1]!);
    for (const name of forwarded) expect(SETTING_ENV.has(name) || AWS_SDK_ENV.has(name), `${name} is neither a setting nor an AWS variable`).toBe(true);
    // Every docbatch setting and credential the task defines reaches the worker.
    const defined = [...Object.keys(task.envs), ...Object.keys(task.secrets)].filter((n) => SETTING_ENV.has(n) || AWS_SDK_ENV.has(n));
    expect(defined.filter((n) => !forwarded.includes(n))).toEqual([]);
    // Those values load as the worker's settings.
    const env = { ...task.envs, REDIS_URL: 'rediss://docbatch:pw@redis.example.internal:6380/0', AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'y', METRICS_PORT: '9464' };
    const argv = ['worker', '--engine-url', 'http://127.0.0.1:8000', '--name', 'node-gpu0'];
    expect(configFor(argv, env)).toMatchObject({ engineUrl: 'http://127.0.0.1:8000', prefix: task.envs.DOCBATCH_PREFIX, model: task.envs.MODEL, shutdownTimeoutMs: 20_000 });
  });
});

// ---- `run`, run ------------------------------------------------------------------------------

const prefix = uniquePrefix(import.meta.filename);
const children: ChildProcess[] = [];
const dirs: string[] = [];
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null && c.pid) process.kill(-c.pid, 'SIGKILL');
  for (const dir of dirs) {
    // Containers the stand-in started and a failed test left behind.
    for (const call of dockerCalls(join(dir, 'docker'))) {
      if (call.argv?.[0] === 'run') spawnSync(join(dir, 'bin', 'docker'), ['rm', '-f', call.argv[call.argv.indexOf('--name') + 1]!], { env: { ...process.env, DOCKER_STANDIN_DIR: join(dir, 'docker') } });
    }
    await rm(dir, { recursive: true, force: true });
  }
  await deletePrefix(prefix);
});

async function freePorts(n: number): Promise<number> {
  // A base with n consecutive free ports.
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    const free = await Promise.all(Array.from({ length: n }, (_, i) => new Promise<boolean>((ok) => {
      const s = createServer();
      s.once('error', () => ok(false));
      s.listen(base + i, '127.0.0.1', () => s.close(() => ok(true)));
    })));
    if (free.every(Boolean)) return base;
  }
  throw new Error('no free port range');
}

async function until<T>(what: string, probe: () => Promise<T | null> | T | null, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function startRun(gpus: number, idleSeconds: number) {
  const dir = await mkdtemp(join(tmpdir(), 'docbatch-skypilot-'));
  dirs.push(dir);
  installDockerStandin(join(dir, 'bin'));
  // The store the producers wrote to (a worker refuses a BLOB_DIR that is not there).
  await new LocalBlobStore(join(dir, 'blobs')).markStore();
  const [enginePorts, metricsPorts] = [await freePorts(gpus), await freePorts(gpus)];
  const env: Record<string, string> = {
    ...task.envs,
    PATH: `${join(dir, 'bin')}:${process.env.PATH}`,
    HOME: dir,
    SKYPILOT_NUM_GPUS_PER_NODE: String(gpus),
    DOCKER_STANDIN_DIR: join(dir, 'docker'),
    REDIS_URL: TEST_REDIS_URL,
    DOCBATCH_PREFIX: prefix,
    AWS_ACCESS_KEY_ID: 'unused',
    AWS_SECRET_ACCESS_KEY: 'unused',
    BLOB_DIR: join(dir, 'blobs'), // S3 comes with the storage work; a local folder stands in
    EXIT_WHEN_IDLE_SECONDS: String(idleSeconds),
    ENGINE_PORT_BASE: String(enginePorts),
    METRICS_PORT_BASE: String(metricsPorts),
  };
  const child = spawn('bash', ['-c', task.run], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  children.push(child);
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as string | null }));
  const calls = () => dockerCalls(join(dir, 'docker'));
  return { child, exited, output: () => output, calls, enginePorts, metricsPorts };
}

/** What the run started, from the stand-in's record. */
function containersStarted(calls: ReturnType<typeof dockerCalls>) {
  const runs = calls.filter((c) => c.argv?.[0] === 'run').map((c) => c.argv!);
  const nameOf = (argv: string[]) => argv[argv.indexOf('--name') + 1]!;
  return {
    engines: runs.filter((a) => a.includes(task.envs.VLLM_IMAGE!)).map((a) => ({ name: nameOf(a), gpus: flagValue(a, '--gpus'), port: Number(flagValue(a, '--port')) })),
    workers: runs.filter((a) => a.includes(task.envs.DOCBATCH_IMAGE!)).map((a) => ({
      name: nameOf(a),
      argv: a.slice(a.indexOf(task.envs.DOCBATCH_IMAGE!) + 1),
      env: a.flatMap((x, i) => (a[i - 1] === '-e' ? [x] : [])),
    })),
  };
}

const noCurl = spawnSync('sh', ['-c', 'command -v curl'], { encoding: 'utf8' }).status !== 0;

describe("the SkyPilot task's run script, on a two-GPU node with a docker stand-in", () => {
  if (!CLI_HAS_EXIT_WHEN_IDLE) console.warn('run script not run: `docbatch worker` has no --exit-when-idle yet (issue 13, the lead\'s part)');
  if (noCurl) console.warn('run script not run: no curl here');

  it.skipIf(!CLI_HAS_EXIT_WHEN_IDLE || noCurl)('starts an engine and a worker per GPU, paired on localhost; every worker goes idle and the task ends 0', async () => {
    const r = await startRun(2, 2);
    const result = await Promise.race([r.exited, new Promise((ok) => setTimeout(() => ok('still running'), 120_000))]);
    expect(result, r.output()).toEqual({ code: 0, signal: null });
    const { engines, workers } = containersStarted(r.calls());
    expect(engines).toEqual([
      { name: 'docbatch-vllm-0', gpus: 'device=0', port: r.enginePorts },
      { name: 'docbatch-vllm-1', gpus: 'device=1', port: r.enginePorts + 1 },
    ]);
    expect(workers.map((w) => w.name)).toEqual(['docbatch-worker-0', 'docbatch-worker-1']);
    for (const [i, w] of workers.entries()) {
      expect(parseDocbatchArgs(w.argv).unknown).toEqual([]);
      expect(flagValue(w.argv, '--engine-url')).toBe(`http://127.0.0.1:${r.enginePorts + i}`);
      expect(w.env).toContain(`METRICS_PORT=${r.metricsPorts + i}`);
    }
    // Every container exited and was removed; the engines were stopped by the task.
    const exits = r.calls().filter((c) => c.event === 'exited');
    expect(Object.fromEntries(exits.map((e) => [e.name, e.code]))).toMatchObject({ 'docbatch-worker-0': 0, 'docbatch-worker-1': 0 });
    expect(exits.map((e) => e.name).sort()).toEqual(['docbatch-vllm-0', 'docbatch-vllm-1', 'docbatch-worker-0', 'docbatch-worker-1']);
  }, 150_000);

  it.skipIf(!CLI_HAS_EXIT_WHEN_IDLE || noCurl)('on SIGTERM stops the workers first (they drain and exit 0), then their engines, and exits 143', async () => {
    const r = await startRun(2, 3600);
    for (let i = 0; i < 2; i++) {
      await until(`worker ${i} healthy`, async () => {
        if (r.child.exitCode !== null) throw new Error(`run exited ${r.child.exitCode}:\n${r.output()}`);
        const res = await fetch(`http://127.0.0.1:${r.metricsPorts + i}/health`).catch(() => null);
        return res?.status === 200 ? true : null;
      }, 90_000);
    }
    process.kill(-r.child.pid!, 'SIGTERM');
    const result = await Promise.race([r.exited, new Promise((ok) => setTimeout(() => ok('still running'), 60_000))]);
    expect(result, r.output()).toEqual({ code: 143, signal: null });
    const calls = r.calls();
    const at = (pred: (c: (typeof calls)[number]) => boolean) => calls.findIndex(pred);
    const workersStopped = at((c) => c.argv?.[0] === 'stop' && c.argv.includes('docbatch-worker-0'));
    const enginesStopped = at((c) => c.argv?.[0] === 'stop' && c.argv.includes('docbatch-vllm-0'));
    expect(workersStopped).toBeGreaterThanOrEqual(0);
    expect(enginesStopped).toBeGreaterThan(workersStopped);
    for (const w of ['docbatch-worker-0', 'docbatch-worker-1']) {
      const exit = at((c) => c.event === 'exited' && c.name === w);
      expect(calls[exit]?.code, w).toBe(0);
      expect(exit, `${w} exited before the engines were told to stop`).toBeLessThan(enginesStopped);
    }
  }, 150_000);
});
