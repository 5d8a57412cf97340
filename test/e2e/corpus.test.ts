/**
 * The shared corpus through the whole pipeline, once with each renderer (RENDERER=pdfium, the
 * default, and RENDERER=pdfjs): real Redis, real PDFium / pdf.js rendering, real HTTP to the
 * engine emulator. Every PDF comes out with every page, in order, each page's output made from
 * that page (the emulator echoes the image size and the text it was sent, which we compare with
 * the page as read here independently: sizes by pdf.js, text by the same engine through its
 * own plain API, without docbatch's line joining); the report names the engine of every page;
 * the encrypted and the corrupt files are rejected with their codes; the chat export keeps the
 * shown branch and nothing else.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PDFiumLibrary } from '@hyzyla/pdfium';
import { getDocument } from 'pdfjs-dist/legacy/build/pdf.mjs';
import { parseEcho, parsePages, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

const CORPUS = join(import.meta.dirname, '..', '..', '..', 'shared', 'corpus');
const PDF_DIR = join(CORPUS, 'pdf');
const present = existsSync(PDF_DIR);

interface PageTruth {
  text: string;
  width: number;
  height: number;
}

/** Page sizes (after /Rotate) and text, read with pdf.js directly. */
async function truth(path: string, password?: string): Promise<PageTruth[]> {
  const task = getDocument({ data: new Uint8Array(readFileSync(path)), ...(password ? { password } : {}), verbosity: 0 });
  try {
    const doc = await task.promise;
    const pages: PageTruth[] = [];
    for (let n = 1; n <= doc.numPages; n++) {
      const page = await doc.getPage(n);
      const viewport = page.getViewport({ scale: 1 });
      const content = await page.getTextContent();
      const text = content.items.map((i) => ('str' in i ? i.str : '')).join(' ');
      pages.push({ text, width: viewport.width, height: viewport.height });
    }
    return pages;
  } finally {
    await task.destroy();
  }
}

/** Each page's text as PDFium's own GetText gives it (the package's wrapper, not docbatch's code). */
async function pdfiumText(path: string, password?: string): Promise<string[]> {
  const library = await PDFiumLibrary.init();
  const doc = await library.loadDocument(new Uint8Array(readFileSync(path)), password);
  try {
    // PDFium marks end-of-line hyphens as U+0002 / U+FFFE; docbatch writes them as '-'.
    return [...doc.pages()].map((page) => page.getText().replace(/[\u0002\ufffe]/g, '-'));
  } finally {
    doc.destroy();
    library.destroy();
  }
}

/** Every word found in `text`, each after the one before. */
function inOrder(text: string, words: string[]): boolean {
  let at = 0;
  for (const word of words) {
    const found = text.indexOf(word, at);
    if (found < 0) return false;
    at = found + word.length;
  }
  return true;
}

/** Whitespace and control codes out: the two extractors differ only in where they put spaces. */
const squash = (s: string) => s.replace(/[\s\u0000-\u001f]+/g, '');

