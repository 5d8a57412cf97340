/**
 * The one place that loads PDFium (compiled to WebAssembly; the build shipped in
 * @hyzyla/pdfium, MIT wrapper, PDFium BSD/Apache) and opens documents with it. Only renderer
 * children import this module (child.ts), like pdfjs.ts.
 *
 * docbatch calls PDFium's C API directly (`_FPDF_*` exports of the emscripten module) instead of
 * the package's wrapper: the wrapper floors page sizes to whole points, draws text with LCD
 * (coloured) anti-aliasing, closes a page after every render and cannot read character boxes.
 *
 * Security (docs/rendering.md):
 * - PDFium parses inside WebAssembly: every allocation is in the module's linear memory, which
 *   cannot exceed 2 GiB and cannot reach the process's own memory; a wasm trap is an exception,
 *   not a crash (the child then leaves, see `PdfiumPoisoned`).
 * - The build has no V8 and no XFA: document JavaScript and XFA forms cannot run.
 * - Its file system is emscripten's in-memory one and its environment a fake one: PDFium sees
 *   no host file, no host font and no environment variable. Missing fonts come from the
 *   standard fonts compiled into PDFium.
 */
import { PDFiumModule } from '@hyzyla/pdfium';
import { DocbatchError } from '../errors.ts';

/** The part of the emscripten module docbatch calls. Pointers and handles are numbers. */
export interface PdfiumApi {
  HEAPU8: Uint8Array;
  HEAPF32: Float32Array;
  HEAPF64: Float64Array;
  wasmExports: { malloc(size: number): number; free(ptr: number): void };
  _FPDF_InitLibraryWithConfig(config: object): void;
  _FPDF_LoadMemDocument(data: number, size: number, password: number): number;
  _FPDF_GetLastError(): number;
  _FPDF_CloseDocument(doc: number): void;
  _FPDF_GetPageCount(doc: number): number;
  _FPDF_GetPageSizeByIndexF(doc: number, index: number, size: number): number;
  _FPDF_GetMetaText(doc: number, tag: number, buffer: number, length: number): number;
  _FPDF_GetFormType(doc: number): number;
  _FPDF_GetSecurityHandlerRevision(doc: number): number;
  _FPDF_DocumentHasValidCrossReferenceTable(doc: number): number;
  _FPDF_LoadPage(doc: number, index: number): number;
  _FPDF_ClosePage(page: number): void;
  _FPDF_GetPageWidthF(page: number): number;
  _FPDF_GetPageHeightF(page: number): number;
  _FPDFPage_GetRotation(page: number): number;
  _FPDF_GetPageBoundingBox(page: number, rect: number): number;
  _FPDFBitmap_CreateEx(width: number, height: number, format: number, buffer: number, stride: number): number;
  _FPDFBitmap_FillRect(bitmap: number, left: number, top: number, width: number, height: number, color: number): void;
  _FPDFBitmap_Destroy(bitmap: number): void;
  _FPDF_RenderPageBitmap(bitmap: number, page: number, x: number, y: number, width: number, height: number, rotate: number, flags: number): void;
  _FPDFText_LoadPage(page: number): number;
  _FPDFText_ClosePage(textPage: number): void;
  _FPDFText_CountChars(textPage: number): number;
  _FPDFText_GetUnicode(textPage: number, index: number): number;
  _FPDFText_IsGenerated(textPage: number, index: number): number;
  _FPDFText_IsHyphen(textPage: number, index: number): number;
  _FPDFText_GetCharOrigin(textPage: number, index: number, x: number, y: number): number;
  _FPDFText_GetLooseCharBox(textPage: number, index: number, rect: number): number;
  _FPDFText_GetMatrix(textPage: number, index: number, matrix: number): number;
  _FPDFText_GetTextObject(textPage: number, index: number): number;
  _FPDFTextObj_GetFont(textObject: number): number;
}

/** FPDF_GetLastError codes. */
const FPDF_ERR = { UNKNOWN: 1, FILE: 2, FORMAT: 3, PASSWORD: 4, SECURITY: 5, PAGE: 6 } as const;

let loaded: Promise<PdfiumApi> | undefined;

/** Instantiates the module once per process (~35 ms); every document shares it. */
export function loadPdfium(): Promise<PdfiumApi> {
  loaded ??= (async () => {
    const api = (await (PDFiumModule as unknown as (options: object) => Promise<PdfiumApi>)({})) as PdfiumApi;
    // No user font paths: PDFium would look for fonts in its (empty, in-memory) file system anyway.
    api._FPDF_InitLibraryWithConfig({ version: 2, m_pUserFontPaths: null, m_pIsolate: null, m_v8EmbedderSlot: 0, m_pPlatform: null });
    useRawExports(api);
    return api;
  })();
  return loaded;
}

