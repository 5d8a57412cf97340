/**
 * A small kustomize for the deployment tests (no kustomize or kubectl binary here). It builds a
 * kustomization folder into the list of objects `kubectl apply -k` would send, applying only the
 * fields docbatch's manifests use:
 *
 * - `resources` (files and folders), `components` (folders of `kind: Component`);
 * - `namespace` (set on every object but cluster-scoped kinds);
 * - `images` (`name` → `newName`/`newTag`/`digest`, on containers and init containers);
 * - `secretGenerator` with `envs` files, under `generatorOptions.disableNameSuffixHash: true`;
 * - `patches` with `path`: a merge patch on the object of the same kind and name, where maps
 *   merge, `null` deletes, and a list in a patch is refused (strategic merge of lists is not
 *   modelled).
 *
 * Any other field throws, so a manifest that starts using more fails here instead of being read
 * halfway. Secret env files that are not committed are read from their `.example` when the
 * caller allows it (the real ones hold credentials and are ignored by git).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

export interface BuildOptions {
  /** Read `X.example` where a secretGenerator env file `X` does not exist. */
  exampleSecrets?: boolean;
  /** Leave out the top kustomization's `components` (e.g. build without the in-cluster Redis). */
  withoutComponents?: boolean;
}

export interface Build {
  objects: K8sObject[];
  /** For each generated Secret: the env file its values came from (the `.example` when used). */
  secretFiles: Map<string, string>;
}

const KNOWN_FIELDS = new Set([
  'apiVersion', 'kind', 'resources', 'components', 'namespace', 'images', 'secretGenerator', 'generatorOptions', 'patches',
]);
const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition', 'PersistentVolume', 'StorageClass', 'ClusterTriggerAuthentication']);

type Kustomization = {
  apiVersion?: string;
  kind?: string;
  resources?: string[];
  components?: string[];
  namespace?: string;
  images?: Array<{ name: string; newName?: string; newTag?: string; digest?: string }>;
  secretGenerator?: Array<{ name: string; envs?: string[]; [other: string]: unknown }>;
  generatorOptions?: { disableNameSuffixHash?: boolean; [other: string]: unknown };
  patches?: Array<{ path?: string; [other: string]: unknown }>;
};

/** Parses every YAML document of a file (comments and `---` separators allowed). */
export function readYamlDocuments(file: string): unknown[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'));
  const out: unknown[] = [];
  for (const doc of docs) {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value = doc.toJS() as unknown;
    if (value !== null && value !== undefined) out.push(value);
  }
  return out;
}

function readKustomization(dir: string, expectKind: 'Kustomization' | 'Component'): Kustomization {
  const file = join(dir, 'kustomization.yaml');
  if (!existsSync(file)) throw new Error(`${dir}: no kustomization.yaml`);
  const [k] = readYamlDocuments(file) as [Kustomization];
  for (const field of Object.keys(k)) {
    if (!KNOWN_FIELDS.has(field)) throw new Error(`${file}: field '${field}' is not modelled by test/deploy/kustomize.ts`);
  }
  if ((k.kind ?? 'Kustomization') !== expectKind) throw new Error(`${file}: kind ${k.kind}, expected ${expectKind}`);
  return k;
}

