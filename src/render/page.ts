/**
 * One page → one image and its text with pdf.js, inside a renderer child (the fallback
 * renderer, or the only one with RENDERER=pdfjs). The canvas is sized by geometry.ts before it
 * is allocated; pixels go from the canvas to image.ts raw (no intermediate encode), and the
 * text layer is read while sharp encodes on its own thread.
 */
import { createCanvas, type Canvas } from '@napi-rs/canvas';
import type { PDFDocumentProxy, PDFPageProxy } from 'pdfjs-dist';
import { DocbatchError } from '../errors.ts';
import { round2, targetSize } from './geometry.ts';
import { encodeImage, type PageJob, type PageOutput } from './image.ts';
import { errorText } from './pdfjs.ts';
import { joinTextRuns } from './text.ts';

type RenderParameters = Parameters<PDFPageProxy['render']>[0];

export type { PageJob, PageOutput } from './image.ts';

/** Keeps one canvas per renderer: pages of a document mostly share a size. */
export class CanvasHolder {
  #canvas: Canvas | undefined;

  get(width: number, height: number): Canvas {
    if (!this.#canvas) {
      this.#canvas = createCanvas(width, height);
    } else if (this.#canvas.width !== width || this.#canvas.height !== height) {
      // Resizing resets the backing store, as in browsers.
      this.#canvas.width = width;
      this.#canvas.height = height;
    }
    return this.#canvas;
  }

  release(): void {
    if (this.#canvas && this.#canvas.width * this.#canvas.height > 4_000_000) this.#canvas = undefined;
  }
}

export async function renderPage(doc: PDFDocumentProxy, job: PageJob, canvases: CanvasHolder): Promise<PageOutput> {
  const started = performance.now();
  if (!Number.isInteger(job.page) || job.page < 1 || job.page > doc.numPages) {
    throw new DocbatchError('RENDER_FAILED', `page ${job.page} does not exist (the document has ${doc.numPages})`);
  }
  let page: PDFPageProxy;
  try {
    page = await doc.getPage(job.page);
  } catch (err) {
    throw new DocbatchError('RENDER_FAILED', `pdf.js cannot read the page: ${errorText(err)}`, { cause: err });
  }
  try {
    const natural = page.getViewport({ scale: 1 });
    const size = targetSize({ widthPt: natural.width, heightPt: natural.height }, job);
    const viewport = page.getViewport({ scale: size.scale });
    const canvas = canvases.get(size.width, size.height);
    try {
      await page.render({
        canvas: canvas as unknown as RenderParameters['canvas'],
        viewport,
        // Stretch the viewport (rounded sizes) onto the whole canvas, so no edge stays blank.
        transform: [size.width / viewport.width, 0, 0, size.height / viewport.height, 0, 0],
        background: 'white',
      }).promise;
    } catch (err) {
      throw new DocbatchError('RENDER_FAILED', `pdf.js cannot render the page: ${errorText(err)}`, { cause: err });
    }
    // Straight from the canvas: premultiplied RGBA, and every pixel is opaque (white
    // background), so premultiplied equals straight alpha and sharp may drop the channel.
    const pixels = canvas.data();
    canvases.release();
    const encoded = encodeImage(pixels, size.width, size.height, job);
    encoded.catch(() => {}); // awaited below; the text layer is read in the meantime
    const text = job.text ? await readText(page) : '';
    const image = await encoded;
    return {
      image,
      mime: job.format === 'png' ? 'image/png' : 'image/jpeg',
      width: size.width,
      height: size.height,
      text,
      widthPt: round2(natural.width),
      heightPt: round2(natural.height),
      rotation: page.rotate,
      renderMs: Math.round(performance.now() - started),
      renderer: 'pdfjs',
    };
  } finally {
    page.cleanup();
  }
}

async function readText(page: PDFPageProxy): Promise<string> {
  try {
    const content = await page.getTextContent();
    return joinTextRuns(content.items);
  } catch (err) {
    throw new DocbatchError('RENDER_FAILED', `pdf.js cannot read the text layer: ${errorText(err)}`, { cause: err });
  }
}
