import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.ts';
import { inspectPdf, PdfInspector } from '../../src/ingest/pdf.ts';
import { buildPdf, childPids, compressedTitlePdf, corpusFile, formBombPdf, hugeImagePdf, pagesPdf, pageTreeBombPdf, slowPage, stream, tempDir, textPage } from '../render/fixtures.ts';

/** Page counts from the corpus README; bug1020226.pdf and issue6010_1.pdf are tested apart. */
const PAGE_COUNTS: Record<string, number> = {
  'tracemonkey.pdf': 14,
  'TAMReview.pdf': 23,
  'freeculture.pdf': 352,
  'issue5481.pdf': 3,
  'images.pdf': 1,
  'cmykjpeg.pdf': 1,
  'issue11922_reduced.pdf': 1,
  'xfa_filled_imm1344e.pdf': 1,
  'ThuluthFeatures.pdf': 1,
  'alphatrans.pdf': 1,
  'asciihexdecode.pdf': 1,
  'issue9105_reduced.pdf': 1,
  'empty.pdf': 1,
  'rotation.pdf': 2,
  'sizes.pdf': 3,
};

const tmp = tempDir('inspect');
const inspector = new PdfInspector();

async function rejection(promise: Promise<unknown>): Promise<InputError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
    return err as InputError;
  }
  throw new Error('expected the inspection to be rejected');
}

afterAll(async () => {
  await inspector.close();
  tmp.cleanup();
});

describe('inspecting the corpus', () => {
  it.each(Object.entries(PAGE_COUNTS))('%s has %i pages', async (name, pages) => {
    const info = await inspector.inspect(corpusFile(name), { file: name });
    expect(info.pages).toBe(pages);
    expect(info.encrypted).toBe(false);
    expect(info.pageSizes).toHaveLength(pages);
    // PDFium reads every file it reads cleanly; issue9105_reduced.pdf's cross-reference table
    // is broken (PDFium rebuilds it), so pdf.js gives that verdict.
    expect(info.reader).toBe(name === 'issue9105_reduced.pdf' ? 'pdfjs' : 'pdfium');
  });

  it('lists each page size of a mixed-size file, and the rotated page as displayed', async () => {
    const sizes = await inspector.inspect(corpusFile('sizes.pdf'), { file: 'sizes.pdf' });
    expect(sizes.pageSizes).toEqual([
      { widthPt: 612, heightPt: 792 },
      { widthPt: 649, heightPt: 323 },
      { widthPt: 792, heightPt: 612 },
    ]);
    const rotation = await inspector.inspect(corpusFile('rotation.pdf'), { file: 'rotation.pdf' });
    expect(rotation.pageSizes).toEqual([
      { widthPt: 612, heightPt: 792 },
      { widthPt: 792, heightPt: 612 },
    ]);
  });

  it('flags the XFA form', async () => {
    expect((await inspector.inspect(corpusFile('xfa_filled_imm1344e.pdf'), { file: 'x' })).xfa).toBe(true);
    expect((await inspector.inspect(corpusFile('sizes.pdf'), { file: 's' })).xfa).toBe(false);
  });

  it('reads the title from XMP metadata when the Info dictionary has none, with either reader', async () => {
    const xmp =
      '<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">' +
      '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title><rdf:Alt><rdf:li xml:lang="x-default"> Caf\xc3\xa9 &amp; Co &#x2014; 2026 </rdf:li></rdf:Alt></dc:title>' +
      '</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>';
    const objects = [
      '<< /Type /Catalog /Pages 2 0 R /Metadata 4 0 R >>',
      '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
      '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 300] >>',
      stream('/Type /Metadata /Subtype /XML', xmp, true),
    ];
    const pdf = buildPdf(objects);
    const clean = await inspector.inspect(tmp.write('xmp.pdf', pdf), { file: 'xmp.pdf' });
    expect(clean).toMatchObject({ reader: 'pdfium', title: 'Caf\u00e9 & Co \u2014 2026' });
    // A comment after the header shifts every object from its xref offset: PDFium rebuilds the
    // table, so pdf.js answers.
    const header = pdf.indexOf('\n') + 1;
    const shiftedPdf = Buffer.concat([pdf.subarray(0, header), Buffer.from('% shifted\n'), pdf.subarray(header)]);
    const shifted = await inspector.inspect(tmp.write('xmp-shifted.pdf', shiftedPdf), { file: 'xmp-shifted.pdf' });
    expect(shifted).toMatchObject({ reader: 'pdfjs', title: 'Caf\u00e9 & Co \u2014 2026' });
  });

  it('reads the title from the Info dictionary, trimmed, or gives null', async () => {
    expect((await inspector.inspect(corpusFile('freeculture.pdf'), { file: 'f' })).title).toBe('Free Culture');
    expect((await inspector.inspect(corpusFile('TAMReview.pdf'), { file: 't' })).title).toMatch(/^Overview of the Technology Acceptance Model.*Directions$/);
    expect((await inspector.inspect(corpusFile('tracemonkey.pdf'), { file: 't' })).title).toBeNull();
    // Only empty XMP titles (three packets of <rdf:li xml:lang="x-default"/>).
    expect((await inspector.inspect(corpusFile('issue5481.pdf'), { file: 'i' })).title).toBeNull();
  });

  it('rejects bug1020226.pdf as PDF_CORRUPT with pdf.js reason', async () => {
    const err = await rejection(inspector.inspect(corpusFile('bug1020226.pdf'), { file: 'bug1020226.pdf' }));
    expect(err.code).toBe('PDF_CORRUPT');
    expect(err.place?.file).toBe('bug1020226.pdf');
    expect(err.message).toMatch(/Invalid PDF structure/);
  });
});

