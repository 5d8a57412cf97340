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
});
