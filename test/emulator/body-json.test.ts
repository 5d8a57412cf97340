/**
 * Request bodies whose image URLs are read from the body's bytes (src/emulator/body-json.ts):
 * the same values as JSON.parse everywhere else, the same errors, and over real HTTP the same
 * image (size and sha256 of its bytes) as the client sent, in every spelling a client may use.
 */
import { createHash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BodyDataUrl, parseJsonBody } from '../../src/emulator/body-json.ts';
import { startEmulator, type Emulator } from '../../src/emulator/index.ts';
import { call, dataUrl, newAgent } from './helpers.ts';

const sha16 = (b: Buffer): string => createHash('sha256').update(b).digest('hex').slice(0, 16);

/** A PNG of noise: its base64 is far past the size below which URLs are parsed the plain way. */
async function noisyPng(width: number, height: number): Promise<Buffer> {
  return sharp(randomBytes(width * height * 3), { raw: { width, height, channels: 3 } }).png().toBuffer();
}

let png: Buffer;
beforeAll(async () => {
  png = await noisyPng(200, 150);
});

describe('parseJsonBody', () => {
  it('cuts a url value out as a BodyDataUrl and parses the rest as JSON.parse does', () => {
    const url = dataUrl(png);
    const body = { model: 'm', n: [1, 2.5, null, true], messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url } }, { type: 'text', text: 'é "q" \\ \u2028' }] }] };
    const parsed = parseJsonBody(Buffer.from(JSON.stringify(body))) as typeof body;
    const cut = parsed.messages[0]!.content[0]!.image_url!.url as unknown;
    expect(cut).toBeInstanceOf(BodyDataUrl);
    expect(String(cut)).toBe(url);
    expect((cut as BodyDataUrl).meta).toBe('image/png;base64');
    expect((cut as BodyDataUrl).decodeBase64().equals(png)).toBe(true);
    expect({ ...parsed, messages: [{ ...parsed.messages[0]!, content: [{ type: 'image_url', image_url: { url } }, parsed.messages[0]!.content[1]] }] }).toEqual(body);
  });

  it('leaves alone a data URL in text, under another key, escaped, or short', () => {
    const url = dataUrl(png);
    const body = {
      text: `"url": "${url}"`,
      other: url,
      escaped: 'x',
      short: { url: 'data:image/png;base64,AAAA' },
    };
    const json = JSON.stringify(body).replace('"escaped":"x"', `"url":${JSON.stringify(url).replace(/\//g, '\\/')}`);
    const parsed = parseJsonBody(Buffer.from(json)) as Record<string, unknown>;
    expect(parsed.text).toBe(body.text);
    expect(parsed.other).toBe(url);
    expect(parsed.url).toBe(url);
    expect(parsed.short).toEqual({ url: 'data:image/png;base64,AAAA' });
  });

  it('a body that is not JSON fails with the error JSON.parse gives for it', () => {
    const bad = Buffer.from(`{"messages":[{"content":[{"image_url":{"url":"${dataUrl(png)}"}}]}],}`);
    expect(() => parseJsonBody(bad)).toThrow(SyntaxError);
    let plain = '';
    try {
      JSON.parse(bad.toString('utf8'));
    } catch (err) {
      plain = (err as Error).message;
    }
    expect(() => parseJsonBody(bad)).toThrow(plain);
  });

  it('a url holding a raw control character (not JSON) fails as JSON.parse fails', () => {
    const b64 = png.toString('base64');
    for (const raw of ['\n', '\r', '\t', '\u0001', '\u001f']) {
      const bad = Buffer.from(`{"url":"data:image/png;base64,${b64.slice(0, 5000)}${raw}${b64.slice(5000)}"}`);
      expect(() => JSON.parse(bad.toString('utf8'))).toThrow(SyntaxError);
      expect(() => parseJsonBody(bad), JSON.stringify(raw)).toThrow(SyntaxError);
    }
  });
});

