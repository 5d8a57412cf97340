/**
 * A unit job → the request the engine gets. What the unit is follows from its document and task:
 * a page (rendered in the render pool, or decoded with sharp for image files), a whole document
 * (all its pages), a chat chunk (read from the sidecar by way of the chunk index), or a
 * conversation's summary (from its chunks' answers). The request itself is built by the task
 * (src/task/request.ts); only images the worker rendered itself are sent, as base64 data URLs.
 */
import { basename } from 'node:path';
import type { UnitJobData } from '../../queues/contracts.ts';
import { DataUrl } from '../engine/data-url.ts';
import { DocbatchError } from '../errors.ts';
import { renderImagePage } from '../render/image-file.ts';
import type { RenderPool } from '../render/pool.ts';
import { TiffPages } from '../render/tiff-page.ts';
import type { BlobStore } from '../store/blobs.ts';
import type { ChunkReader } from '../store/chunk-index.ts';
import type { DocMeta, UnitResult } from '../store/types.ts';
import { BUILTIN_TASKS } from '../task/builtin.ts';
import { buildRequest, type BuiltRequest, type PageImage, type Payload } from '../task/request.ts';
import type { Task } from '../task/types.ts';

export interface Prepared {
  request: BuiltRequest;
  /** max_tokens: the task's, else the worker's default for the kind. */
  maxTokens: number;
  /** Where `maxTokens` came from, as a user sets it: the task's `sampling.max_tokens`, else PAGE_MAX_TOKENS or CHAT_MAX_TOKENS. */
  maxTokensFrom: string;
  /** A rough count of prompt tokens, to keep prompt + max_tokens inside the context. */
  promptTokensEstimate: number;
  /** The task whose rules judge the answer (the built-in summarize for a long conversation's parts). */
  judge: Task;
  /** Whether the request carries images (a text-only model cannot take it). */
  hasImages: boolean;
  imageSize?: number;
  renderMs?: number;
  renderer?: string;
  /** Drawn by the fallback renderer after the default one failed on the page. */
  rendererFallback?: boolean;
  /** A page's own text layer, for the text-layer fallback. */
  textLayer?: string;
}

export interface PreparerOptions {
  imageSize: number;
  imageFormat: 'png' | 'jpeg';
  imageQuality: number;
  pageMaxTokens: number;
  chatMaxTokens: number;
  /** Also put the JSON Schema into the prompt (engines without structured output). */
  schemaInPrompt: boolean;
}

export interface UnitContext {
  data: UnitJobData;
  meta: DocMeta;
  task: Task;
  password: string | null;
}

export class UnitPreparer {
  private readonly blobs: BlobStore;
  private readonly chunks: ChunkReader;
  private readonly pool: () => RenderPool;
  private readonly results: (docId: string, gen: number, unit: number) => Promise<UnitResult | null>;
  private readonly options: PreparerOptions;
  /** The directory chains of the TIFFs whose pages this worker renders (a page is found without walking the chain again). */
  private readonly tiffPages: TiffPages;

  constructor(parts: {
    blobs: BlobStore;
    chunks: ChunkReader;
    pool: () => RenderPool;
    results: (docId: string, gen: number, unit: number) => Promise<UnitResult | null>;
    options: PreparerOptions;
    /** @defaultValue a TiffPages of 4 documents */
    tiffPages?: TiffPages;
  }) {
    this.blobs = parts.blobs;
    this.chunks = parts.chunks;
    this.pool = parts.pool;
    this.results = parts.results;
    this.options = parts.options;
    this.tiffPages = parts.tiffPages ?? new TiffPages(4);
  }

