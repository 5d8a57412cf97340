/**
 * Page images are written into the request body from their parts (src/engine/data-url.ts): the
 * bytes on the wire must be exactly what JSON.stringify of the whole URL gives, whatever text
 * surrounds them.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DataUrl, jsonBody } from '../../src/engine/data-url.ts';

describe('jsonBody', () => {
  it('writes the same JSON as JSON.stringify of the joined URLs, with text that needs escaping around them', () => {
    const a = randomBytes(300_001);
    const b = randomBytes(17);
    const text = 'quote " backslash \\ newline \n tab \t nul \u0000 ünïcödé 漢字 emoji 🧪 and a lone surrogate \ud800 @docbatch-image-0@';
    const body = {
      model: 'm',
      messages: [
        { role: 'system', content: text },
        { role: 'user', content: [{ type: 'text', text }, { type: 'image_url', image_url: { url: DataUrl.of('image/png', a) } }, { type: 'image_url', image_url: { url: DataUrl.of('image/jpeg', b), detail: 'high' } }] },
      ],
      max_tokens: 5,
    };
    const out = jsonBody(body);
    expect(Buffer.isBuffer(out)).toBe(true);
    const expected = JSON.stringify({
      ...body,
      messages: [body.messages[0], { role: 'user', content: [{ type: 'text', text }, { type: 'image_url', image_url: { url: `data:image/png;base64,${a.toString('base64')}` } }, { type: 'image_url', image_url: { url: `data:image/jpeg;base64,${b.toString('base64')}`, detail: 'high' } }] }],
    });
    expect((out as Buffer).equals(Buffer.from(expected, 'utf8'))).toBe(true);
    // toJSON: any other serialisation sees the whole URL.
    expect(JSON.stringify(DataUrl.of('image/png', b))).toBe(JSON.stringify(`data:image/png;base64,${b.toString('base64')}`));
  });

  it('a body without images is plain JSON text', () => {
    expect(jsonBody({ a: [1, 'x'] })).toBe('{"a":[1,"x"]}');
  });

  it('refuses a media type that would need escaping', () => {
    expect(() => DataUrl.of('image/png"', Buffer.from('x'))).toThrow(/media type/);
  });
});
