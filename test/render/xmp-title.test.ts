/**
 * xmpTitle: dc:title from a metadata stream's uncompressed XMP (pure; the inspection test runs
 * it inside the inspection child on real files).
 */
import { describe, expect, it } from 'vitest';
import { xmpTitle } from '../../src/render/xmp-title.ts';

const packet = (title: string) =>
  `<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">${title}<dc:creator><rdf:Seq><rdf:li>Jane Author</rdf:li></rdf:Seq></dc:creator></rdf:Description></rdf:RDF></x:xmpmeta>`;
const metadataStream = (xmp: string, n = 9) => `${n} 0 obj\n<< /Type /Metadata /Subtype /XML /Length ${xmp.length} >>\nstream\n${xmp}\nendstream\nendobj\n`;
const pdf = (...objects: string[]) => Buffer.from(`%PDF-1.7\n${objects.join('')}%%EOF\n`, 'utf8');
const alt = (text: string) => `<dc:title><rdf:Alt><rdf:li xml:lang="x-default">${text}</rdf:li></rdf:Alt></dc:title>`;

describe('xmpTitle', () => {
  it('reads the first non-empty title of a metadata stream, entities and UTF-8 decoded, trimmed', () => {
    expect(xmpTitle(pdf(metadataStream(packet(alt(' Caf\u00e9 &amp; Co &#x2014; 2026 ')))))).toBe('Caf\u00e9 & Co \u2014 2026');
    const empty = '<dc:title><rdf:Alt><rdf:li xml:lang="x-default"/></rdf:Alt></dc:title>';
    expect(xmpTitle(pdf(metadataStream(packet(empty), 5), metadataStream(packet(alt('Second')), 6)))).toBe('Second');
  });

  it('takes a plain text title without rdf:Alt', () => {
    expect(xmpTitle(pdf(metadataStream(packet('<dc:title>Plain</dc:title>'))))).toBe('Plain');
  });

  it('never runs past an empty <dc:title/> into the next element', () => {
    expect(xmpTitle(pdf(metadataStream(packet('<dc:title/>'))))).toBe('');
  });

  it('ignores XMP inside an image stream and outside any stream', () => {
    const image = `7 0 obj\n<< /Type /XObject /Subtype /Image /Filter /DCTDecode /Length 100 >>\nstream\n\xff\xd8${packet(alt('Sunset stock photo 123'))}\nendstream\nendobj\n`;
    expect(xmpTitle(pdf(image))).toBe('');
    expect(xmpTitle(pdf(`% ${packet(alt('In a comment'))}\n`))).toBe('');
    expect(xmpTitle(pdf(image, metadataStream(packet(alt('The document')))))).toBe('The document');
  });

  it('reads hostile bytes in linear time: dc:title opened 400,000 times, or short ones outside any stream', () => {
    // Both were quadratic: each candidate searched to the end of the file for its close, or back
    // to its start for a stream keyword (0.8 MB took 13 s; this 4 MB, minutes).
    const opens = Buffer.concat([Buffer.from('<dc:title>'.repeat(400_000)), Buffer.from(`</dc:title>${metadataStream(packet(alt('After all that')))}`)]);
    const pairs = Buffer.from(`${'<dc:title>x</dc:title>'.repeat(200_000)}${metadataStream(packet(alt('Still found')))}`);
    for (const [bytes, title] of [[opens, 'After all that'], [pairs, 'Still found']] as const) {
      const started = performance.now();
      expect(xmpTitle(bytes)).toBe(title);
      expect(performance.now() - started).toBeLessThan(3000);
    }
  }, 600_000);

  it('an element longer than 8 KiB is not a title; one just within is', () => {
    const within = `<dc:title>${'a'.repeat(8192 - '<dc:title>'.length)}</dc:title>`;
    expect(xmpTitle(pdf(metadataStream(packet(within))))).toBe('a'.repeat(8192 - '<dc:title>'.length));
    const over = `<dc:title>${'a'.repeat(8193 - '<dc:title>'.length)}</dc:title>`;
    expect(xmpTitle(pdf(metadataStream(packet(over))))).toBe('');
  });
});