  /** `longestSide` overrides the task's image size (smaller renders after an out-of-memory). */
  async prepare(ctx: UnitContext, longestSide: number | null, signal: AbortSignal): Promise<Prepared> {
    const { data, meta, task } = ctx;
    const file = basename(meta.source);
    if (data.reduce) return this.reduce(ctx, file, signal);
    if (meta.kind === 'chat') return this.chunk(ctx, file, signal);
    const size = longestSide ?? task.image.size ?? this.options.imageSize;
    if (task.unit === 'document') {
      const pages = meta.pages ?? 1;
      const rendered = await Promise.all(Array.from({ length: pages }, (_, i) => this.page(ctx, i + 1, size, signal)));
      const payload: Payload = { kind: 'document', file, pages, images: rendered.map((r) => r.image) };
      return this.finish(task, task, payload, {
        imageTokens: rendered.reduce((sum, r) => sum + r.tokens, 0),
        imageSize: rendered.reduce((max, r) => Math.max(max, r.side), 0),
        renderMs: rendered.reduce((sum, r) => sum + r.renderMs, 0),
        renderer: [...new Set(rendered.map((r) => r.renderer))].join('+'),
        ...(rendered.some((r) => r.fallback) ? { rendererFallback: true } : {}),
      });
    }
    const page = data.unit + 1;
    const r = await this.page(ctx, page, size, signal);
    const payload: Payload = { kind: 'page', file, pages: meta.pages ?? 1, image: r.image };
    return {
      ...this.finish(task, task, payload, { imageTokens: r.tokens, imageSize: r.side, renderMs: r.renderMs, renderer: r.renderer, ...(r.fallback ? { rendererFallback: true } : {}) }),
      textLayer: r.image.text,
    };
  }

  private async page(ctx: UnitContext, page: number, longestSide: number, signal: AbortSignal): Promise<{ image: PageImage; tokens: number; side: number; renderMs: number; renderer: string; fallback?: boolean }> {
    const { meta, task } = ctx;
    const format = task.image.format ?? this.options.imageFormat;
    const path = await this.blobs.localPath(meta.blob, { signal });
    if (meta.kind === 'image') {
      const r = await renderImagePage({ path, page, longestSide, format, quality: this.options.imageQuality }, this.tiffPages);
      return { image: { page, dataUrl: dataUrl(r.mime, r.image), text: '' }, tokens: imageTokens(r.width, r.height), side: Math.max(r.width, r.height), renderMs: r.renderMs, renderer: 'sharp' };
    }
    if (meta.encrypted && !ctx.password) {
      throw new DocbatchError('PDF_ENCRYPTED', 'the PDF needs a password and none is kept for it (a retry of an encrypted document needs --password again)');
    }
    const r = await this.pool().render(
      {
        path,
        blobId: meta.blob,
        page,
        ...(ctx.password ? { password: ctx.password } : {}),
        longestSide,
        format,
        quality: this.options.imageQuality,
        text: task.textLayer || task.fallback === 'text-layer',
      },
      signal,
    );
    return {
      image: { page, dataUrl: dataUrl(r.mime, r.image), text: r.text },
      tokens: imageTokens(r.width, r.height),
      side: Math.max(r.width, r.height),
      renderMs: r.renderMs,
      renderer: r.renderer,
      ...(r.fallbackFrom ? { fallback: true } : {}),
    };
  }

  private async chunk(ctx: UnitContext, file: string, signal: AbortSignal): Promise<Prepared> {
    const { data, meta, task } = ctx;
    if (!meta.index) throw new DocbatchError('BLOB_MISSING', `document ${meta.docId} has no chunk index`);
    const entry = await this.chunks.entry(meta.index, data.unit, signal);
    const record = await this.readLine(meta, entry.offset, entry.length, data.unit, signal);
    const payload: Payload = { kind: 'chunk', file, title: record.title, conversationId: record.conversation_id, chunk: record.chunk, chunks: record.chunks, text: record.text };
    // Under a `conversation` task, a conversation of several chunks is summarized part by part
    // first (the built-in summarize task); its summary unit then answers the task.
    const mapStep = task.unit === 'conversation' && record.chunks > 1;
    const judge = mapStep ? BUILTIN_TASKS.summarize : task;
    return this.finish(task, judge, payload, { textTokens: record.tokens }, mapStep);
  }