describe('encrypted PDFs (issue6010_1.pdf, user password "abc")', () => {
  const file = corpusFile('issue6010_1.pdf');

  it('opens with the right password', async () => {
    const info = await inspectPdf(file, { file: 'issue6010_1.pdf', password: 'abc' });
    expect(info).toMatchObject({ pages: 1, encrypted: true });
  });

  it('is PDF_ENCRYPTED without a password', async () => {
    const err = await rejection(inspector.inspect(file, { file: 'issue6010_1.pdf' }));
    expect(err.code).toBe('PDF_ENCRYPTED');
    expect(err.describe()).toMatch(/^issue6010_1\.pdf: PDF_ENCRYPTED: /);
  });

  it('is PDF_BAD_PASSWORD with a wrong one', async () => {
    const err = await rejection(inspector.inspect(file, { file: 'issue6010_1.pdf', password: 'abd' }));
    expect(err.code).toBe('PDF_BAD_PASSWORD');
  });
});

describe('bad inputs', () => {
  it('EMPTY_FILE for zero bytes', async () => {
    const err = await rejection(inspector.inspect(tmp.write('empty.pdf', ''), { file: 'empty.pdf' }));
    expect(err.code).toBe('EMPTY_FILE');
  });

  it('NOT_PDF for a PNG named .pdf and for a text file, from the bytes', async () => {
    const png = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
    const pngErr = await rejection(inspector.inspect(tmp.write('picture.pdf', png), { file: 'picture.pdf' }));
    expect(pngErr.code).toBe('NOT_PDF');
    expect(pngErr.message).toMatch(/0x89504e47/);
    const textErr = await rejection(inspector.inspect(tmp.write('notes.pdf', 'just some notes\n'), { file: 'notes.pdf' }));
    expect(textErr.code).toBe('NOT_PDF');
  });

  it('accepts a header after leading junk, as pdf.js does', async () => {
    const pdf = pagesPdf([textPage(300, 300, ['junk first'])]);
    const info = await inspector.inspect(tmp.write('junk.pdf', Buffer.concat([Buffer.from('garbage\n'), pdf])), { file: 'junk.pdf' });
    expect(info.pages).toBe(1);
    // PDFium counts offsets from the header too.
    expect(info.reader).toBe('pdfium');
  });

  it('PDF_CORRUPT for a real PDF cut in half', async () => {
    const whole = readFileSync(corpusFile('tracemonkey.pdf'));
    const path = tmp.write('half.pdf', whole.subarray(0, Math.floor(whole.length / 2)));
    const err = await rejection(inspector.inspect(path, { file: 'half.pdf' }));
    expect(err.code).toBe('PDF_CORRUPT');
  });

  it('PDF_CORRUPT when a page of the page tree is missing', async () => {
    const pdf = pagesPdf([textPage(300, 300, ['one']), textPage(300, 300, ['two'])]);
    // Point the second kid at an object that does not exist.
    const broken = Buffer.from(pdf.toString('latin1').replace('/Kids [4 0 R 6 0 R]', '/Kids [4 0 R 99 0 R]'), 'latin1');
    const err = await rejection(inspector.inspect(tmp.write('missing-page.pdf', broken), { file: 'missing-page.pdf' }));
    expect(err.code).toBe('PDF_CORRUPT');
  });

  it('PDF_NO_PAGES for a PDF with an empty page tree', async () => {
    const err = await rejection(inspector.inspect(tmp.write('nopages.pdf', pagesPdf([])), { file: 'nopages.pdf' }));
    expect(err.code).toBe('PDF_NO_PAGES');
  });

  it('FILE_UNREADABLE for a missing file', async () => {
    const err = await rejection(inspector.inspect(`${tmp.dir}/nope.pdf`, { file: 'nope.pdf' }));
    expect(err.code).toBe('FILE_UNREADABLE');
  });

  it('reads hostile pages without parsing their content (fast, no crash)', async () => {
    for (const [name, bytes] of [
      ['slow.pdf', pagesPdf([slowPage(50_000)])],
      ['bomb.pdf', formBombPdf(9, 10)],
      ['huge-image.pdf', hugeImagePdf(20_000)],
      ['big-page.pdf', pagesPdf([textPage(14_400, 14_400, ['big'])])],
    ] as const) {
      const started = performance.now();
      const info = await inspector.inspect(tmp.write(name, bytes), { file: name, timeoutMs: 10_000 });
      expect(info.pages).toBe(1);
      expect(performance.now() - started).toBeLessThan(10_000);
    }
    const big = await inspector.inspect(`${tmp.dir}/big-page.pdf`, { file: 'big-page.pdf' });
    expect(big.pageSizes).toEqual([{ widthPt: 14_400, heightPt: 14_400 }]);
  });

  it('refuses a page-tree bomb at once (PDF_TOO_MANY_PAGES, the count and size named) with either reader, then reads the next file', async () => {
    // 32^4 = 1,048,576 pages in ~1.4 KB: PDFium counts nothing at or above its own cap (1,048,575)
    // and pdf.js decides; it read page after page for ~14 s and ran out of heap (PDF_CORRUPT after
    // up to 30 s). At 1,000,000 PDFium decides; it passed the file as a million pages.
    for (const [name, bytes] of [
      ['pdfjs-bomb.pdf', pageTreeBombPdf(4, 32)],
      ['pdfium-bomb.pdf', pageTreeBombPdf(4, 32, 1_000_000)],
    ] as const) {
      const started = performance.now();
      const err = await rejection(inspector.inspect(tmp.write(name, bytes), { file: name }));
      expect(err.code).toBe('PDF_TOO_MANY_PAGES');
      expect(err.place).toEqual({ file: name });
      expect(err.message).toContain(`claims ${name === 'pdfjs-bomb.pdf' ? 1_048_576 : 1_000_000} pages in ${bytes.length} bytes, more than INPUT_MAX_PAGES (100000)`);
      expect(performance.now() - started).toBeLessThan(5000);
    }
    expect((await inspector.inspect(corpusFile('sizes.pdf'), { file: 'sizes.pdf' })).pages).toBe(3);
  });

  it('a PDF whose bytes open dc:title 200,000 times is read in moments (the title scan was quadratic: PDF_CORRUPT at the time limit)', async () => {
    const junk = stream('/Type /XObject /Subtype /Form /BBox [0 0 1 1]', Buffer.from(`${'<dc:title>'.repeat(200_000)}</dc:title>`), true);
    const path = tmp.write('title-scan.pdf', pagesPdf([{ width: 300, height: 300, content: '' }], [junk]));
    const info = await inspector.inspect(path, { file: 'title-scan.pdf', timeoutMs: 10_000 });
    expect(info).toMatchObject({ pages: 1, title: null, reader: 'pdfium' });
  });

  it('cuts a title past 1024 characters (a 20 KB file gave a 20,000,000-character title, into every record made of it)', async () => {
    const bytes = compressedTitlePdf(20_000_000);
    expect(bytes.length).toBeLessThan(40_000);
    const info = await inspector.inspect(tmp.write('long-title.pdf', bytes), { file: 'long-title.pdf' });
    expect(info.title).toBe(`${'A'.repeat(1023)}…`);
    expect((await inspector.inspect(tmp.write('title-1024.pdf', compressedTitlePdf(1024)), { file: 't' })).title).toBe('A'.repeat(1024));
    expect((await inspector.inspect(tmp.write('title-1025.pdf', compressedTitlePdf(1025)), { file: 't' })).title).toBe(`${'A'.repeat(1023)}…`);
  });

  it('keeps to maxPages: a document at the bound is read, one page more is refused', async () => {
    const path = tmp.write('three.pdf', pageTreeBombPdf(1, 3));
    expect((await inspector.inspect(path, { file: 'three.pdf', maxPages: 3 })).pages).toBe(3);
    const err = await rejection(inspector.inspect(path, { file: 'three.pdf', maxPages: 2 }));
    expect(err.code).toBe('PDF_TOO_MANY_PAGES');
    expect(err.message).toContain('claims 3 pages');
  });

  it('kills an inspection above its memory limit (PDF_CORRUPT) and carries on with the next file', async () => {
    // The child alone (Node, PDFium) is resident above 1 MB: an inspection still running at
    // the first check (20,000 page dictionaries take longer than 100 ms) is killed; a quick one
    // answers, and its child is let go after it.
    const small = new PdfInspector({ maxRssMb: 1 });
    try {
      const many = pagesPdf(Array.from({ length: 20_000 }, () => ({ width: 300, height: 300, content: '' })));
      const err = await rejection(small.inspect(tmp.write('many.pdf', many), { file: 'many.pdf' }));
      expect(err.code).toBe('PDF_CORRUPT');
      expect(err.message).toMatch(/MB of memory, above the inspector's \d+ MB for a file of this size/);
      const before = childPids('inspect');
      expect((await small.inspect(corpusFile('rotation.pdf'), { file: 'rotation.pdf' })).pages).toBe(2);
      const grown = childPids('inspect').filter((pid) => !before.includes(pid));
      expect(grown).toHaveLength(1);
      // The next file, sent at once, goes to a fresh child, not to the one leaving.
      expect((await small.inspect(corpusFile('sizes.pdf'), { file: 'sizes.pdf' })).pages).toBe(3);
      await expect.poll(() => childPids('inspect').includes(grown[0]!), { timeout: 5000 }).toBe(false);
    } finally {
      await small.close();
    }
    expect((await inspector.inspect(corpusFile('sizes.pdf'), { file: 'sizes.pdf' })).pages).toBe(3);
  });

  it('kills an inspection over its time limit (PDF_CORRUPT) and carries on with the next file', async () => {
    const err = await rejection(inspector.inspect(corpusFile('freeculture.pdf'), { file: 'freeculture.pdf', timeoutMs: 1 }));
    expect(err.code).toBe('PDF_CORRUPT');
    expect(err.message).toMatch(/within 1 ms/);
    expect((await inspector.inspect(corpusFile('sizes.pdf'), { file: 'sizes.pdf' })).pages).toBe(3);
  });

  it('stops at an abort signal', async () => {
    const controller = new AbortController();
    const pending = inspector.inspect(corpusFile('freeculture.pdf'), { file: 'freeculture.pdf', signal: controller.signal });
    setTimeout(() => controller.abort(new Error('shutdown')), 5);
    await expect(pending).rejects.toMatchObject({ code: 'ABORTED' });
    expect((await inspector.inspect(corpusFile('rotation.pdf'), { file: 'rotation.pdf' })).pages).toBe(2);
  });
});

describe('inspectPdf', () => {
  it('inspects one file in its own child and leaves no process behind', async () => {
    const before = childPids('inspect');
    const info = await inspectPdf(corpusFile('tracemonkey.pdf'), { file: 'tracemonkey.pdf' });
    expect(info.pages).toBe(14);
    expect(childPids('inspect')).toEqual(before);
  });
});