/**
 * The package's build wraps each `_FPDF*` export in a checking closure (rest arguments, three
 * assertions) that allocates on every call: a text layer makes ~8 calls a character, and the
 * wrappers and the garbage they left were a third of its time (bench/text-layer.ts). Each is
 * replaced by the wasm export it wraps, the same function. A trap still throws a
 * WebAssembly.RuntimeError (`guarded`).
 */
function useRawExports(api: PdfiumApi): void {
  const exports = api.wasmExports as unknown as Record<string, unknown>;
  const target = api as unknown as Record<string, unknown>;
  for (const key of Object.keys(target)) {
    const raw = key.startsWith('_FPDF') ? exports[key.slice(1)] : undefined;
    if (typeof raw === 'function') target[key] = raw;
  }
}

/**
 * Thrown when PDFium trapped (a WebAssembly RuntimeError or an emscripten abort): its memory
 * may be inconsistent, so the child answers the page with RENDER_CRASHED and leaves.
 */
export class PdfiumPoisoned extends DocbatchError {
  constructor(what: string, cause: unknown) {
    super('RENDER_CRASHED', `PDFium aborted while ${what}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/** Runs a call into PDFium, turning a trap into PdfiumPoisoned. */
export function guarded<T>(what: string, call: () => T): T {
  try {
    return call();
  } catch (err) {
    if (err instanceof DocbatchError) throw err;
    throw new PdfiumPoisoned(what, err);
  }
}

/** An open PDFium document. Its bytes live in wasm memory until `close()`. */
export class PdfiumDocument {
  readonly api: PdfiumApi;
  readonly handle: number;
  readonly pages: number;
  #data: number;

  private constructor(api: PdfiumApi, handle: number, data: number) {
    this.api = api;
    this.handle = handle;
    this.#data = data;
    this.pages = api._FPDF_GetPageCount(handle);
  }

  /**
   * Opens a document from its bytes. Rejects with PDF_ENCRYPTED / PDF_BAD_PASSWORD, or
   * RENDER_FAILED naming PDFium's reason (the pool then tries pdf.js).
   */
  static open(api: PdfiumApi, bytes: Uint8Array, password: string | undefined): PdfiumDocument {
    return guarded('opening the document', () => {
      const data = api.wasmExports.malloc(Math.max(1, bytes.length));
      if (data === 0) throw new DocbatchError('RENDER_FAILED', `PDFium has no room for a ${bytes.length}-byte document in its 2 GiB`);
      api.HEAPU8.set(bytes, data);
      // AES-256 PDFs (revision 6) keep the password after SASLprep, whose normal form is NFKC;
      // PDFium compares the bytes it is given. The same word typed in another form (macOS gives
      // "a" + U+0308 for "ä") is tried in NFKC before the password counts as wrong. (pdf.js and
      // MuPDF open such files; PDFium converts between UTF-8 and Latin-1 for older revisions.)
      const load = (pass: string | undefined): number => {
        let pw = 0;
        if (pass) {
          const encoded = Buffer.from(`${pass}\0`, 'utf8');
          pw = api.wasmExports.malloc(encoded.length);
          api.HEAPU8.set(encoded, pw);
        }
        try {
          return api._FPDF_LoadMemDocument(data, bytes.length, pw);
        } finally {
          if (pw) api.wasmExports.free(pw);
        }
      };
      let handle = load(password);
      if (!handle && password && api._FPDF_GetLastError() === FPDF_ERR.PASSWORD && password.normalize('NFKC') !== password) {
        handle = load(password.normalize('NFKC'));
      }
      if (handle) return new PdfiumDocument(api, handle, data);
      const code = api._FPDF_GetLastError();
      api.wasmExports.free(data);
      if (code === FPDF_ERR.PASSWORD) {
        throw password
          ? new DocbatchError('PDF_BAD_PASSWORD', 'the password does not open the PDF')
          : new DocbatchError('PDF_ENCRYPTED', 'the PDF is encrypted and no password was given');
      }
      const why =
        code === FPDF_ERR.FORMAT
          ? 'not a PDF or damaged'
          : code === FPDF_ERR.SECURITY
            ? 'unsupported security handler'
            : code === FPDF_ERR.FILE
              ? 'cannot read the bytes'
              : `error ${code}`;
      throw new DocbatchError('RENDER_FAILED', `PDFium cannot open the PDF: ${why}`);
    });
  }

  close(): void {
    if (!this.#data) return;
    guarded('closing the document', () => {
      this.api._FPDF_CloseDocument(this.handle);
      this.api.wasmExports.free(this.#data);
    });
    this.#data = 0;
  }
}
