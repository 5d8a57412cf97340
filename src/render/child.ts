/**
 * Entry point of a renderer or inspection child (forked by renderer-process.ts). One request
 * at a time; the parent owns every limit (wall clock, RSS, pages per renderer) and kills this
 * process when one is crossed, so nothing here needs to defend itself against a slow page.
 *
 * argv[2]: 'render' | 'inspect'; argv[3]: ChildSettings as JSON.
 */
import { enableCompileCache } from 'node:module';
import { DocbatchError, toDocbatchError } from '../errors.ts';
import { decodeSettings, type FromChild, type ToChild } from './protocol.ts';

// Before the big (dynamic) imports: V8's code cache makes a respawned renderer ready in about
// half the time (pdf.js is ~100k lines).
enableCompileCache();

const mode = process.argv[2] === 'inspect' ? 'inspect' : 'render';
const settings = decodeSettings(process.argv[3]);

function send(message: FromChild): void {
  process.send?.(message);
}

// A parent that is gone (crashed, killed) closes the channel: leave with it, never orphaned.
process.on('disconnect', () => process.exit(0));
// pdf.js can reject promises nobody awaits on broken files; the request in progress still
// settles (or the parent's wall clock ends it), so a stray rejection must not end the process.
process.on('unhandledRejection', (reason) => {
  process.stderr.write(`unhandled rejection in renderer: ${String((reason as Error)?.stack ?? reason)}\n`);
});

const { loadPdfJs } = await import('./pdfjs.ts');
await loadPdfJs();

if (mode === 'inspect') {
  const { inspectDocument } = await import('./inspect.ts');
  process.on('message', (message: ToChild) => {
    if (message.type !== 'inspect') return;
    inspectDocument(message.path, message.password, message.maxPageSizes).then(
      (info) => send({ type: 'inspected', id: message.id, info }),
      (err: unknown) => {
        const e = toDocbatchError(err, 'PDF_CORRUPT');
        send({ type: 'failed', id: message.id, code: e.code, message: e.message, open: [] });
      },
    );
  });
} else {
  const { CanvasHolder, configureSharp, renderPage } = await import('./page.ts');
  const { DocumentCache } = await import('./documents.ts');
  configureSharp();
  const documents = new DocumentCache(settings.maxOpenDocuments, settings.maxImagePixels, settings.fonts);
  const canvases = new CanvasHolder();
  let queue: Promise<void> = Promise.resolve();

  process.on('message', (message: ToChild) => {
    if (message.type !== 'render') return;
    // The parent sends one page at a time; chaining keeps that true even if it did not.
    queue = queue.then(async () => {
      try {
        const started = performance.now();
        const before = documents.opened;
        const doc = await documents.get(message);
        const page = await renderPage(doc, message.job, canvases);
        page.renderMs = Math.round(performance.now() - started);
        send({ type: 'rendered', id: message.id, page, open: documents.blobIds(), opened: documents.opened > before });
      } catch (err) {
        const e = err instanceof DocbatchError ? err : toDocbatchError(err, 'RENDER_FAILED');
        send({ type: 'failed', id: message.id, code: e.code, message: e.message, open: documents.blobIds() });
      }
    });
  });
}

send({ type: 'ready', pid: process.pid });
