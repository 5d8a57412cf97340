/**
 * Entry point of a renderer or inspection child (forked by renderer-process.ts). One request
 * at a time; the parent owns every limit (wall clock, RSS, pages per renderer) and kills this
 * process when one is crossed, so nothing here needs to defend itself against a slow page.
 * A renderer draws each page with the engine the request names (engines.ts); inspection
 * asks PDFium, then pdf.js where PDFium cannot tell (inspect.ts). The parent starts it with an environment holding only Node's compile cache folder (renderer-process.ts).
 *
 * argv[2]: 'render' | 'inspect'; argv[3]: ChildSettings as JSON; argv[4]: the parent's pid when
 * the child must watch for its parent's death itself, '' when the kernel does it (parent-watch.ts).
 */
import { flushCompileCache } from 'node:module';
import { DocbatchError, toDocbatchError } from '../errors.ts';
import { dieWithParent } from './parent-watch.ts';
import { decodeSettings, type FromChild, type ToChild } from './protocol.ts';

const mode = process.argv[2] === 'inspect' ? 'inspect' : 'render';
const settings = decodeSettings(process.argv[3]);

function send(message: FromChild): void {
  process.send?.(message);
}

// A parent that is gone (crashed, killed) closes the channel: leave with it, never orphaned.
// That needs a free event loop; while a page holds it, the watchdog (started below) ends the process.
process.on('disconnect', () => process.exit(0));
// pdf.js can reject promises nobody awaits on broken files; the request in progress still
// settles (or the parent's wall clock ends it), so a stray rejection must not end the process.
process.on('unhandledRejection', (reason) => {
  process.stderr.write(`unhandled rejection in renderer: ${String((reason as Error)?.stack ?? reason)}\n`);
});

if (mode === 'inspect') {
  const { inspectDocument, prepareInspection } = await import('./inspect.ts');
  await prepareInspection();
  process.on('message', (message: ToChild) => {
    if (message.type !== 'inspect') return;
    inspectDocument(message.path, message.password, message.maxPageSizes, message.maxPages).then(
      (info) => send({ type: 'inspected', id: message.id, info }),
      (err: unknown) => {
        const e = toDocbatchError(err, 'PDF_CORRUPT');
        send({ type: 'failed', id: message.id, code: e.code, message: e.message, open: [] });
      },
    );
  });
} else {
  const { Engines } = await import('./engines.ts');
  const { PdfiumPoisoned } = await import('./pdfium.ts');
  const engines = new Engines(settings);
  await engines.get(settings.renderer ?? 'pdfium');
  let queue: Promise<void> = Promise.resolve();

  process.on('message', (message: ToChild) => {
    if (message.type !== 'render') return;
    // The parent sends one page at a time; chaining keeps that true even if it did not.
    queue = queue.then(async () => {
      const before = await engines.opened();
      try {
        const started = performance.now();
        const engine = await engines.get(message.renderer);
        const page = await engine.render(message, message.job);
        page.renderMs = Math.round(performance.now() - started);
        send({ type: 'rendered', id: message.id, page, open: await engines.blobIds(), opened: (await engines.opened()) > before });
      } catch (err) {
        const e = err instanceof DocbatchError ? err : toDocbatchError(err, 'RENDER_FAILED');
        const retire = err instanceof PdfiumPoisoned;
        send({ type: 'failed', id: message.id, code: e.code, message: e.message, open: await engines.blobIds(), ...(retire ? { retire } : {}) });
      }
    });
  });
}

// Written now, not at exit: a child usually ends by SIGKILL (a limit crossed, or its parent
// closing), and Node only writes the cache on a normal exit.
flushCompileCache();
send({ type: 'ready', pid: process.pid });
// After 'ready': its thread's start (~40 ms of CPU) does not delay the child's first request.
// Until now nothing blocked the loop for long, and 'disconnect' was heard.
if (process.argv[4]) dieWithParent(Number(process.argv[4]));
