/**
 * Producer side: is this a PDF docbatch can process, and how many pages has it?
 *
 * The cheap checks (size, magic bytes) run here; PDFium (and pdf.js where PDFium cannot tell,
 * src/render/inspect.ts) runs in a child process with a wall-clock limit, a heap cap and a
 * resident-memory cap (src/render/child.ts), so a hostile file can neither hang nor crash the
 * producer nor take the machine's memory. One inspector can serve many files (one child, respawned after a
 * kill); `inspectPdf` is the one-file shortcut.
 */
import { open, stat } from 'node:fs/promises';
import { DocbatchError, InputError, type ErrorCode } from '../errors.ts';
import type { InspectResult } from '../render/protocol.ts';
import { DEFAULT_MAX_PAGES } from '../render/page-count.ts';
import { RendererProcess } from '../render/renderer-process.ts';

/** What the inspection child found (src/render/protocol.ts has each field). */
export type PdfInfo = InspectResult;

export interface InspectOptions {
  /** The file as the user named it, for messages. */
  file: string;
  password?: string;
  /**
   * The most pages a PDF may claim (INPUT_MAX_PAGES): above it the file is PDF_TOO_MANY_PAGES before
   * any page dictionary is read. @defaultValue 100_000
   */
  maxPages?: number;
  /** Wall-clock limit of the inspection, child start-up excluded. @defaultValue 30_000 */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface PdfInspectorOptions {
  /** V8 heap limit of the inspection child, in MB. @defaultValue 512 */
  maxHeapMb?: number;
  /**
   * Resident memory of the inspection child (V8 heap plus PDFium's wasm memory, which the heap
   * limit does not cover), in MB, plus 8 × the file's size (the child holds the file, its copy in
   * wasm memory and, where pdf.js decides, pdf.js's own); above it the file is PDF_CORRUPT.
   * Checked where /proc exists (Linux). @defaultValue 1024
   */
  maxRssMb?: number;
  /** Page sizes are listed for documents with at most this many pages. @defaultValue 5000 */
  maxPageSizes?: number;
}

/** How often the inspection child's resident memory is checked. */
const RSS_CHECK_MS = 100;
/** Copies of the file an inspection may hold (see maxRssMb). */
const FILE_COPIES = 8;

/** pdf.js and PDFium accept a header anywhere in the first KiB; so does docbatch. */
const HEADER_WINDOW = 1024;
const MAGIC = Buffer.from('%PDF-', 'latin1');

export async function inspectPdf(path: string, options: InspectOptions): Promise<PdfInfo> {
  const inspector = new PdfInspector();
  try {
    return await inspector.inspect(path, options);
  } finally {
    await inspector.close();
  }
}

export class PdfInspector {
  readonly #maxHeapMb: number;
  readonly #maxPageSizes: number;
  readonly #maxRssMb: number;
  #child: RendererProcess | undefined;
  #busy: Promise<unknown> = Promise.resolve();
  #closing: Promise<void> | undefined;

