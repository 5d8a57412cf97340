/**
 * More inputs (issue 9): `docbatch enqueue DIR --wait` on a folder with PDFs in subfolders, scans
 * as PNG, JPEG (EXIF orientation 6), a three-frame TIFF and WebP, and a text note. Every document
 * is written, the note is named as skipped, the command exits 0, and each scan reaches the engine
 * as itself: the emulator echoes the size and sha256 of every image it decoded, and they equal
 * what sharp makes of the file (turned upright, longest side at most IMAGE_SIZE, PNG), frame by
 * frame for the TIFF. The JPEG's size is checked against its known upright shape too.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp, { type Sharp } from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { runCli } from '../helpers/cli.ts';
import { parsePages, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

const SIZE = 640;

/** A picture with content: a gradient and a coloured block, so frames and files differ. */
function picture(width: number, height: number, seed: number): Sharp {
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      const block = x < width / 3 && y < height / 4;
      data[i] = block ? 200 : (x * 255) / width;
      data[i + 1] = block ? (seed * 60) % 256 : (y * 255) / height;
      data[i + 2] = (seed * 90 + x + y) % 256;
    }
  }
  return sharp(data, { raw: { width, height, channels: 3 } });
}

/** What the worker should send for frame `page` of an image file: upright, fitted inside SIZE, PNG. */
async function expected(path: string, page = 1): Promise<{ width: number; height: number; sha: string }> {
  const { data, info } = await sharp(path, { page: page - 1 })
    .rotate()
    .resize({ width: SIZE, height: SIZE, fit: 'inside', withoutEnlargement: true })
    .png({ compressionLevel: 3 })
    .toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, sha: createHash('sha256').update(data).digest('hex').slice(0, 16) };
}

/** The image lines of the engine's echo on each page of an X.md. */
function echoedImages(markdown: string): Map<number, Array<{ width: number; height: number; format: string; sha: string }>> {
  const out = new Map<number, Array<{ width: number; height: number; format: string; sha: string }>>();
  for (const [n, page] of parsePages(markdown)) {
    out.set(n, [...page.body.matchAll(/^image \d+: (\d+)x(\d+) (\w+) sha256=([0-9a-f]{16})$/gm)].map((m) => ({ width: Number(m[1]), height: Number(m[2]), format: m[3]!, sha: m[4]! })));
  }
  return out;
}

describe('enqueue a folder', () => {
  let p: Pipeline;
  let env: Record<string, string>;
  let inbox: string;
  beforeAll(async () => {
    p = await startPipeline({ file: import.meta.filename, config: { imageSize: SIZE, pageMaxTokens: 200 } });
    env = { REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix, BLOB_DIR: p.config.blobDir, OUT_DIR: p.config.outDir, LOG_FORMAT: 'json' };
    inbox = join(p.dir, 'inbox');
    mkdirSync(join(inbox, 'reports', '2024'), { recursive: true });
    mkdirSync(join(inbox, 'scans'), { recursive: true });
    writeFileSync(join(inbox, 'reports', '2024', 'q1.pdf'), numberedPdf(2, 12));
    writeFileSync(join(inbox, 'reports', 'summary.pdf'), numberedPdf(1, 8));
    await picture(900, 1400, 1).png().toFile(join(inbox, 'scans', 'receipt.png'));
    // Stored landscape (800 x 500) with EXIF orientation 6: upright it is 500 x 800.
    await picture(800, 500, 2).jpeg({ quality: 90 }).withMetadata({ orientation: 6 }).toFile(join(inbox, 'scans', 'photo.jpg'));
    const frames = await Promise.all([3, 4, 5].map((seed) => picture(300, 400, seed).png().toBuffer()));
    await sharp(frames, { join: { animated: true } }).tiff().toFile(join(inbox, 'scans', 'fax.tiff'));
    await picture(700, 300, 6).webp({ quality: 90 }).toFile(join(inbox, 'scans', 'sticker.webp'));
    writeFileSync(join(inbox, 'notes.txt'), 'Remember: scan the rest of the receipts on Monday.\n');
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('writes every document, names the skipped note, exits 0; each scan reaches the engine as itself', async () => {
    const r = await runCli(['enqueue', inbox, '--wait'], env, { timeoutMs: 120_000 });
    expect(r.stderr).not.toContain('docbatch:');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`skipped  ${join(inbox, 'notes.txt')}: not a document`);
    const written = r.stdout.split('\n').filter((l) => / written /.test(l));
    expect(written).toHaveLength(6);

    const out = (name: string) => readFileSync(join(p.config.outDir, `${name}.md`), 'utf8');
    expect([...parsePages(out('q1')).keys()]).toEqual([1, 2]);
    expect(parsePages(out('q1')).get(2)!.body).toContain('first="Page 2 of 2');
    expect([...parsePages(out('summary')).keys()]).toEqual([1]);

    for (const [name, file] of [['receipt', 'receipt.png'], ['photo', 'photo.jpg'], ['sticker', 'sticker.webp']] as const) {
      const images = echoedImages(out(name));
      const want = await expected(join(inbox, 'scans', file));
      expect(images.get(1), name).toEqual([{ width: want.width, height: want.height, format: 'png', sha: want.sha }]);
    }
    // The JPEG upright: 500 x 800 fitted into 640 is 400 x 640 (not 640 x 400).
    expect(echoedImages(out('photo')).get(1)![0]).toMatchObject({ width: 400, height: 640 });
    // The TIFF: one page per frame, each its own image.
    const fax = echoedImages(out('fax'));
    expect([...fax.keys()]).toEqual([1, 2, 3]);
    const shas = new Set<string>();
    for (const page of [1, 2, 3]) {
      const want = await expected(join(inbox, 'scans', 'fax.tiff'), page);
      expect(fax.get(page), `fax page ${page}`).toEqual([{ width: 300, height: 400, format: 'png', sha: want.sha }]);
      shas.add(want.sha);
    }
    expect(shas.size).toBe(3);
    const report = JSON.parse(readFileSync(join(p.config.outDir, 'fax.report.json'), 'utf8')) as Record<string, unknown>;
    expect(report).toMatchObject({ kind: 'image', format: 'tiff', units: 3, completed: 3, failed: [] });
  }, 150_000);

  it('a file named explicitly that is no document is still rejected with its code (exit 2)', async () => {
    const r = await runCli(['enqueue', join(inbox, 'notes.txt')], env, { timeoutMs: 60_000 });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('notes.txt: UNSUPPORTED_FORMAT: ');
  }, 60_000);
});
