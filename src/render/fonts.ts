/**
 * Native glyph rendering for pdf.js in Node.
 *
 * By default pdf.js in Node draws every glyph as a path: a save/translate/scale/fill/restore
 * per character and a rasterised outline each time. Browsers instead load the (pdf.js
 * rebuilt) font into the page and draw text with fillText, which Skia caches per glyph. This
 * module gives pdf.js the two browser APIs it uses for that, a `FontFace` class and a
 * `document.fonts` set, backed by @napi-rs/canvas's font registry. Rendering the text of a
 * page then takes about half the time (docs/rendering.md has the figures).
 *
 * Only renderer children install it (pdfjs.ts). A font that Skia refuses makes `loaded`
 * reject, and pdf.js falls back to paths for that font by itself ("FontFallback").
 */
import { GlobalFonts, type FontKey } from '@napi-rs/canvas';

class NodeFontFace {
  readonly family: string;
  readonly data: Uint8Array;
  readonly loaded: Promise<NodeFontFace>;
  key: FontKey | null = null;
  settle!: (ok: boolean) => void;

  constructor(family: string, data: Uint8Array) {
    this.family = family;
    this.data = data;
    this.loaded = new Promise<NodeFontFace>((resolve, reject) => {
      this.settle = (ok) => (ok ? resolve(this) : reject(new Error(`the font ${family} cannot be loaded`)));
    });
    this.loaded.catch(() => {});
  }
}

/** What pdf.js's FontLoader reads from its `ownerDocument`. */
export interface FontHost {
  fonts: { add(face: NodeFontFace): void; delete(face: NodeFontFace): void };
}

let host: FontHost | undefined;

/** Installs `globalThis.FontFace` once and returns the document to pass as `ownerDocument`. */
export function nativeFontHost(): FontHost {
  if (host) return host;
  (globalThis as { FontFace?: unknown }).FontFace = NodeFontFace;
  host = {
    fonts: {
      add(face) {
        const bytes = Buffer.from(face.data.buffer, face.data.byteOffset, face.data.byteLength);
        // Registered under pdf.js's unique name (g_d<doc>_f<n>), which is what ctx.font asks for.
        face.key = GlobalFonts.register(bytes, face.family);
        face.settle(face.key !== null);
      },
      delete(face) {
        if (face.key) GlobalFonts.remove(face.key);
        face.key = null;
      },
    },
  };
  return host;
}

/** Fonts currently registered (tests check that closed documents leave none behind). */
export function registeredFontFamilies(): number {
  return GlobalFonts.families.length;
}
