/**
 * What `enqueue --wait` and `retry --wait` print once their documents are written: one line (or
 * JSON object) per document with where its outputs went, or why its write failed. Both verbs
 * print the same, so a retried document is found the way an enqueued one is.
 */
import type { DocProgress } from '../observe/progress.ts';
import { jsonLine, printable } from '../printable.ts';

/** Prints the documents' outcomes on standard output; returns the units and writes that failed. */
export function printWaitResults(final: readonly DocProgress[], json: boolean): number {
  let failed = 0;
  for (const p of final) {
    const r = p.record;
    failed += r.failed + (r.state === 'failed' ? 1 : 0);
    if (json) {
      process.stdout.write(`${jsonLine({ docId: r.docId, state: r.state, units: r.units, completed: r.done, failed: r.failed, files: r.files, ...(r.writeError ? { error: r.writeError } : {}) })}\n`);
    } else if (r.state === 'failed') {
      process.stdout.write(`${r.docId}  FAILED   ${printable(r.meta.source)}: ${r.writeError?.code ?? 'WRITE_FAILED'}: ${printable(r.writeError?.message ?? '')} (docbatch retry ${r.docId} writes it again)\n`);
    } else {
      process.stdout.write(`${r.docId}  written  ${printable(r.meta.source)}: ${r.done}/${r.units} done${r.failed ? `, ${r.failed} FAILED` : ''} → ${r.files.map(printable).join(', ')}\n`);
    }
  }
  return failed;
}
