/**
 * Turns a unit job into the request the engine gets: a page is rendered (in the render pool) to
 * an image data URL with its text layer as a hint; a chunk is read from its sidecar blob.
 * Only images the worker rendered itself are ever sent, and only as base64 data URLs.
 */
import type { ChunkUnit, PageUnit, ReduceUnit } from '../../queues/contracts.ts';
import type { ChatMessage } from '../engine/client.ts';
import { DocbatchError } from '../errors.ts';
import type { BlobStore } from '../ingest/blobs.ts';
import type { RenderPool } from '../render/pool.ts';
import type { DocStore } from '../store/docs.ts';
import type { DocMeta } from '../store/types.ts';
import { chunkMessages, pageMessages, reduceMessages } from './prompts.ts';

export interface PreparedUnit {
  messages: ChatMessage[];
  /** A rough count of prompt tokens, to keep prompt + max_tokens inside the context. */
  promptTokensEstimate: number;
  maxTokens: number;
  imageSize?: number;
  renderMs?: number;
  /** Page units: the engine that drew the page, and whether it was the fallback. */
  renderer?: 'pdfium' | 'pdfjs';
  rendererFallback?: boolean;
}

export interface UnitPreparerOptions {
  imageFormat: 'png' | 'jpeg';
  imageQuality: number;
  pageMaxTokens: number;
  chatMaxTokens: number;
}

/** A sidecar line as the chat splitter wrote it (src/ingest/chat/split.ts, ChunkRecord). */
interface SidecarChunk {
  conversation_id: string;
  title: string;
  chunk: number;
  chunks: number;
  tokens: number;
  text: string;
}

export class UnitPreparer {
  private readonly blobs: BlobStore;
  private readonly pool: () => RenderPool;
  private readonly options: UnitPreparerOptions;

  constructor(blobs: BlobStore, pool: () => RenderPool, options: UnitPreparerOptions) {
    this.blobs = blobs;
    this.pool = pool;
    this.options = options;
  }

  async page(unit: PageUnit, meta: DocMeta, longestSide: number, signal: AbortSignal): Promise<PreparedUnit> {
    const path = await this.blobs.require(unit.blob);
    const rendered = await this.pool().render(
      {
        path,
        blobId: unit.blob,
        page: unit.page,
        ...(meta.password ? { password: meta.password } : {}),
        longestSide,
        format: this.options.imageFormat,
        quality: this.options.imageQuality,
        text: true,
      },
      signal,
    );
    const dataUrl = `data:${rendered.mime};base64,${rendered.image.toString('base64')}`;
    const imageTokens = Math.ceil(rendered.width / 28) * Math.ceil(rendered.height / 28);
    return {
      messages: pageMessages({ dataUrl }, rendered.text),
      promptTokensEstimate: imageTokens + Math.ceil(rendered.text.length / 2) + 200,
      maxTokens: this.options.pageMaxTokens,
      imageSize: Math.max(rendered.width, rendered.height),
      renderMs: rendered.renderMs,
      renderer: rendered.renderer,
      ...(rendered.fallbackFrom ? { rendererFallback: true } : {}),
    };
  }

  private async sidecarLine(unit: { docId: string; unit: number; blob: string }, offset: number, length: number): Promise<SidecarChunk> {
    const bytes = await this.blobs.read(unit.blob, offset, length);
    try {
      return JSON.parse(bytes.toString('utf8')) as SidecarChunk;
    } catch (err) {
      throw new DocbatchError('BLOB_MISSING', `unit ${unit.unit} of ${unit.docId}: the sidecar bytes at ${offset}+${length} are not a chunk record`, { cause: err });
    }
  }

  async chunk(unit: ChunkUnit): Promise<PreparedUnit> {
    const record = await this.sidecarLine(unit, unit.offset, unit.length);
    return {
      messages: chunkMessages(record, record.text),
      promptTokensEstimate: record.tokens + 150,
      maxTokens: this.options.chatMaxTokens,
    };
  }

  /** A conversation's summary from its chunks' summaries (those that failed are named as missing). */
  async reduce(unit: ReduceUnit, store: DocStore): Promise<PreparedUnit> {
    const head = await this.sidecarLine(unit, unit.group.head[0], unit.group.head[1]);
    const parts: Array<string | null> = [];
    for (let i = 0; i < unit.group.count; i++) {
      const r = await store.unitResult(unit.docId, unit.group.first + i);
      parts.push(r?.ok ? r.text : null);
    }
    if (parts.every((p) => p === null)) {
      throw new DocbatchError('NOTHING_TO_SUMMARIZE', `every chunk of conversation ${JSON.stringify(head.title)} failed; there is nothing to summarize`);
    }
    const messages = reduceMessages(head.title, parts);
    const text = messages.map((m) => (typeof m.content === 'string' ? m.content : m.content.map((c) => ('text' in c ? c.text : '')).join('\n'))).join('\n');
    return { messages, promptTokensEstimate: Math.ceil(text.length / 2) + 100, maxTokens: this.options.chatMaxTokens };
  }
}