/** Builds the kustomization in `dir` as `kubectl apply -k dir` would (within the fields above). */
export function build(dir: string, options: BuildOptions = {}): Build {
  const secretFiles = new Map<string, string>();
  const objects = buildDir(resolve(dir), 'Kustomization', options, secretFiles, true);
  const seen = new Set<string>();
  for (const o of objects) {
    const id = `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
    if (seen.has(id)) throw new Error(`two objects ${id}`);
    seen.add(id);
  }
  return { objects, secretFiles };
}

function buildDir(dir: string, kind: 'Kustomization' | 'Component', options: BuildOptions, secretFiles: Map<string, string>, top: boolean): K8sObject[] {
  const k = readKustomization(dir, kind);
  let objects: K8sObject[] = [];
  for (const entry of k.resources ?? []) {
    const path = resolve(dir, entry);
    if (!existsSync(path)) throw new Error(`${dir}: resource ${entry} does not exist`);
    objects.push(...(statSync(path).isDirectory() ? buildDir(path, 'Kustomization', options, secretFiles, false) : readObjects(path)));
  }
  if (!(top && options.withoutComponents)) {
    for (const entry of k.components ?? []) objects.push(...buildDir(resolve(dir, entry), 'Component', options, secretFiles, false));
  }
  for (const gen of k.secretGenerator ?? []) {
    for (const field of Object.keys(gen)) {
      if (field !== 'name' && field !== 'envs') throw new Error(`${dir}: secretGenerator field '${field}' is not modelled`);
    }
    if (k.generatorOptions?.disableNameSuffixHash !== true) throw new Error(`${dir}: generated names carry a hash suffix, which this resolver does not model`);
    const data: Record<string, string> = {};
    for (const envFile of gen.envs ?? []) {
      let file = resolve(dir, envFile);
      if (!existsSync(file) && options.exampleSecrets) file = `${file}.example`;
      if (!existsSync(file)) throw new Error(`${dir}: secretGenerator ${gen.name}: ${envFile} does not exist`);
      secretFiles.set(gen.name, file);
      for (const [key, value] of Object.entries(parseEnvFile(file))) data[key] = Buffer.from(value).toString('base64');
    }
    objects.push({ apiVersion: 'v1', kind: 'Secret', metadata: { name: gen.name }, type: 'Opaque', data });
  }
  for (const patch of k.patches ?? []) {
    if (!patch.path || Object.keys(patch).length !== 1) throw new Error(`${dir}: only patches with a path alone are modelled`);
    for (const p of readObjects(resolve(dir, patch.path))) {
      const target = objects.find((o) => o.kind === p.kind && o.metadata.name === p.metadata.name);
      if (!target) throw new Error(`${dir}: patch ${patch.path} targets ${p.kind}/${p.metadata.name}, which is not in the build`);
      objects = objects.map((o) => (o === target ? (mergePatch(o, p, `${patch.path}`) as K8sObject) : o));
    }
  }
  for (const image of k.images ?? []) {
    for (const o of objects) for (const c of allContainers(o)) c.image = setImage(c.image as string, image);
  }
  if (k.namespace) {
    for (const o of objects) if (!CLUSTER_SCOPED.has(o.kind)) o.metadata = { ...o.metadata, namespace: k.namespace };
  }
  return objects;
}

function readObjects(file: string): K8sObject[] {
  const docs = readYamlDocuments(file);
  if (docs.length === 0) throw new Error(`${file}: no object in it`);
  return docs.map((doc) => {
    const o = doc as K8sObject;
    if (!o.apiVersion || !o.kind || !o.metadata?.name) throw new Error(`${file}: an object without apiVersion, kind or metadata.name`);
    return structuredClone(o);
  });
}

/** `KEY=VALUE` lines; blank lines and `#` comments skipped (kustomize's envs format). */
export function parseEnvFile(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [i, raw] of readFileSync(file, 'utf8').split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new Error(`${file}:${i + 1}: not KEY=VALUE`);
    out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

function mergePatch(target: unknown, patch: unknown, where: string): unknown {
  if (Array.isArray(patch)) throw new Error(`${where}: a list in a patch is not modelled (kustomize merges some lists by key)`);
  if (patch === null || typeof patch !== 'object') return patch;
  const base = target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [key, value] of Object.entries(patch as Record<string, unknown>)) {
    if (value === null) delete base[key];
    else base[key] = mergePatch(base[key], value, `${where}: ${key}`);
  }
  return base;
}

function setImage(image: string, rule: { name: string; newName?: string; newTag?: string; digest?: string }): string {
  const { name, tag, digest } = splitImage(image);
  if (name !== rule.name) return image;
  const newName = rule.newName ?? name;
  if (rule.digest) return `${newName}@${rule.digest}`;
  if (rule.newTag) return `${newName}:${rule.newTag}`;
  return `${newName}${digest ? `@${digest}` : tag ? `:${tag}` : ''}`;
}

/** `registry:5000/a/b:tag@sha256:...` → name, tag and digest (a registry's port is not a tag). */
export function splitImage(image: string): { name: string; tag?: string; digest?: string } {
  const [ref, digest] = image.split('@') as [string, string | undefined];
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  if (colon > slash) return { name: ref.slice(0, colon), tag: ref.slice(colon + 1), digest };
  return { name: ref, digest };
}

// ---- reading a build ---------------------------------------------------------------------------

export interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: Array<{ name: string; value?: string; valueFrom?: Record<string, Record<string, unknown>> }>;
  envFrom?: Array<{ configMapRef?: { name: string }; secretRef?: { name: string } }>;
  ports?: Array<{ name?: string; containerPort: number }>;
  resources?: { requests?: Record<string, unknown>; limits?: Record<string, unknown> };
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  lifecycle?: { preStop?: Probe; postStart?: Probe };
  [field: string]: unknown;
}

export interface Probe {
  httpGet?: { path: string; port: number | string };
  tcpSocket?: { port: number | string };
  exec?: { command: string[] };
  [field: string]: unknown;
}

/** The pod spec of a workload (Deployment, StatefulSet, DaemonSet, Job), or null. */
export function podSpec(o: K8sObject): Record<string, unknown> & { containers: Container[]; initContainers?: Container[] } | null {
  const spec = o.spec as { template?: { spec?: unknown } } | undefined;
  return (spec?.template?.spec as ReturnType<typeof podSpec>) ?? null;
}

export function allContainers(o: K8sObject): Container[] {
  const pod = podSpec(o);
  return pod ? [...(pod.initContainers ?? []), ...pod.containers] : [];
}

export function find(objects: K8sObject[], kind: string, name: string): K8sObject {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind}/${name} in the build`);
  return o;
}

/** A Secret's values, decoded. */
export function secretData(secret: K8sObject): Record<string, string> {
  const data = (secret.data ?? {}) as Record<string, string>;
  return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
}

export interface ResolvedEnv {
  env: Record<string, string>;
  /** References that name a missing ConfigMap, Secret or key (optional ones included, marked). */
  missing: string[];
}

/**
 * The environment a container starts with, as the kubelet builds it: `envFrom` first, then `env`
 * in order (`$(VAR)` expanded from the variables before it); ConfigMap and Secret values from
 * the build; `fieldRef` as `<fieldPath>` placeholders (`metadata.name` → `pod-name`).
 */
export function containerEnv(objects: K8sObject[], c: Container): ResolvedEnv {
  const env: Record<string, string> = {};
  const missing: string[] = [];
  const source = (kind: 'ConfigMap' | 'Secret', name: string) => {
    const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
    if (!o) return null;
    return kind === 'Secret' ? secretData(o) : ((o.data ?? {}) as Record<string, string>);
  };
  for (const from of c.envFrom ?? []) {
    const [kind, ref] = from.configMapRef ? (['ConfigMap', from.configMapRef] as const) : (['Secret', from.secretRef!] as const);
    const data = source(kind, ref.name);
    if (!data) missing.push(`${kind}/${ref.name}`);
    else Object.assign(env, data);
  }
  for (const e of c.env ?? []) {
    if (e.value !== undefined) {
      env[e.name] = expand(String(e.value), env);
      continue;
    }
    const from = e.valueFrom ?? {};
    if (from.fieldRef) {
      env[e.name] = from.fieldRef.fieldPath === 'metadata.name' ? 'pod-name' : `<${String(from.fieldRef.fieldPath)}>`;
      continue;
    }
    const [kind, ref] = from.configMapKeyRef ? (['ConfigMap', from.configMapKeyRef] as const) : (['Secret', from.secretKeyRef!] as const);
    const data = source(kind, String(ref.name));
    const value = data?.[String(ref.key)];
    if (value === undefined) missing.push(`${kind}/${String(ref.name)}:${String(ref.key)}${ref.optional ? ' (optional)' : ''}`);
    else env[e.name] = value;
  }
  return { env, missing };
}

/** Kubernetes' `$(VAR)` expansion in command, args and env values; `$$` is a literal `$`. */
export function expand(text: string, env: Record<string, string>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, name: string | undefined) => (name === undefined ? '$' : (env[name] ?? m)));
}
