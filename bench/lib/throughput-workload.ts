/**
 * The workload of bench/throughput.ts: the file the pipeline gets (`docbatch enqueue`), and the
 * very requests a worker would send for it, for the direct closed loop. The requests are built
 * by the worker's own UnitPreparer (src/infer/units.ts): pages through the real RenderPool and
 * the request builder (src/task/request.ts), chunks from the sidecar the producer's splitter
 * writes. Only `fitMaxTokens` is applied as the dispatcher applies it.
 */
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.ts';
import type { ChatMessage } from '../../src/engine/client.ts';
import { splitExport } from '../../src/ingest/chat/split.ts';
import { LocalBlobStore } from '../../src/store/blobs-local.ts';
import { ChunkReader, encodeIndex } from '../../src/store/chunk-index.ts';
import { chunkIndex } from '../../src/ingest/runs.ts';
import { BUILTIN_TASKS } from '../../src/task/builtin.ts';
import { detectFile } from '../../src/ingest/detect.ts';
import { inspectPdf } from '../../src/ingest/pdf.ts';
import { fitMaxTokens } from '../../src/infer/dispatch.ts';
import { UnitPreparer } from '../../src/infer/units.ts';
import { RenderPool } from '../../src/render/pool.ts';
import type { DocMeta } from '../../src/store/types.ts';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { generateChatgptExport } from './chatgpt-gen.ts';

export type WorkloadKind = 'pages' | 'chunks';

export interface BenchRequest {
  messages: ChatMessage[];
  maxTokens: number;
  /** The worker's estimate of the prompt, for the table. */
  promptTokensEstimate: number;
}

export interface Workload {
  kind: WorkloadKind;
  /** The input given to `docbatch enqueue`. */
  file: string;
  /** Its units (pages or chunks) in order: what the direct loop cycles through. */
  requests: BenchRequest[];
  /** Seconds spent preparing the requests (rendering, for pages) and the renderers used. */
  prepareSeconds: number;
  describe: string;
}

export interface WorkloadOptions {
  kind: WorkloadKind;
  /** Pages of the generated PDF, or roughly how many chunks the generated export should give. */
  units: number;
  /** A PDF to use instead of the generated one (all its pages are units). */
  pdf?: string;
  /** Scratch directory (removed by the caller). */
  dir: string;
  /** Renderer processes for preparing the direct loop's pages. */
  renderers: number;
  /** The engine's context (what /v1/models reports), for fitMaxTokens. */
  maxModelLen: number;
  /** Settings as the producer and the worker get them (e.g. CHUNK_TOKENS); defaults otherwise. */
  env?: Record<string, string>;
}

export async function buildWorkload(o: WorkloadOptions): Promise<Workload> {
  return o.kind === 'pages' ? pagesWorkload(o) : chunksWorkload(o);
}

/** A preparer as a worker builds one (no results store: no conversation summaries here). */
function preparerFor(blobs: LocalBlobStore, pool: () => RenderPool, config: ReturnType<typeof loadConfig>): UnitPreparer {
  return new UnitPreparer({
    blobs,
    chunks: new ChunkReader(blobs),
    pool,
    results: async () => null,
    options: { imageSize: config.imageSize, imageFormat: config.imageFormat, imageQuality: config.imageQuality, pageMaxTokens: config.pageMaxTokens, chatMaxTokens: config.chatMaxTokens, schemaInPrompt: false },
  });
}

/** The worker's and producer's settings: defaults, plus what the benchmark sets for every process. */
function workerDefaults(o: WorkloadOptions) {
  return loadConfig({}, o.env ?? {});
}