describe.skipIf(!present).each(['pdfium', 'pdfjs'] as const)('shared corpus through the pipeline, RENDERER=%s', (renderer) => {
  let p: Pipeline;
  const files = present ? readdirSync(PDF_DIR).filter((f) => f.endsWith('.pdf')).sort() : [];
  const rejectedFiles = new Set(['bug1020226.pdf', 'issue6010_1.pdf']);
  let outcomes: Awaited<ReturnType<Pipeline['enqueue']>>;

  beforeAll(async () => {
    p = await startPipeline({ file: `${import.meta.filename}-${renderer}`, config: { renderer } });
    outcomes = await p.enqueue([...files.map((f) => join(PDF_DIR, f)), join(CORPUS, 'chat', 'sample-conversations.json')]);
    const ids = outcomes.flatMap((o) => (o.runs ?? []).map((r) => r.docId));
    await p.wait(ids, 240_000);
  }, 300_000);

  afterAll(async () => {
    await p?.stop();
  });

  it('rejects the encrypted file without a password and the corrupt one, with their codes', () => {
    const byFile = new Map(outcomes.map((o) => [o.file.split('/').pop()!, o]));
    expect(byFile.get('issue6010_1.pdf')?.error?.code).toBe('PDF_ENCRYPTED');
    expect(byFile.get('bug1020226.pdf')?.error?.code).toBe('PDF_CORRUPT');
    expect(byFile.get('bug1020226.pdf')?.error?.describe()).toContain('bug1020226.pdf');
    for (const o of outcomes) if (!rejectedFiles.has(o.file.split('/').pop()!)) expect(o.error, o.file).toBeUndefined();
  });

  it.each(files.filter((f) => !rejectedFiles.has(f)))('%s: every page, in order, made from its own page', async (file) => {
    const name = file.replace(/\.pdf$/, '');
    const md = readFileSync(join(p.config.outDir, `${name}.md`), 'utf8');
    const pages = parsePages(md);
    const expected = await truth(join(PDF_DIR, file));
    if (renderer === 'pdfium') {
      const texts = await pdfiumText(join(PDF_DIR, file));
      expected.forEach((t, i) => (t.text = texts[i]!));
    }
    expect([...pages.keys()]).toEqual(expected.map((_, i) => i + 1));
    // Pages compared in full for small files; a spread sample for the 352-page book.
    const sample = expected.length > 40 ? expected.map((_, i) => i).filter((i) => i % 17 === 0 || i === expected.length - 1) : expected.map((_, i) => i);
    for (const i of sample) {
      const page = pages.get(i + 1)!;
      expect(page.failed, `${file} page ${i + 1}`).toBeNull();
      const echo = parseEcho(page.body);
      expect(echo.images, `${file} page ${i + 1}`).toHaveLength(1);
      const img = echo.images[0]!;
      expect(Math.max(img.width, img.height)).toBe(1288);
      // Same orientation and aspect ratio as the page (after its /Rotate), to the pixel.
      const t = expected[i]!;
      const scale = 1288 / Math.max(t.width, t.height);
      expect(Math.abs(img.width - t.width * scale)).toBeLessThanOrEqual(1.5);
      expect(Math.abs(img.height - t.height * scale)).toBeLessThanOrEqual(1.5);
      if (squash(t.text).length > 20 && echo.text) {
        // The text the engine got for this page is this page's text: its last words are in it.
        // PDFium's plain GetText also has the characters outside the crop box (printers' slugs,
        // margin line numbers), which docbatch leaves out: there the words come in order, with
        // those characters between them.
        if (renderer === 'pdfjs') expect(squash(t.text), `${file} page ${i + 1}`).toContain(squash(echo.text.last));
        else expect(inOrder(squash(t.text), echo.text.last.split(/\s+/).map(squash)), `${file} page ${i + 1}: ${echo.text.last}`).toBe(true);
      }
    }
    const report = JSON.parse(readFileSync(join(p.config.outDir, `${name}.report.json`), 'utf8'));
    expect(report).toMatchObject({ kind: 'pdf', units: expected.length, completed: expected.length, failed: [] });
    // Every page drawn by the chosen engine: no corpus file needs the fallback.
    expect(report.renderers).toEqual({ [renderer]: expected.length });
    expect(report.renderer_fallback_pages).toEqual([]);
    expect(report.completion_tokens).toBeGreaterThan(0);
  });

  it('opens the encrypted file with --password abc', async () => {
    const [o] = await p.enqueue([join(PDF_DIR, 'issue6010_1.pdf')], { password: 'abc' });
    expect(o!.error).toBeUndefined();
    await p.wait([o!.runs![0]!.docId]);
    const pages = parsePages(readFileSync(join(p.config.outDir, 'issue6010_1.md'), 'utf8'));
    expect(pages.size).toBe((await truth(join(PDF_DIR, 'issue6010_1.pdf'), 'abc')).length);
    for (const page of pages.values()) expect(page.failed).toBeNull();
  });

  it('says which password is wrong', async () => {
    const [o] = await p.enqueue([join(PDF_DIR, 'issue6010_1.pdf')], { password: 'nope' });
    expect(o!.error?.code).toBe('PDF_BAD_PASSWORD');
  });

  it('the chat export: every visible message of the shown branch, nothing abandoned or hidden', () => {
    const exported = JSON.parse(readFileSync(join(CORPUS, 'chat', 'sample-conversations.json'), 'utf8')) as Array<{
      id?: string;
      conversation_id?: string;
      current_node: string;
      mapping: Record<string, { parent: string | null; message: { id: string; content: { parts?: unknown[] }; metadata?: Record<string, unknown> } | null }>;
    }>;
    // On the shown branch and not hidden: the only messages allowed in the output.
    const branch = new Set<string>();
    // Of those, the ones with plain text parts: these must all be in the output.
    const shown = new Set<string>();
    const all = new Set<string>();
    for (const conv of exported) {
      for (const [id, node] of Object.entries(conv.mapping)) if (node.message) all.add(id);
      for (let id: string | null = conv.current_node; id; id = conv.mapping[id]?.parent ?? null) {
        const m = conv.mapping[id]?.message;
        if (!m || m.metadata?.is_visually_hidden_from_conversation) continue;
        branch.add(id);
        const text = (m.content.parts ?? []).filter((x) => typeof x === 'string').join('').trim();
        if (text) shown.add(id);
      }
    }
    const lines = readFileSync(join(p.config.outDir, 'sample-conversations.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const seen = new Map<string, number>();
    for (const line of lines) {
      expect(line.summary, JSON.stringify(line.error)).toEqual(expect.any(String));
      expect(line).toMatchObject({ conversation_id: expect.any(String), chunk: expect.any(Number), chunks: expect.any(Number), usage: { prompt_tokens: expect.any(Number), completion_tokens: expect.any(Number) } });
      for (const id of line.message_ids as string[]) seen.set(id, (seen.get(id) ?? 0) + 1);
    }
    for (const id of shown) expect(seen.get(id), `visible message ${id}`).toBeGreaterThanOrEqual(1);
    for (const id of seen.keys()) expect(branch.has(id), `message ${id} is not on the shown branch`).toBe(true);
    // There are abandoned or hidden messages in the sample, so the check above is not vacuous.
    expect(all.size).toBeGreaterThan(branch.size);
  });
});