describe('over HTTP', () => {
  const agent = newAgent();
  let emu: Emulator;
  beforeAll(async () => {
    emu = await startEmulator({ speed: 1000, outputTokensMin: 40, outputTokensMax: 60 });
  });
  afterAll(async () => {
    await emu.close();
    await agent.close();
  });

  const ask = (imagePart: unknown) =>
    call(agent, `${emu.url}/v1/chat/completions`, {
      body: `{"model":"docbatch/emulated-vl","max_tokens":60,"messages":[{"role":"user","content":[${JSON.stringify(imagePart).replace('"PLACE"', JSON.stringify(dataUrl(png)))},{"type":"text","text":"read it"}]}]}`,
    });

  it('sees the image the client sent, however the URL is spelled', async () => {
    const spellings = [
      { type: 'image_url', image_url: { url: 'PLACE' } },
      { type: 'image_url', image_url: 'PLACE' },
      { type: 'image_url', image_url: { url: 'PLACE', detail: 'high' } },
    ];
    for (const part of spellings) {
      const r = await ask(part);
      expect(r.status, r.text).toBe(200);
      expect(r.json.choices[0].message.content).toContain(`image 1: 200x150 png sha256=${sha16(png)}`);
    }
    const spaced = await call(agent, `${emu.url}/v1/chat/completions`, {
      body: `{"model":"docbatch/emulated-vl","max_tokens":60,"messages":[{"role":"user","content":[{"type":"image_url","image_url":{ "url" :\n "${dataUrl(png)}" }}]}]}`,
    });
    expect(spaced.json.choices[0].message.content).toContain(`sha256=${sha16(png)}`);
    const escaped = await call(agent, `${emu.url}/v1/chat/completions`, {
      body: `{"model":"docbatch/emulated-vl","max_tokens":60,"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":${JSON.stringify(dataUrl(png)).replace(/\//g, '\\/')}}}]}]}`,
    });
    expect(escaped.json.choices[0].message.content).toContain(`sha256=${sha16(png)}`);
  });

  const sizeOf = async (bytes: Buffer, mime: string) => {
    const r = await call(agent, `${emu.url}/v1/chat/completions`, {
      body: { model: 'docbatch/emulated-vl', max_tokens: 60, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: dataUrl(bytes, mime) } }] }] },
    });
    return { status: r.status, text: r.status === 200 ? (r.json.choices[0].message.content as string) : r.text };
  };

  it('reads PNG and JPEG sizes as sharp does, with metadata before the frame however long', async () => {
    const raw = randomBytes(640 * 480 * 3);
    const jpeg = await sharp(raw, { raw: { width: 640, height: 480, channels: 3 } }).jpeg().toBuffer();
    expect((await sizeOf(jpeg, 'image/jpeg')).text).toContain(`image 1: 640x480 jpeg sha256=${sha16(jpeg)}`);
    // An APP segment of 60 kB before the frame header: past the first decoded slice.
    const app = Buffer.alloc(4 + 60_000);
    app.writeUInt16BE(0xffe1, 0);
    app.writeUInt16BE(60_002, 2);
    const late = Buffer.concat([jpeg.subarray(0, 2), app, jpeg.subarray(2)]);
    expect((await sizeOf(late, 'image/jpeg')).text).toContain(`image 1: 640x480 jpeg sha256=${sha16(late)}`);
    const big = await noisyPng(1288, 996);
    expect((await sizeOf(big, 'image/png')).text).toContain(`image 1: 1288x996 png sha256=${sha16(big)}`);
    const webp = await sharp(raw, { raw: { width: 640, height: 480, channels: 3 } }).webp().toBuffer();
    expect((await sizeOf(webp, 'image/webp')).text).toContain(`image 1: 640x480 webp sha256=${sha16(webp)}`);
  });

  it('a PNG whose header is damaged is refused as sharp refuses it', async () => {
    const big = await noisyPng(300, 200);
    const damaged = Buffer.from(big);
    damaged[17] = damaged[17]! ^ 0xff; // the width, under the header's CRC
    const r = await sizeOf(damaged, 'image/png');
    expect(r.status, r.text).toBe(400);
    expect(r.text).toContain('Failed to load image');
  });

  it('a PNG or JPEG whose header sharp refuses is refused, though its size can be read', async () => {
    const big = await noisyPng(300, 200);
    /** The PNG with IHDR byte `at` set to `value`, its CRC made right again. */
    const ihdr = (at: number, value: number) => {
      const b = Buffer.from(big);
      b[at] = value;
      b.writeUInt32BE(crc32(b.subarray(12, 29)), 29);
      return b;
    };
    const raw = randomBytes(300 * 200 * 3);
    const jpeg = await sharp(raw, { raw: { width: 300, height: 200, channels: 3 } }).jpeg().toBuffer();
    let sof = 2;
    while (!(jpeg[sof + 1]! >= 0xc0 && jpeg[sof + 1]! <= 0xc2)) sof += 2 + jpeg.readUInt16BE(sof + 2);
    const jpegWith = (at: number, value: number) => {
      const b = Buffer.from(jpeg);
      b[sof + at] = value;
      return b;
    };
    const app = (n: number) => {
      const b = Buffer.alloc(4 + n);
      b.writeUInt16BE(0xffe1, 0);
      b.writeUInt16BE(n + 2, 2);
      return b;
    };
    /** A tEXt chunk of n bytes, its CRC right. */
    const textChunk = (n: number) => {
      const b = Buffer.alloc(12 + n, 0x61);
      b.writeUInt32BE(n, 0);
      b.write('tEXt', 4, 'latin1');
      b[13] = 0; // keyword "a"
      b.writeUInt32BE(crc32(b.subarray(4, 8 + n)), 8 + n);
      return b;
    };
    const cases: Array<[string, Buffer, string]> = [
      ['bit depth 3', ihdr(24, 3), 'image/png'],
      ['colour type 5', ihdr(25, 5), 'image/png'],
      ['compression 1', ihdr(26, 1), 'image/png'],
      ['filter 1', ihdr(27, 1), 'image/png'],
      ['interlace 2', ihdr(28, 2), 'image/png'],
      ['hierarchical SOF5', jpegWith(1, 0xc5), 'image/jpeg'],
      ['precision 7', jpegWith(4, 7), 'image/jpeg'],
      ['no components', jpegWith(9, 0), 'image/jpeg'],
      // An APP segment ahead makes it long enough to be read from the body's bytes.
      ['cut after the frame header', Buffer.concat([jpeg.subarray(0, 2), app(8000), jpeg.subarray(2, sof + 2 + jpeg.readUInt16BE(sof + 2) + 4)]), 'image/jpeg'],
      ['PNG cut after its header', Buffer.concat([big.subarray(0, 33), textChunk(8000)]), 'image/png'],
    ];
    for (const [name, bytes, mime] of cases) {
      let sharpSays = 'ok';
      await sharp(bytes, { limitInputPixels: 2 ** 28 }).metadata().catch((err: Error) => (sharpSays = err.message));
      expect(sharpSays, name).not.toBe('ok');
      const r = await sizeOf(bytes, mime);
      expect(r.status, `${name}: ${r.text}`).toBe(400);
      expect(r.text, name).toContain('Failed to load image');
    }
  });

  it('base64 with a character it skips, or padding inside, gives the bytes a whole decode gives', async () => {
    const big = await noisyPng(300, 200);
    const b64 = big.toString('base64');
    for (const odd of [`${b64.slice(0, 70_000)}.${b64.slice(70_000)}`, `${b64.slice(0, 100)} ${b64.slice(100)}`, `${b64.slice(0, 100)}=${b64.slice(100)}`]) {
      const whole = Buffer.from(odd, 'base64');
      const r = await call(agent, `${emu.url}/v1/chat/completions`, {
        body: `{"model":"docbatch/emulated-vl","max_tokens":60,"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,${odd}"}}]}]}`,
      });
      if (whole.equals(big)) {
        expect(r.status, r.text).toBe(200);
        expect(r.json.choices[0].message.content).toContain(`image 1: 300x200 png sha256=${sha16(big)}`);
      } else {
        // What sharp makes of the cut-short bytes, as before the body was read from its bytes.
        const meta = await sharp(whole).metadata().catch(() => null);
        if (meta) expect(r.json.choices[0].message.content).toContain(`sha256=${sha16(whole)}`);
        else expect(r.status, r.text).toBe(400);
      }
    }
  });

  it('a broken image and a URL that is not base64 are refused as before', async () => {
    const broken = await call(agent, `${emu.url}/v1/chat/completions`, {
      body: { model: 'docbatch/emulated-vl', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: `data:image/png;base64,${randomBytes(6000).toString('base64')}` } }] }] },
    });
    expect(broken.status).toBe(400);
    expect(broken.text).toContain('Failed to load image');
    const plain = await call(agent, `${emu.url}/v1/chat/completions`, {
      body: { model: 'docbatch/emulated-vl', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: `data:image/png,${'A'.repeat(6000)}` } }] }] },
    });
    expect(plain.status).toBe(501);
  });
});