async function pagesWorkload(o: WorkloadOptions): Promise<Workload> {
  const config = workerDefaults(o);
  let file = o.pdf;
  if (!file) {
    file = join(o.dir, `numbered-${o.units}.pdf`);
    await writeFile(file, numberedPdf(o.units));
  }
  const blobs = new LocalBlobStore(join(o.dir, 'bench-blobs'));
  const blob = await blobs.put(file);
  const pool = new RenderPool({ size: o.renderers });
  const preparer = preparerFor(blobs, () => pool, config);
  try {
    const { pages } = await inspectPdf(blob.location, { file });
    const task = BUILTIN_TASKS.transcribe;
    const meta = { docId: 'bench', kind: 'pdf', source: file, sha256: blob.sha256, name: 'bench', units: pages, feedUnits: pages, pages, blob: blob.sha256, enqueuedAt: '' } as unknown as DocMeta;
    const started = performance.now();
    const signal = new AbortController().signal;
    const prepared = await Promise.all(
      Array.from({ length: pages }, (_, i) => preparer.prepare({ data: { docId: 'bench', gen: 1, unit: i }, meta, task, password: null }, null, signal)),
    );
    const prepareSeconds = (performance.now() - started) / 1000;
    return {
      kind: 'pages',
      file,
      requests: prepared.map((p) => ({ messages: p.request.messages, maxTokens: fitMaxTokens(p, o.maxModelLen), promptTokensEstimate: p.promptTokensEstimate })),
      prepareSeconds,
      describe: `${pages} pages of ${o.pdf ? o.pdf : 'a generated PDF (scripts/lib/pdf-writer.ts numberedPdf)'}, ${config.imageSize} px ${config.imageFormat} + text layer`,
    };
  } finally {
    await pool.close();
  }
}

/**
 * A synthetic ChatGPT export (bench/lib/chatgpt-gen.ts) grown until the producer's splitter cuts
 * it into `units` to 1.2 × `units` chunks at the default chunk budget.
 */
async function chunksWorkload(o: WorkloadOptions): Promise<Workload> {
  const config = workerDefaults(o);
  const file = join(o.dir, 'conversations.json');
  const blobs = new LocalBlobStore(join(o.dir, 'bench-blobs'));
  // About one chunk per 9 KB of generated export at the default budget; rescale until the count
  // is within 20%.
  let targetBytes = Math.max(100_000, ((o.units * 9_000) / 3500) * config.chunkTokens);
  for (let round = 0; ; round++) {
    await generateChatgptExport({ path: file, targetBytes, seed: 7 });
    const kind = await detectFile(file);
    if (kind.kind !== 'chat') throw new Error(`generated export detected as ${kind.kind}`);
    const sidecar = await blobs.tempPath('sidecar');
    const split = await splitExport(file, kind, sidecar, { file, budgetTokens: config.chunkTokens, overlapTokens: config.chunkOverlapTokens });
    if ((split.chunks < o.units || split.chunks > 1.2 * o.units) && round < 5) {
      await rm(split.sidecarPath, { force: true });
      targetBytes = Math.ceil((targetBytes * o.units * 1.05) / Math.max(1, split.chunks));
      continue;
    }
    const blob = await blobs.adopt(split.sidecarPath, split.sidecarSha256, split.sidecarBytes);
    const index = await blobs.putBytes(encodeIndex(chunkIndex(split.units, false)));
    const preparer = preparerFor(blobs, () => {
      throw new Error('chunks need no renderer');
    }, config);
    const task = BUILTIN_TASKS.summarize;
    const meta = { docId: 'bench', kind: 'chat', source: file, sha256: blob.sha256, name: 'bench', units: split.chunks, feedUnits: split.chunks, blob: blob.sha256, index: index.sha256, task: { unit: 'chunk' }, enqueuedAt: '' } as unknown as DocMeta;
    const started = performance.now();
    const signal = new AbortController().signal;
    const prepared = await Promise.all(split.units.map((_, i) => preparer.prepare({ data: { docId: 'bench', gen: 1, unit: i }, meta, task, password: null }, null, signal)));
    return {
      kind: 'chunks',
      file,
      requests: prepared.map((p) => ({ messages: p.request.messages, maxTokens: fitMaxTokens(p, o.maxModelLen), promptTokensEstimate: p.promptTokensEstimate })),
      prepareSeconds: (performance.now() - started) / 1000,
      describe: `${split.chunks} chunks of ${split.conversations} conversations of a generated ChatGPT export (bench/lib/chatgpt-gen.ts), ${config.chunkTokens}-token budget (CHUNK_TOKENS)`,
    };
  }
}
