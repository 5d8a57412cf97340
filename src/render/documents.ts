/**
 * The documents a renderer keeps open, least recently used first out, one cache per engine
 * (pdf.js: DocumentCache, PDFium: PdfiumDocuments). Opening is the costly part of a page of a
 * long document (xref, page tree, fonts), so pages of one blob reuse one open document for as
 * long as it stays in here.
 */
import { readFile } from 'node:fs/promises';
import type { PDFDocumentProxy } from 'pdfjs-dist';
import { DocbatchError, type ErrorCode } from '../errors.ts';
import { loadPdfium, PdfiumDocument } from './pdfium.ts';
import { classifyOpenError, errorText, openDocument, type FontRendering, type OpenedDocument } from './pdfjs.ts';

export interface DocumentKey {
  path: string;
  blobId: string;
  password?: string | undefined;
}

/** An LRU of open documents keyed by blob id and password; `open` and `close` are the engine's. */
abstract class OpenDocuments<D> {
  readonly #capacity: number;
  /** Map iteration order is insertion order: the first entry is the least recently used. */
  readonly #open = new Map<string, Promise<D>>();
  /** Documents opened (not found open) since this cache was made. */
  opened = 0;

  constructor(capacity: number) {
    this.#capacity = Math.max(1, capacity);
  }

  protected abstract openBytes(data: Buffer, key: DocumentKey): Promise<D>;
  protected abstract closeDocument(doc: D): Promise<void> | void;

  /** Blob ids open here, as the pool sees them (for routing pages to this renderer). */
  blobIds(): string[] {
    return [...new Set([...this.#open.keys()].map((k) => k.slice(0, k.indexOf('\0'))))];
  }

  protected async entry(key: DocumentKey): Promise<D> {
    // The password is part of the key: a document opened with the right password must not
    // answer a request that carries a wrong one.
    const id = `${key.blobId}\0${key.password ?? ''}`;
    let entry = this.#open.get(id);
    if (entry) {
      this.#open.delete(id);
      this.#open.set(id, entry);
    } else {
      entry = this.#load(key);
      this.opened += 1;
      this.#open.set(id, entry);
      entry.catch(() => this.#open.get(id) === entry && this.#open.delete(id));
      await this.#evict();
    }
    return entry;
  }

  async close(): Promise<void> {
    const entries = [...this.#open.values()];
    this.#open.clear();
    await Promise.allSettled(entries.map(async (e) => this.closeDocument(await e)));
  }

  async #evict(): Promise<void> {
    while (this.#open.size > this.#capacity) {
      const [oldest, entry] = this.#open.entries().next().value as [string, Promise<D>];
      this.#open.delete(oldest);
      await entry.then((e) => this.closeDocument(e)).catch(() => {});
    }
  }

  async #load(key: DocumentKey): Promise<D> {
    let data: Buffer;
    try {
      data = await readFile(key.path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        throw new DocbatchError('BLOB_MISSING', `the PDF is not in the blob store (${key.path})`, { cause: err });
      }
      throw new DocbatchError('RENDER_FAILED', `cannot read the PDF: ${errorText(err)}`, { cause: err });
    }
    return this.openBytes(data, key);
  }
}

/** pdf.js documents. */
export class DocumentCache extends OpenDocuments<OpenedDocument> {
  readonly #maxImagePixels: number;
  readonly #fonts: FontRendering;

  constructor(capacity: number, maxImagePixels: number, fonts: FontRendering) {
    super(capacity);
    this.#maxImagePixels = maxImagePixels;
    this.#fonts = fonts;
  }

  async get(key: DocumentKey): Promise<PDFDocumentProxy> {
    return (await this.entry(key)).doc;
  }

  protected closeDocument(doc: OpenedDocument): Promise<void> {
    return doc.task.destroy();
  }

  protected async openBytes(data: Buffer, key: DocumentKey): Promise<OpenedDocument> {
    try {
      // pdf.js transfers (detaches) the buffer it is given: hand it one nothing else shares.
      const bytes =
        data.byteOffset === 0 && data.byteLength === data.buffer.byteLength
          ? new Uint8Array(data.buffer, 0, data.byteLength)
          : new Uint8Array(data);
      return await openDocument(bytes, {
        ...(key.password === undefined ? {} : { password: key.password }),
        maxImagePixels: this.#maxImagePixels,
        fonts: this.#fonts,
      });
    } catch (err) {
      const failure = classifyOpenError(err);
      const code: ErrorCode =
        failure === 'bad-password' ? 'PDF_BAD_PASSWORD' : failure === 'need-password' ? 'PDF_ENCRYPTED' : 'RENDER_FAILED';
      const message =
        failure === 'bad-password'
          ? 'the password does not open the PDF'
          : failure === 'need-password'
            ? 'the PDF is encrypted and no password was given'
            : `pdf.js cannot open the PDF: ${errorText(err)}`;
      throw new DocbatchError(code, message, { cause: err });
    }
  }
}

/** PDFium documents: their bytes are copied into wasm memory, and freed on close. */
export class PdfiumDocuments extends OpenDocuments<PdfiumDocument> {
  get(key: DocumentKey): Promise<PdfiumDocument> {
    return this.entry(key);
  }

  protected closeDocument(doc: PdfiumDocument): void {
    doc.close();
  }

  protected async openBytes(data: Buffer, key: DocumentKey): Promise<PdfiumDocument> {
    return PdfiumDocument.open(await loadPdfium(), data, key.password);
  }
}