  constructor(options: PdfInspectorOptions = {}) {
    this.#maxHeapMb = options.maxHeapMb ?? 512;
    this.#maxPageSizes = options.maxPageSizes ?? 5000;
    this.#maxRssMb = options.maxRssMb ?? 1024;
    for (const [name, value] of Object.entries({ maxHeapMb: this.#maxHeapMb, maxPageSizes: this.#maxPageSizes, maxRssMb: this.#maxRssMb })) {
      if (!Number.isInteger(value) || value < 1) throw new TypeError(`PdfInspector: option ${name} must be an integer >= 1, got ${value}`);
    }
  }

  /** Inspections run one at a time (one child); concurrent calls queue. */
  inspect(path: string, options: InspectOptions): Promise<PdfInfo> {
    const run = this.#busy.then(() => this.#inspect(path, options));
    this.#busy = run.catch(() => {});
    return run;
  }

  /**
   * Starts the child now, without waiting for it: a caller that knows PDFs are coming (the
   * enqueue verb, before it loads its own modules) has the child's start-up (~0.3 s: Node, then
   * PDFium's wasm) overlap its own. A child that fails to start is started again, and its failure
   * said, by the first inspection.
   */
  warm(): void {
    if (!this.#closing) this.#ready().catch(() => {});
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      const child = this.#child;
      this.#child = undefined;
      if (child) {
        child.kill(new DocbatchError('ABORTED', 'the PDF inspector is closing'));
        await child.exited;
      }
    })();
    return this.#closing;
  }

  async #inspect(path: string, options: InspectOptions): Promise<PdfInfo> {
    const place = { file: options.file };
    const reject = (code: ErrorCode, message: string, cause?: unknown) =>
      new InputError(code, message, { place, ...(cause === undefined ? {} : { cause }) });
    if (this.#closing) throw new DocbatchError('ABORTED', 'the PDF inspector is closed');
    const aborted = () => new DocbatchError('ABORTED', `inspecting ${options.file} was aborted`, { cause: options.signal?.reason });
    if (options.signal?.aborted) throw aborted();

    const size = await checkBytes(path, reject);
    const maxRssMb = this.#maxRssMb + Math.ceil((FILE_COPIES * size) / 1_048_576);

    const timeoutMs = options.timeoutMs ?? 30_000;
    const child = await this.#ready();
    if (options.signal?.aborted) throw aborted();
    let timer: NodeJS.Timeout | undefined;
    let watch: NodeJS.Timeout | undefined;
    const onAbort = () => child.kill(aborted());
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      timer = setTimeout(() => child.kill(new DocbatchError('PDF_CORRUPT', `reading the file did not finish within ${timeoutMs} ms`)), timeoutMs);
      watch = setInterval(() => {
        const rss = child.rssMb();
        if (rss !== undefined && rss > maxRssMb) {
          child.kill(new DocbatchError('PDF_CORRUPT', `reading the file took ${Math.round(rss)} MB of memory, above the inspector's ${maxRssMb} MB for a file of this size`));
        }
      }, RSS_CHECK_MS);
      const reply = await child.request<'inspected'>({
        type: 'inspect',
        path,
        password: options.password,
        maxPageSizes: this.#maxPageSizes,
        maxPages: options.maxPages ?? DEFAULT_MAX_PAGES,
      });
      // PDFium's wasm memory never shrinks: a child that grew past the bound reading a file it
      // did read in time is let go, and the next file gets a fresh one (a retiring child still
      // counts as alive until it exits, so it is dropped here, not left for #ready to reuse).
      if ((child.rssMb() ?? 0) > this.#maxRssMb) {
        if (this.#child === child) this.#child = undefined;
        child.retire();
      }
      return reply.info;
    } catch (err) {
      if (!(err instanceof DocbatchError)) throw err;
      if (err.code === 'ABORTED') throw err;
      // A child that died reading the file (out of memory, crash) was beaten by its bytes.
      const code = err.code === 'RENDER_CRASHED' ? 'PDF_CORRUPT' : err.code;
      const message = err.code === 'RENDER_CRASHED' ? `reading the file crashed the inspector: ${err.message}` : err.message;
      throw reject(code, message, err);
    } finally {
      clearTimeout(timer);
      clearInterval(watch);
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  async #ready(): Promise<RendererProcess> {
    if (!this.#child?.alive) {
      this.#child = new RendererProcess({
        mode: 'inspect',
        heapMb: this.#maxHeapMb,
        settings: { maxOpenDocuments: 1, maxImagePixels: 1, fonts: 'paths' },
      });
    }
    const child = this.#child;
    try {
      await child.ready;
    } catch (err) {
      this.#child = undefined;
      throw new DocbatchError('INTERNAL', `the PDF inspection process did not start: ${child.stderrTail() || String(err)}`, { cause: err });
    }
    return child;
  }
}

/** Size and magic bytes: no child is needed to reject an empty file or a PNG named .pdf. Returns the size. */
async function checkBytes(path: string, reject: (code: ErrorCode, message: string, cause?: unknown) => InputError): Promise<number> {
  let size: number;
  try {
    const info = await stat(path);
    if (!info.isFile()) throw reject('FILE_UNREADABLE', 'not a regular file');
    size = info.size;
  } catch (err) {
    if (err instanceof InputError) throw err;
    throw reject('FILE_UNREADABLE', `cannot read the file: ${(err as Error).message}`, err);
  }
  if (size === 0) throw reject('EMPTY_FILE', 'the file has zero bytes');
  const head = Buffer.alloc(Math.min(size, HEADER_WINDOW));
  try {
    const handle = await open(path, 'r');
    try {
      await handle.read(head, 0, head.length, 0);
    } finally {
      await handle.close();
    }
  } catch (err) {
    throw reject('FILE_UNREADABLE', `cannot read the file: ${(err as Error).message}`, err);
  }
  if (head.indexOf(MAGIC) < 0) {
    throw reject('NOT_PDF', `the bytes are not a PDF (no %PDF- header in the first ${HEADER_WINDOW} bytes; they start with ${describeStart(head)})`);
  }
  return size;
}

function describeStart(head: Buffer): string {
  const start = head.subarray(0, 8);
  const printable = /^[\x20-\x7e]+$/.test(start.toString('latin1'));
  return printable ? JSON.stringify(start.toString('latin1')) : `0x${start.toString('hex')}`;
}
