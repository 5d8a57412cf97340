import { describe, expect, it } from 'vitest';
import { DocbatchError } from '../../src/errors.ts';
import { targetSize } from '../../src/render/geometry.ts';

const limits = { longestSide: 1288, maxPixels: 25_000_000, minLongestSide: 512 };

describe('targetSize', () => {
  it('makes the longest side exactly the target, portrait and landscape', () => {
    expect(targetSize({ widthPt: 612, heightPt: 792 }, limits)).toMatchObject({ width: 995, height: 1288, capped: false });
    expect(targetSize({ widthPt: 792, heightPt: 612 }, limits)).toMatchObject({ width: 1288, height: 995 });
    expect(targetSize({ widthPt: 649, heightPt: 323 }, limits)).toMatchObject({ width: 1288, height: 641 });
    expect(targetSize({ widthPt: 500, heightPt: 500 }, limits)).toMatchObject({ width: 1288, height: 1288 });
  });

  it('gives a 14400 pt square page the same pixels as any other square page', () => {
    const size = targetSize({ widthPt: 14_400, heightPt: 14_400 }, limits);
    expect(size).toMatchObject({ width: 1288, height: 1288, capped: false });
    expect(size.scale).toBeCloseTo(1288 / 14_400, 10);
  });

  it('keeps at least one pixel across a sliver page', () => {
    expect(targetSize({ widthPt: 14_400, heightPt: 1 }, limits)).toMatchObject({ width: 1288, height: 1 });
  });

  it('shrinks to the pixel cap before any canvas exists, keeping the aspect ratio', () => {
    const size = targetSize({ widthPt: 1000, heightPt: 1000 }, { longestSide: 4000, maxPixels: 4_000_000, minLongestSide: 512 });
    expect(size.capped).toBe(true);
    expect(size.width * size.height).toBeLessThanOrEqual(4_000_000);
    expect(size.width).toBe(2000);
    expect(size.height).toBe(2000);
  });

  it('fails with PAGE_TOO_LARGE when fitting the cap would leave an unreadable image', () => {
    let caught: unknown;
    try {
      targetSize({ widthPt: 1000, heightPt: 1000 }, { longestSide: 4000, maxPixels: 10_000, minLongestSide: 512 });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(DocbatchError);
    expect((caught as DocbatchError).code).toBe('PAGE_TOO_LARGE');
    expect((caught as DocbatchError).message).toMatch(/10000 pixels/);
  });

  it('lets the cap halve a small requested side, not more', () => {
    const half = targetSize({ widthPt: 300, heightPt: 300 }, { longestSide: 300, maxPixels: 150 * 150, minLongestSide: 512 });
    expect(half).toMatchObject({ width: 150, height: 150, capped: true });
    expect(() => targetSize({ widthPt: 300, heightPt: 300 }, { longestSide: 300, maxPixels: 149 * 149, minLongestSide: 512 })).toThrow(
      /PAGE_TOO_LARGE|pixels/,
    );
  });

  it('refuses a page without area', () => {
    expect(() => targetSize({ widthPt: 0, heightPt: 792 }, limits)).toThrow(/no area/);
    expect(() => targetSize({ widthPt: Number.NaN, heightPt: 792 }, limits)).toThrow(/no area/);
  });
});
