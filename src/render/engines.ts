/**
 * The two page renderers behind one face, inside a renderer child. A child loads the engine
 * it was started for at once (warm: module instantiated, documents kept open between pages)
 * and the other only when the pool first sends it a page to draw as the fallback.
 */
import type { ChildSettings } from './protocol.ts';
import type { DocumentKey } from './documents.ts';
import type { PageJob, PageOutput, RendererName } from './image.ts';

export interface Engine {
  readonly name: RendererName;
  /** Documents opened so far. */
  readonly opened: number;
  blobIds(): string[];
  render(key: DocumentKey, job: PageJob): Promise<PageOutput>;
}

async function loadEngine(name: RendererName, settings: ChildSettings): Promise<Engine> {
  const { configureSharp } = await import('./image.ts');
  configureSharp();
  if (name === 'pdfium') {
    const [{ loadPdfium }, { PdfiumDocuments }, { renderPdfiumPage }] = await Promise.all([
      import('./pdfium.ts'),
      import('./documents.ts'),
      import('./pdfium-page.ts'),
    ]);
    await loadPdfium();
    const documents = new PdfiumDocuments(settings.maxOpenDocuments);
    return {
      name,
      get opened() {
        return documents.opened;
      },
      blobIds: () => documents.blobIds(),
      render: async (key, job) => renderPdfiumPage(await documents.get(key), job),
    };
  }
  const [{ loadPdfJs }, { DocumentCache }, { CanvasHolder, renderPage }] = await Promise.all([
    import('./pdfjs.ts'),
    import('./documents.ts'),
    import('./page.ts'),
  ]);
  await loadPdfJs();
  const documents = new DocumentCache(settings.maxOpenDocuments, settings.maxImagePixels, settings.fonts);
  const canvases = new CanvasHolder();
  return {
    name,
    get opened() {
      return documents.opened;
    },
    blobIds: () => documents.blobIds(),
    render: async (key, job) => renderPage(await documents.get(key), job, canvases),
  };
}

export class Engines {
  readonly #settings: ChildSettings;
  readonly #loaded = new Map<RendererName, Promise<Engine>>();

  constructor(settings: ChildSettings) {
    this.#settings = settings;
  }

  get(name: RendererName): Promise<Engine> {
    let engine = this.#loaded.get(name);
    if (!engine) {
      engine = loadEngine(name, this.#settings);
      this.#loaded.set(name, engine);
    }
    return engine;
  }

  /** Documents opened by every engine loaded so far. */
  async opened(): Promise<number> {
    let n = 0;
    for (const engine of this.#loaded.values()) n += (await engine.catch(() => undefined))?.opened ?? 0;
    return n;
  }

  /** Blob ids open in any engine (the pool routes pages of these here). */
  async blobIds(): Promise<string[]> {
    const ids = new Set<string>();
    for (const engine of this.#loaded.values()) for (const id of (await engine.catch(() => undefined))?.blobIds() ?? []) ids.add(id);
    return [...ids];
  }
}
