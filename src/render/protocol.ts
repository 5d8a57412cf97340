/**
 * Messages between a parent (RenderPool, PdfInspector) and a child (child.ts), sent over the
 * IPC channel with `serialization: 'advanced'` so image Buffers travel as bytes, not JSON.
 */
import type { ErrorCode } from '../errors.ts';
import type { FontRendering } from './pdfjs.ts';
import type { PageJob, PageOutput, RendererName } from './image.ts';

export interface ChildSettings {
  /** Documents kept open per renderer. */
  maxOpenDocuments: number;
  /** pdf.js `maxImageSize`: embedded images above this many pixels are skipped. */
  maxImagePixels: number;
  /** How glyphs are drawn (pdfjs.ts). */
  fonts: FontRendering;
  /** The renderer loaded at start (the other loads on its first page). @defaultValue 'pdfium' */
  renderer?: RendererName;
}

export interface RenderMessage {
  type: 'render';
  id: number;
  path: string;
  blobId: string;
  password?: string | undefined;
  job: PageJob;
  /** Which engine draws this page. */
  renderer: RendererName;
}

export interface InspectMessage {
  type: 'inspect';
  id: number;
  path: string;
  password?: string | undefined;
  /** Page sizes are listed only for documents with at most this many pages. */
  maxPageSizes: number;
  /** A document claiming more pages is PDF_TOO_MANY_PAGES before any page dictionary is read. */
  maxPages: number;
}

export type ToChild = RenderMessage | InspectMessage;

/** What an inspection says of a PDF (src/ingest/pdf.ts hands it on as PdfInfo). */
export interface InspectResult {
  pages: number;
  /** The file has an encryption dictionary (it may still open without a password). */
  encrypted: boolean;
  /** At most MAX_TITLE_CHARS (inspect.ts) characters: a longer one is cut, ending in …. */
  title: string | null;
  /**
   * The file carries an XFA form. docbatch never lays XFA out (docs/rendering.md): only the
   * static PDF pages are rendered, which for XFA-only forms is often a "Please wait..." page.
   */
  xfa: boolean;
  /**
   * Each page as displayed (after /Rotate), in points; left out above `maxPageSizes` pages.
   * Each page's /Rotate itself is in the report, from the renderer that drew it.
   */
  pageSizes?: Array<{ widthPt: number; heightPt: number }>;
  /** Which library read the file: PDFium, or pdf.js where PDFium could not tell. */
  reader: RendererName;
}

export type FromChild =
  | { type: 'ready'; pid: number }
  | { type: 'rendered'; id: number; page: PageOutput; open: string[]; opened: boolean }
  | { type: 'inspected'; id: number; info: InspectResult }
  /** `retire`: the child's engine is unusable (PDFium trapped); the parent lets it go. */
  | { type: 'failed'; id: number; code: ErrorCode; message: string; open: string[]; retire?: boolean };

/** argv[2] of the child: its settings as JSON. */
export function encodeSettings(settings: ChildSettings): string {
  return JSON.stringify(settings);
}

export function decodeSettings(arg: string | undefined): ChildSettings {
  const parsed = JSON.parse(arg ?? '{}') as Partial<ChildSettings>;
  return {
    maxOpenDocuments: parsed.maxOpenDocuments ?? 4,
    maxImagePixels: parsed.maxImagePixels ?? 100_000_000,
    fonts: parsed.fonts === 'paths' ? 'paths' : 'native',
    renderer: parsed.renderer === 'pdfjs' ? 'pdfjs' : 'pdfium',
  };
}
