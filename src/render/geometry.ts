/**
 * How big a page's image is. Pure, so the pixel cap is decided before any canvas exists.
 */
import { DocbatchError } from '../errors.ts';

export interface PageBox {
  /** The page as displayed (after /Rotate and UserUnit), in points. */
  widthPt: number;
  heightPt: number;
}

export interface TargetSize {
  width: number;
  height: number;
  /** Pixels per point. */
  scale: number;
  /** True when the pixel cap made the image smaller than `longestSide`. */
  capped: boolean;
}

export interface SizeLimits {
  /** The image's longest side in pixels. */
  longestSide: number;
  /** The most pixels (width × height) one page may have. */
  maxPixels: number;
  /**
   * The smallest longest side the pixel cap may shrink an image to (or half of `longestSide`
   * when that is smaller); below it the page fails with PAGE_TOO_LARGE rather than giving an
   * image too small to read.
   */
  minLongestSide: number;
}

/**
 * The scale that gives the displayed page a longest side of exactly `longestSide` px, shrunk
 * to fit `maxPixels` when it must. Throws PAGE_TOO_LARGE when even the shrunk image would be
 * unreadable, RENDER_FAILED when the page has no area.
 */
export function targetSize(box: PageBox, limits: SizeLimits): TargetSize {
  const { widthPt, heightPt } = box;
  if (!(widthPt > 0 && heightPt > 0 && Number.isFinite(widthPt) && Number.isFinite(heightPt))) {
    throw new DocbatchError('RENDER_FAILED', `the page has no area (${widthPt} x ${heightPt} pt)`);
  }
  const landscape = widthPt >= heightPt;
  const long = landscape ? widthPt : heightPt;
  const short = landscape ? heightPt : widthPt;

  let longPx = Math.round(limits.longestSide);
  let shortPx = Math.max(1, Math.round((short * longPx) / long));
  let capped = false;
  if (longPx * shortPx > limits.maxPixels) {
    const shrink = Math.sqrt(limits.maxPixels / (longPx * shortPx));
    longPx = Math.floor(longPx * shrink);
    shortPx = Math.max(1, Math.floor((short * longPx) / long));
    while (longPx * shortPx > limits.maxPixels && longPx > 1) {
      longPx -= 1;
      shortPx = Math.max(1, Math.floor((short * longPx) / long));
    }
    capped = true;
    const floor = Math.min(limits.minLongestSide, Math.ceil(limits.longestSide / 2));
    if (longPx < floor || longPx * shortPx > limits.maxPixels) {
      throw new DocbatchError(
        'PAGE_TOO_LARGE',
        `a ${fmt(widthPt)} x ${fmt(heightPt)} pt page at a longest side of ${limits.longestSide} px ` +
          `needs more than ${limits.maxPixels} pixels; fitting the cap would leave ${longPx} px`,
      );
    }
  }
  return {
    width: landscape ? longPx : shortPx,
    height: landscape ? shortPx : longPx,
    scale: longPx / long,
    capped,
  };
}

function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

/** A size in points to two decimals, as reports and inspections give it. */
export function round2(n: number): number {
  return Math.round(n * 100) / 100;
}
