/**
 * The workload of bench/throughput.ts: the file the pipeline gets (`docbatch enqueue`), and the
 * very requests a worker would send for it, for the direct closed loop. The requests are built
 * by the worker's own UnitPreparer (src/infer/units.ts): pages through the real RenderPool and
 * the prompt builder (src/infer/prompts.ts), chunks from the sidecar the producer's splitter
 * writes. Only `fitMaxTokens` is applied as the dispatcher applies it.
 */
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChunkUnit, PageUnit } from '../../queues/contracts.ts';
import { loadConfig } from '../../src/config.ts';
import type { ChatMessage } from '../../src/engine/client.ts';
import { splitExport } from '../../src/ingest/chat/split.ts';
import { BlobStore } from '../../src/ingest/blobs.ts';
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
  const blobs = new BlobStore(join(o.dir, 'bench-blobs'));
  const blob = await blobs.put(file);
  const pool = new RenderPool({ size: o.renderers });
  const preparer = new UnitPreparer(blobs, () => pool, {
    imageFormat: config.imageFormat,
    imageQuality: config.imageQuality,
    pageMaxTokens: config.pageMaxTokens,
    chatMaxTokens: config.chatMaxTokens,
  });
  try {
    const { pages } = await inspectPdf(blob.path, { file });
    const meta = { docId: 'bench', kind: 'pdf', source: file, sha256: blob.sha256, name: 'bench', units: pages, blob: blob.sha256, enqueuedAt: '' } as DocMeta;
    const started = performance.now();
    const signal = new AbortController().signal;
    const prepared = await Promise.all(
      Array.from({ length: pages }, (_, i) => {
        const unit: PageUnit = { kind: 'page', docId: 'bench', gen: 1, unit: i, blob: blob.sha256, page: i + 1 };
        return preparer.page(unit, meta, config.imageSize, signal);
      }),
    );
    const prepareSeconds = (performance.now() - started) / 1000;
    return {
      kind: 'pages',
      file,
      requests: prepared.map((p) => ({ messages: p.messages, maxTokens: fitMaxTokens(p, o.maxModelLen), promptTokensEstimate: p.promptTokensEstimate })),
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
  const blobs = new BlobStore(join(o.dir, 'bench-blobs'));
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
    const preparer = new UnitPreparer(blobs, () => {
      throw new Error('chunks need no renderer');
    }, { imageFormat: config.imageFormat, imageQuality: config.imageQuality, pageMaxTokens: config.pageMaxTokens, chatMaxTokens: config.chatMaxTokens });
    const started = performance.now();
    const prepared = await Promise.all(
      split.units.map((u, i) => {
        const unit: ChunkUnit = { kind: 'chunk', docId: 'bench', gen: 1, unit: i, blob: blob.sha256, offset: u.offset, length: u.length };
        return preparer.chunk(unit);
      }),
    );
    return {
      kind: 'chunks',
      file,
      requests: prepared.map((p) => ({ messages: p.messages, maxTokens: fitMaxTokens(p, o.maxModelLen), promptTokensEstimate: p.promptTokensEstimate })),
      prepareSeconds: (performance.now() - started) / 1000,
      describe: `${split.chunks} chunks of ${split.conversations} conversations of a generated ChatGPT export (bench/lib/chatgpt-gen.ts), ${config.chunkTokens}-token budget (CHUNK_TOKENS)`,
    };
  }
}