  /** A conversation's answer from its parts' summaries (those that failed are named as missing). */
  private async reduce(ctx: UnitContext, file: string, signal: AbortSignal): Promise<Prepared> {
    const { data, meta, task } = ctx;
    const group = data.reduce!;
    const head = await this.readLine(meta, group.head[0], group.head[1], group.first, signal);
    const parts: Array<string | null> = [];
    for (let i = 0; i < group.count; i++) {
      const r = await this.results(data.docId, data.gen, group.first + i);
      // A part with no result at all was reopened after this job was added: wait for it.
      if (r === null) throw new PartsPending(`part ${i + 1} of ${group.count} of conversation ${JSON.stringify(head.title)} is running again`);
      parts.push(r.ok ? r.text : null);
    }
    if (parts.every((p) => p === null)) {
      throw new DocbatchError('NOTHING_TO_SUMMARIZE', `every part of conversation ${JSON.stringify(head.title)} failed; there is nothing to summarize`);
    }
    // --conversation-summary makes a summary (built-in); a `conversation` task answers itself.
    const judge = task.unit === 'conversation' ? task : BUILTIN_TASKS.summarize;
    const payload: Payload = { kind: 'reduce', file, title: head.title, conversationId: head.conversation_id, parts };
    const chars = parts.reduce((sum, p) => sum + (p?.length ?? 30), 0);
    return this.finish(judge, judge, payload, { textTokens: Math.ceil(chars / 3) });
  }

  private async readLine(meta: DocMeta, offset: number, length: number, unit: number, signal: AbortSignal) {
    try {
      return await this.chunks.line(meta.blob, offset, length, signal);
    } catch (err) {
      if (err instanceof DocbatchError) throw err;
      throw new DocbatchError('BLOB_MISSING', `unit ${unit} of ${meta.docId}: the sidecar bytes at ${offset}+${length} are not a chunk record`, { cause: err });
    }
  }

  private finish(
    task: Task,
    judge: Task,
    payload: Payload,
    info: { imageTokens?: number; textTokens?: number; imageSize?: number; renderMs?: number; renderer?: string; rendererFallback?: boolean },
    mapStep = false,
  ): Prepared {
    const request = buildRequest(task, payload, { mapStep, schemaInPrompt: this.options.schemaInPrompt });
    const chat = payload.kind === 'chunk' || payload.kind === 'reduce';
    const textChars = request.messages.reduce((sum, m) => sum + (typeof m.content === 'string' ? m.content.length : m.content.reduce((s, p) => s + (p.type === 'text' ? p.text.length : 0), 0)), 0);
    return {
      request,
      maxTokens: request.maxTokens ?? (chat ? this.options.chatMaxTokens : this.options.pageMaxTokens),
      maxTokensFrom: request.maxTokens !== undefined ? "the task's sampling.max_tokens" : chat ? 'CHAT_MAX_TOKENS' : 'PAGE_MAX_TOKENS',
      promptTokensEstimate: (info.imageTokens ?? 0) + (info.textTokens ?? Math.ceil(textChars / 2)) + 200,
      judge,
      hasImages: (info.imageTokens ?? 0) > 0,
      ...(info.imageSize !== undefined ? { imageSize: info.imageSize } : {}),
      ...(info.renderMs !== undefined ? { renderMs: info.renderMs } : {}),
      ...(info.renderer !== undefined ? { renderer: info.renderer } : {}),
      ...(info.rendererFallback ? { rendererFallback: true } : {}),
    };
  }
}

/** A conversation's summary whose parts are not all settled (one was reopened): it runs later. */
export class PartsPending extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PartsPending';
  }
}

function dataUrl(mime: string, image: Buffer): DataUrl {
  return DataUrl.of(mime, image);
}

/** Qwen2.5-VL-style image tokens: one per 28 x 28 pixels. */
function imageTokens(width: number, height: number): number {
  return Math.ceil(width / 28) * Math.ceil(height / 28);
}
