/**
 * The Kubernetes manifests (deploy/kubernetes). The production overlay is built twice with the
 * kustomize model in ./kustomize.ts — as committed (with the in-cluster Redis component) and
 * without its components (an external Redis) — with the Secrets read from their committed
 * `.example` files, and each build is checked: images pinned, the GPU on the vLLM container of
 * the GPU pod only, vLLM and the worker in one pod over localhost, probes on real endpoints,
 * every Secret and key referenced generated, every docbatch command line and its settings
 * accepted by the real CLI and config, KEDA's triggers on the wait lists that queues/routes.ts
 * names for the configured prefix and model, and stopping within a 30-second notice.
 * kubernetes-probes.test.ts runs the probes and hooks that are scripts.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hostRefusal } from '../../src/observe/host-guard.ts';
import { AWS_SDK_ENV, configFor, parseDocbatchArgs, SETTING_ENV } from './docbatch-args.ts';
import { allContainers, build, containerEnv, expand, find, podSpec, readYamlDocuments, secretData, splitImage, type Build, type Container } from './kustomize.ts';
import { docbatchImageRule, flagValue, gpuPool, isDocbatch, overlay, portOf, root, urlIn, workloads } from './overlay.ts';

/** The notice a preempted spot node gets (GCP, Azure; AWS gives two minutes). */
const NOTICE_MS = 30_000;

const builds: Array<{ label: string; options: Parameters<typeof build>[1] }> = [
  { label: 'with the in-cluster Redis component', options: { exampleSecrets: true } },
  { label: 'with an external Redis (no components)', options: { exampleSecrets: true, withoutComponents: true } },
];

const gpus = (c: Container) => ({ requests: c.resources?.requests?.['nvidia.com/gpu'], limits: c.resources?.limits?.['nvidia.com/gpu'] });

interface ScaledObjectSpec {
  scaleTargetRef: { name: string; kind?: string };
  minReplicaCount: number;
  maxReplicaCount: number;
  fallback: { failureThreshold: number; replicas: number; behavior?: string };
  triggers: Array<{ type: string; name: string; metadata: Record<string, string>; authenticationRef: { name: string } }>;
}
const scaledObject = (b: Build) => find(b.objects, 'ScaledObject', 'docbatch-gpu').spec as ScaledObjectSpec;

function parseRedisUrl(url: string) {
  const u = new URL(url);
  return {
    tls: u.protocol === 'rediss:',
    address: `${u.hostname}:${u.port || '6379'}`,
    host: u.hostname,
    port: Number(u.port || 6379),
    username: decodeURIComponent(u.username) || 'default',
    password: decodeURIComponent(u.password),
    db: u.pathname.length > 1 ? u.pathname.slice(1) : '0',
  };
}

