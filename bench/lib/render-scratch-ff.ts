import { GlobalFonts, createCanvas } from '@napi-rs/canvas';
import { readFileSync, writeFileSync } from 'node:fs';
import sharp from 'sharp';
const native = process.argv[2] === 'native';
const pdfjs = await import('pdfjs-dist/legacy/build/pdf.mjs');
class FontFacePoly { family: string; data: Uint8Array; loaded: Promise<unknown>; key: unknown;
  constructor(family: string, data: Uint8Array) { this.family = family; this.data = data; this.loaded = Promise.resolve(this); } }
(globalThis as any).FontFace = FontFacePoly;
let regs = 0, regMs = 0;
const fakeDoc = { fonts: { add(f: any) { const t = performance.now(); f.key = GlobalFonts.register(Buffer.from(f.data.buffer, f.data.byteOffset, f.data.byteLength), f.family); regMs += performance.now() - t; regs++; if (!f.key) console.log('register failed', f.family); }, delete(f: any) { if (f.key) GlobalFonts.remove(f.key); } } };
const base = '/work/main/node_modules/pdfjs-dist/';
const file = process.argv[3] ?? '/work/shared/corpus/pdf/tracemonkey.pdf';
const task = pdfjs.getDocument({ data: new Uint8Array(readFileSync(file)), standardFontDataUrl: base + 'standard_fonts/', cMapUrl: base + 'cmaps/', wasmUrl: base + 'wasm/', iccUrl: base+'iccs/', verbosity: 0, disableFontFace: !native, useSystemFonts: false, ...(native ? { ownerDocument: fakeDoc } : {}) } as any);
const doc = await task.promise;
const n = Math.min(doc.numPages, 14);
let total = 0;
for (let rep = 0; rep < 3; rep++) for (let i = 1; i <= n; i++) {
  const page = await doc.getPage(i);
  const vp0 = page.getViewport({ scale: 1 });
  const vp = page.getViewport({ scale: 1288 / Math.max(vp0.width, vp0.height) });
  const canvas = createCanvas(Math.round(vp.width), Math.round(vp.height));
  const t = performance.now();
  await page.render({ canvas: canvas as any, viewport: vp, background: 'white' }).promise;
  const raw = canvas.data();
  if (rep > 0) total += performance.now() - t;
  if (rep === 2 && i === 1) await sharp(raw, { raw: { width: canvas.width, height: canvas.height, channels: 4 } }).png().toFile(`/tmp/rscratch/out/ff-${native ? 'native' : 'paths'}.png`);
}
console.log(native ? 'native' : 'paths', 'render+flush ms/page', (total / (2 * n)).toFixed(1), 'regs', regs, regMs.toFixed(0));
await task.destroy();
