import { pagesPdf, slowPage, hugeImagePdf, textPage } from '../../test/render/fixtures.ts';
import { writeFileSync } from 'node:fs';
import { RenderPool } from '../../src/render/pool.ts';
const which = process.argv[2]!;
const arg = Number(process.argv[3] ?? 0);
const path = `/tmp/rscratch/fx/${which}.pdf`;
if (which === 'slow') writeFileSync(path, pagesPdf([slowPage(arg)]));
if (which === 'huge') writeFileSync(path, hugeImagePdf(arg));
if (which === 'bomb') writeFileSync(path, (await import('../../test/render/fixtures.ts')).formBombPdf(arg, 10));
if (which === 'big') writeFileSync(path, pagesPdf([textPage(14400, 14400, ['Hello big page'], 400)]));
const pool = new RenderPool({ size: 1, maxHeapMb: Number(process.argv[6] ?? 1024), pageTimeoutMs: 120_000, maxRssMb: Number(process.argv[5] ?? 4000), maxImagePixels: Number(process.argv[4] ?? 100e6) });
const t = performance.now();
let peak = 0;
const iv = setInterval(() => { const s = require('node:fs').readFileSync; }, 1000);
clearInterval(iv);
try {
  const r = await pool.render({ path, blobId: which, page: 1, format: 'png' });
  console.log(which, 'ok', r.width, r.height, r.renderMs, r.text.slice(0, 40));
} catch (e: any) { console.log(which, 'ERR', e.code, e.message); }
console.log('ms', (performance.now() - t).toFixed(0), pool.stats());
await pool.close();
