/**
 * clashingNames (src/ingest/clashes.ts): which base names of one command take the hash suffix.
 * Real files in a temp folder; no Redis.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { clashingNames } from '../../src/ingest/clashes.ts';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';

const dir = mkdtempSync(join(tmpdir(), 'docbatch-clashes-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function pdfAt(rel: string, seed: number): string {
  const path = join(dir, rel);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, numberedPdf(1, seed));
  return path;
}

describe('clashingNames', () => {
  it('names two different documents of one name (either case), not copies of one, nor what is no document', async () => {
    const a = pdfAt('a/Invoice.pdf', 1);
    const b = pdfAt('b/invoice.pdf', 2);
    const copy1 = pdfAt('c/report.pdf', 3);
    const copy2 = pdfAt('d/report.pdf', 3);
    const notes = join(dir, 'e/report.txt');
    mkdirSync(join(dir, 'e'));
    writeFileSync(notes, 'just notes');
    const clashing = await clashingNames([a, b, copy1, copy2, notes].map((path) => ({ path, explicit: false })));
    expect([...clashing].sort()).toEqual(['Invoice', 'invoice']);
  });

  it('60,000 files of one name in as many folders are grouped in linear time (was quadratic: ~35 s)', async () => {
    // Paths that do not exist: each is looked at once (unreadable: not a document), cheaply.
    const walked = Array.from({ length: 60_000 }, (_, i) => ({ path: join(dir, 'gone', `f${i}`, 'invoice.pdf'), explicit: false }));
    const started = performance.now();
    expect(await clashingNames(walked)).toEqual(new Set());
    expect(performance.now() - started).toBeLessThan(10_000);
  }, 120_000);
});
