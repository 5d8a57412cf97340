/**
 * The production overlay of deploy/kubernetes as the deployment tests read it: where it is, the
 * docbatch image it names, and the parts of its build that several checks look at (the GPU pod's
 * worker and vLLM containers, a command line's flags, a probe's URL).
 */
import { join, resolve } from 'node:path';
import { build, podSpec, readYamlDocuments, splitImage, type Build, type Container, type K8sObject, type Probe } from './kustomize.ts';

export const root = resolve(import.meta.dirname, '../..');
export const overlay = join(root, 'deploy/kubernetes/overlays/production');

const [overlayKustomization] = readYamlDocuments(join(overlay, 'kustomization.yaml')) as [{ images: Array<{ name: string; newName: string; newTag?: string; digest?: string }> }];
export const docbatchImageRule = overlayKustomization.images.find((i) => i.name === 'docbatch')!;
export const docbatchImage = `${docbatchImageRule.newName}${docbatchImageRule.digest ? `@${docbatchImageRule.digest}` : `:${docbatchImageRule.newTag}`}`;

/** The overlay as committed, its Secrets from the committed `.example` files. */
export const committedBuild = (): Build => build(overlay, { exampleSecrets: true });

export const workloads = (b: Build) => b.objects.filter((o) => podSpec(o) !== null);
export const isDocbatch = (c: Container) => c.image === docbatchImage;
/** A container port given by number or by name. */
export const portOf = (c: Container, port: number | string) => (typeof port === 'number' ? port : c.ports?.find((p) => p.name === port)?.containerPort);

/** The GPU pod: the Deployment the ScaledObject scales, its docbatch worker and its vLLM. */
export function gpuPool(b: Build): { deployment: K8sObject; worker: Container; vllm: Container } {
  const scaled = b.objects.find((o) => o.kind === 'ScaledObject')!;
  const name = (scaled.spec as { scaleTargetRef: { name: string } }).scaleTargetRef.name;
  const deployment = b.objects.find((o) => o.kind === 'Deployment' && o.metadata.name === name);
  if (!deployment) throw new Error(`the ScaledObject scales Deployment/${name}, which is not in the build`);
  const containers = podSpec(deployment)!.containers;
  const worker = containers.find((c) => isDocbatch(c) && c.args?.[0] === 'worker');
  const vllm = containers.find((c) => splitImage(c.image).name === 'vllm/vllm-openai');
  if (!worker || !vllm) throw new Error(`the scaled Deployment ${name} lacks a docbatch worker or a vLLM container`);
  return { deployment, worker, vllm };
}

/** The value after `--flag` in a command line, or of `--flag=value`. */
export function flagValue(argv: string[], flag: string): string | undefined {
  const i = argv.indexOf(flag);
  if (i >= 0) return argv[i + 1];
  return argv.find((a) => a.startsWith(`${flag}=`))?.slice(flag.length + 1);
}

/** The URL an exec probe's script fetches (`http://127.0.0.1:PORT/path`). */
export function urlIn(probe: Probe | undefined): URL {
  const text = probe?.exec?.command.join(' ') ?? '';
  const m = /https?:\/\/[^'"\s)]+/.exec(text);
  if (!m) throw new Error(`no URL in probe ${JSON.stringify(probe)}`);
  return new URL(m[0]);
}