describe.each(builds)('the production overlay $label', ({ options }) => {
  let memo: Build | undefined;
  const b = () => (memo ??= build(overlay, options));

  it('builds: every resource, component, patch and Secret file exists, and no kustomization field goes unread', () => {
    const ids = b().objects.map((o) => `${o.kind}/${o.metadata.name}`).sort();
    const expected = [
      'ConfigMap/docbatch-config', 'Deployment/docbatch-dashboard', 'Deployment/docbatch-gpu', 'Deployment/docbatch-writer',
      'Namespace/docbatch', 'ScaledObject/docbatch-gpu', 'Secret/docbatch-dashboard', 'Secret/docbatch-hf', 'Secret/docbatch-redis',
      'Secret/docbatch-s3', 'Service/docbatch-dashboard', 'ServiceAccount/docbatch', 'TriggerAuthentication/docbatch-dashboard',
      ...(options?.withoutComponents ? [] : ['Service/docbatch-redis', 'StatefulSet/docbatch-redis']),
    ].sort();
    expect(ids).toEqual(expected);
    for (const o of b().objects) if (o.kind !== 'Namespace') expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe('docbatch');
    // The overlay's patches took: its settings and its maximum.
    expect((find(b().objects, 'ConfigMap', 'docbatch-config').data as Record<string, string>).BLOB_DIR).toMatch(/^s3:\/\/example-docbatch\//);
    expect((find(b().objects, 'ScaledObject', 'docbatch-gpu').spec as { maxReplicaCount: number }).maxReplicaCount).toBe(4);
  });

  it("pins every image: a tag that is not latest, or a digest; docbatch's tag is package.json's version", () => {
    for (const o of workloads(b())) {
      for (const c of allContainers(o)) {
        const { name, tag, digest } = splitImage(c.image);
        expect(digest ?? tag, `${o.metadata.name}/${c.name}: ${c.image}`).toBeTruthy();
        expect(tag, `${o.metadata.name}/${c.name}: ${c.image}`).not.toBe('latest');
        expect(name, `${o.metadata.name}/${c.name} still names the unreplaced image`).not.toBe('docbatch');
      }
    }
    // The release these manifests describe (a digest is pinned too).
    const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
    if (!docbatchImageRule.digest) expect(docbatchImageRule.newTag).toBe(version);
    const docbatchContainers = workloads(b()).flatMap(allContainers).filter(isDocbatch);
    expect(docbatchContainers.map((c) => c.args?.[0]).sort()).toEqual(['dashboard', 'worker', 'writer']);
  });

  it('gives one GPU to the vLLM container of the GPU pod, and no GPU to anything else', () => {
    const { deployment, vllm } = gpuPool(b());
    expect(gpus(vllm)).toEqual({ requests: 1, limits: 1 });
    for (const o of workloads(b())) {
      for (const c of allContainers(o)) {
        if (o === deployment && c === vllm) continue;
        expect(gpus(c), `${o.metadata.name}/${c.name}`).toEqual({ requests: undefined, limits: undefined });
      }
    }
    expect(podSpec(deployment)!.tolerations).toContainEqual(expect.objectContaining({ key: 'nvidia.com/gpu' }));
  });

  it('puts vLLM and its worker in one pod, talking over localhost, serving the model the worker names', () => {
    const { vllm, worker } = gpuPool(b());
    const workerEnv = containerEnv(b().objects, worker).env;
    const vllmEnv = containerEnv(b().objects, vllm).env;
    const vllmArgv = [...(vllm.command ?? []), ...(vllm.args ?? [])].map((a) => expand(a, vllmEnv));
    expect(vllmArgv.slice(0, 2)).toEqual(['vllm', 'serve']);
    expect(flagValue(vllmArgv, '--host')).toBe('127.0.0.1');
    const port = Number(flagValue(vllmArgv, '--port'));
    expect(port).toBeGreaterThan(0);
    const workerArgv = (worker.args ?? []).map((a) => expand(a, workerEnv));
    const engineUrl = new URL(flagValue(workerArgv, '--engine-url') ?? workerEnv.ENGINE_URL!);
    expect(engineUrl.hostname).toBe('127.0.0.1');
    expect(Number(engineUrl.port)).toBe(port);
    // `vllm serve MODEL`: the served name is the model, the same the worker sends and routes by.
    expect(vllmArgv[2]).toBe(workerEnv.MODEL);
    expect(workerEnv.MODEL).toBeTruthy();
    // Each worker is named after its pod.
    expect(flagValue(workerArgv, '--name')).toBe('pod-name');
  });

  it('points every probe and hook at a real endpoint of its container', () => {
    const { worker, vllm } = gpuPool(b());
    const workerEnv = containerEnv(b().objects, worker).env;
    // The worker: /health on METRICS_PORT, bound where the kubelet reaches it.
    expect(worker.readinessProbe?.httpGet?.path).toBe('/health');
    expect(portOf(worker, worker.readinessProbe!.httpGet!.port)).toBe(Number(workerEnv.METRICS_PORT));
    expect(workerEnv.METRICS_HOST).toBe('0.0.0.0');
    // vLLM: /health on its own port, from inside the container (it listens on 127.0.0.1 only).
    const vllmArgv = [...(vllm.command ?? []), ...(vllm.args ?? [])];
    for (const probe of [vllm.startupProbe, vllm.livenessProbe]) {
      const url = urlIn(probe);
      expect(`${url.hostname}:${url.port}${url.pathname}`).toBe(`127.0.0.1:${flagValue(vllmArgv, '--port')}/health`);
    }
    // vLLM's preStop waits on the worker's metrics port.
    expect(vllm.lifecycle?.preStop?.exec?.command.join(' ')).toContain(`("127.0.0.1", ${workerEnv.METRICS_PORT})`);
    // The dashboard: /health with credentials on DASHBOARD_PORT; liveness on the same port.
    const dashboard = podSpec(find(b().objects, 'Deployment', 'docbatch-dashboard'))!.containers[0]!;
    const dashEnv = containerEnv(b().objects, dashboard).env;
    const url = urlIn(dashboard.readinessProbe);
    expect(`${url.port}${url.pathname}`).toBe(`${dashEnv.DASHBOARD_PORT}/health`);
    expect(dashboard.readinessProbe!.exec!.command.join(' ')).toContain('process.env.DASHBOARD_PASSWORD');
    expect(portOf(dashboard, dashboard.livenessProbe!.tcpSocket!.port)).toBe(Number(dashEnv.DASHBOARD_PORT));
    // The dashboard's Service reaches that port.
    const service = find(b().objects, 'Service', 'docbatch-dashboard').spec as { ports: Array<{ targetPort: string | number }>; selector: Record<string, string> };
    expect(portOf(dashboard, service.ports[0]!.targetPort)).toBe(Number(dashEnv.DASHBOARD_PORT));
    expect(find(b().objects, 'Deployment', 'docbatch-dashboard').spec).toMatchObject({ template: { metadata: { labels: service.selector } } });
  });

  it('generates every Secret and key that a pod or KEDA reads, from a committed example whose filled-in file git ignores', () => {
    const wanted: string[] = [];
    for (const o of workloads(b())) {
      for (const c of allContainers(o)) {
        const { missing } = containerEnv(b().objects, c);
        wanted.push(...missing.map((m) => `${o.metadata.name}/${c.name}: ${m}`));
      }
    }
    const refs = b().objects.filter((o) => o.kind === 'TriggerAuthentication').flatMap((o) => (o.spec as { secretTargetRef: Array<{ name: string; key: string }> }).secretTargetRef);
    expect(refs.length).toBeGreaterThan(0);
    for (const ref of refs) {
      const secret = b().objects.find((o) => o.kind === 'Secret' && o.metadata.name === ref.name);
      if (!secret || secretData(secret)[ref.key] === undefined) wanted.push(`TriggerAuthentication: Secret/${ref.name}:${ref.key}`);
    }
    expect(wanted).toEqual([]);
    for (const [name, file] of b().secretFiles) {
      expect(file, name).toMatch(/\.env\.example$/);
      const real = file.replace(/\.example$/, '');
      const ignored = spawnSync('git', ['check-ignore', '-q', relative(root, real)], { cwd: root });
      expect(ignored.status, `${relative(root, real)} must be ignored by git`).toBe(0);
      expect(spawnSync('git', ['check-ignore', '-q', relative(root, file)], { cwd: root }).status, `${relative(root, file)} must not be ignored`).toBe(1);
    }
  });

  it('runs real docbatch verbs with real flags, and every variable set is a setting whose value loads', () => {
    for (const o of workloads(b())) {
      for (const c of allContainers(o).filter(isDocbatch)) {
        const where = `${o.metadata.name}/${c.name}`;
        expect(c.command, `${where}: the image's entrypoint runs bin/docbatch`).toBeUndefined();
        const { env } = containerEnv(b().objects, c);
        const argv = (c.args ?? []).map((a) => expand(a, env));
        const parsed = parseDocbatchArgs(argv);
        expect(parsed.unknown, where).toEqual([]);
        expect(parsed.operands, where).toEqual([]);
        const expandedFrom = new Set((c.args ?? []).flatMap((a) => [...a.matchAll(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g)].map((m) => m[1]!)));
        for (const name of Object.keys(env)) {
          if (expandedFrom.has(name)) continue;
          expect(SETTING_ENV.has(name) || AWS_SDK_ENV.has(name), `${where}: ${name} is neither a docbatch setting nor an AWS SDK variable`).toBe(true);
        }
        expect(() => configFor(argv, env), where).not.toThrow();
      }
    }
  });

  it("scales the GPU Deployment from zero on the dashboard's count of units waiting for the configured model", () => {
    const { deployment, worker } = gpuPool(b());
    const env = containerEnv(b().objects, worker).env;
    const scaled = scaledObject(b());
    expect(scaled.scaleTargetRef).toEqual({ name: deployment.metadata.name });
    expect(scaled.minReplicaCount).toBe(0);
    expect(scaled.maxReplicaCount).toBeGreaterThanOrEqual(1);
    // The count is KEDA's: a `replicas` in the manifest would be reset by every `kubectl apply`.
    expect((deployment.spec as { replicas?: number }).replicas).toBeUndefined();
    // Never the length of a wait list: fair feeding keeps those near FEED_DEPTH (src/store/feed.ts).
    expect(scaled.triggers.map((t) => t.type)).toEqual(['metrics-api']);
    const [t] = scaled.triggers;
    const url = new URL(t!.metadata.url!);
    expect(url.pathname).toBe('/api/backlog');
    // The model the worker serves, as the worker reads it (URL-decoded by searchParams).
    expect(url.searchParams.get('model')).toBe(configFor(worker.args!.map((a) => expand(a, env)), env).model);
    expect([...url.searchParams.keys()]).toEqual(['model']);
    expect(t!.metadata.valueLocation).toBe('waiting');
    expect(Number(t!.metadata.targetValue)).toBeGreaterThan(0);
    expect(t!.metadata.activationTargetValue).toBe('0');
    // Held at its size, at least one pod, when the dashboard cannot be read.
    expect(scaled.fallback).toMatchObject({ replicas: 1, behavior: 'currentReplicasIfHigher' });
    expect(scaled.fallback.failureThreshold).toBeGreaterThanOrEqual(2);
  });

  it("has KEDA reach the dashboard's Service by a name the dashboard answers to, with its read token", () => {
    const [t] = scaledObject(b()).triggers;
    const url = new URL(t!.metadata.url!);
    const namespace = find(b().objects, 'ScaledObject', 'docbatch-gpu').metadata.namespace!;
    // KEDA's operator runs in its own namespace: the Service's name with this namespace.
    expect(url.protocol).toBe('http:');
    const [service, ns, ...rest] = url.hostname.split('.');
    expect(ns).toBe(namespace);
    expect(['svc', 'svc.cluster.local']).toContain(rest.join('.'));
    const svc = find(b().objects, 'Service', service!);
    const ports = (svc.spec as { ports: Array<{ port: number; targetPort: number | string }> }).ports;
    const port = ports.find((p) => p.port === Number(url.port || 80));
    expect(port, `Service/${service} has no port ${url.port}`).toBeDefined();
    // The Service leads to the dashboard, listening on that target port beyond loopback.
    const dashboard = find(b().objects, 'Deployment', 'docbatch-dashboard');
    const selector = (svc.spec as { selector: Record<string, string> }).selector;
    const labels = (dashboard.spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels;
    for (const [k, v] of Object.entries(selector)) expect(labels[k], k).toBe(v);
    const container = podSpec(dashboard)!.containers[0]!;
    const { env } = containerEnv(b().objects, container);
    const config = configFor(container.args!, env);
    expect(portOf(container, port!.targetPort)).toBe(config.dashboardPort);
    // The Host KEDA sends is one the dashboard answers to (src/observe/host-guard.ts).
    expect(hostRefusal(url.host, { bind: config.dashboardHost, publicNames: config.dashboardPublicNames }, 'DASHBOARD_PUBLIC_NAMES')).toBeNull();
    // A bearer token the dashboard takes as its read token: figures only, not its admin credentials.
    expect(t!.metadata.authMode).toBe('bearer');
    const auth = find(b().objects, 'TriggerAuthentication', t!.authenticationRef.name).spec as { secretTargetRef: Array<{ parameter: string; name: string; key: string }> };
    const fromSecret = Object.fromEntries(auth.secretTargetRef.map((r) => [r.parameter, secretData(find(b().objects, 'Secret', r.name))[r.key]]));
    expect(fromSecret).toEqual({ token: config.dashboardReadToken });
    expect(config.dashboardReadToken).toBeTruthy();
    expect([config.dashboardPassword, config.dashboardToken]).not.toContain(config.dashboardReadToken);
  });

  it('points REDIS_URL at the in-cluster Redis, which takes that password, when the overlay has it', () => {
    const secret = secretData(find(b().objects, 'Secret', 'docbatch-redis'));
    const url = parseRedisUrl(secret.REDIS_URL!);
    const redisService = b().objects.find((o) => o.kind === 'Service' && o.metadata.name === 'docbatch-redis');
    if (!redisService) return; // an external Redis: REDIS_URL is the operator's
    expect(url.host).toBe(redisService.metadata.name);
    expect((redisService.spec as { ports: Array<{ port: number }> }).ports[0]!.port).toBe(url.port);
    const redis = podSpec(find(b().objects, 'StatefulSet', 'docbatch-redis'))!.containers[0]!;
    expect(containerEnv(b().objects, redis).env.REDIS_PASSWORD).toBe(url.password);
    expect(redis.command!.join(' ')).toMatch(/--appendonly yes .*--maxmemory-policy noeviction .*--requirepass "\$REDIS_PASSWORD"/);
  });

  it('stops within a 30-second notice: drains in 20 s, and every docbatch pod waits for it', () => {
    const config = find(b().objects, 'ConfigMap', 'docbatch-config').data as Record<string, string>;
    const shutdown = Number(config.SHUTDOWN_TIMEOUT_MS);
    expect(shutdown).toBeLessThanOrEqual(NOTICE_MS - 10_000);
    expect(Number(config.LOCK_DURATION_MS)).toBeLessThanOrEqual(NOTICE_MS);
    expect(Number(config.STALLED_INTERVAL_MS)).toBeLessThanOrEqual(Number(config.LOCK_DURATION_MS) / 2);
    for (const o of workloads(b())) {
      if (!allContainers(o).some(isDocbatch) || o.metadata.name === 'docbatch-dashboard') continue;
      const grace = Number(podSpec(o)!.terminationGracePeriodSeconds ?? 30) * 1000;
      expect(grace, o.metadata.name).toBeGreaterThanOrEqual(shutdown + 10_000);
    }
  });
});

describe('the manifests as files', () => {
  it('every YAML file under deploy/kubernetes parses and starts with a comment saying what it is', () => {
    const files = spawnSync('git', ['ls-files', '--others', '--cached', '--exclude-standard', 'deploy/kubernetes'], { cwd: root, encoding: 'utf8' })
      .stdout.split('\n')
      .filter((f) => f.endsWith('.yaml'));
    expect(files.length).toBeGreaterThanOrEqual(12);
    for (const f of files) {
      const text = readFileSync(join(root, f), 'utf8');
      expect(() => readYamlDocuments(join(root, f)), f).not.toThrow();
      expect(text.startsWith('#'), `${f} starts with its contract comment`).toBe(true);
    }
  });
});
