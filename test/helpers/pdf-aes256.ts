/**
 * PDFs encrypted with AES-256 (security handler revision 6, ISO 32000-2 §7.6.4.4), built here
 * so the password tests need no tool outside Node (qpdf writes the same). The password is used
 * as the UTF-8 bytes it is given in: the caller decides its Unicode form (a PDF writer applies
 * SASLprep, whose normalisation is NFKC).
 */
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { buildPdf } from '../render/fixtures.ts';

/** Algorithm 2.B: the revision 6 hash of a password with a salt (and, for the owner, the U string). */
export function hashR6(password: Buffer, salt: Buffer, udata: Buffer = Buffer.alloc(0)): Buffer {
  let k = createHash('sha256').update(Buffer.concat([password, salt, udata])).digest();
  for (let round = 0; ; round++) {
    const k1 = Buffer.concat(Array(64).fill(Buffer.concat([password, k, udata])));
    const cipher = createCipheriv('aes-128-cbc', k.subarray(0, 16), k.subarray(16, 32)).setAutoPadding(false);
    const e = Buffer.concat([cipher.update(k1), cipher.final()]);
    let sum = 0;
    for (let i = 0; i < 16; i++) sum += e[i]!;
    k = createHash(['sha256', 'sha384', 'sha512'][sum % 3]!).update(e).digest();
    // Done after at least 64 rounds, once the last byte of E is at most (rounds done) - 32.
    if (round >= 63 && e[e.length - 1]! <= round + 1 - 32) return k.subarray(0, 32);
  }
}

function aes256(key: Buffer, data: Buffer, mode: 'cbc' | 'ecb'): Buffer {
  const cipher = createCipheriv(`aes-256-${mode}`, key, mode === 'cbc' ? Buffer.alloc(16) : null).setAutoPadding(false);
  return Buffer.concat([cipher.update(data), cipher.final()]);
}

/**
 * A one-page PDF whose content draws `text`, encrypted for `userPassword` (UTF-8 bytes as
 * given, at most 127) with a random owner password; the file key, the salts and the stream's
 * IV are random.
 */
export function aes256Pdf(userPassword: string, text = 'Encrypted page'): Buffer {
  const user = Buffer.from(userPassword, 'utf8').subarray(0, 127);
  const owner = randomBytes(16);
  const fileKey = randomBytes(32);
  const [uValid, uKey, oValid, oKey] = [randomBytes(8), randomBytes(8), randomBytes(8), randomBytes(8)];
  const u = Buffer.concat([hashR6(user, uValid), uValid, uKey]);
  const ue = aes256(hashR6(user, uKey), fileKey, 'cbc');
  const o = Buffer.concat([hashR6(owner, oValid, u), oValid, oKey]);
  const oe = aes256(hashR6(owner, oKey, u), fileKey, 'cbc');
  const p = -4;
  const perms = Buffer.alloc(16);
  perms.writeInt32LE(p, 0);
  perms.writeUInt32LE(0xffffffff, 4);
  perms.write('Tadb', 8, 'latin1');
  randomBytes(4).copy(perms, 12);
  const content = Buffer.from(`BT /F1 24 Tf 72 700 Td (${text}) Tj ET`, 'latin1');
  const iv = randomBytes(16);
  const pad = 16 - (content.length % 16);
  const cipher = createCipheriv('aes-256-cbc', fileKey, iv).setAutoPadding(false);
  const sealed = Buffer.concat([iv, cipher.update(Buffer.concat([content, Buffer.alloc(pad, pad)])), cipher.final()]);
  const hex = (b: Buffer) => `<${b.toString('hex')}>`;
  return buildPdf(
    [
      '<< /Type /Catalog /Pages 2 0 R >>',
      '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
      '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>',
      Buffer.concat([Buffer.from(`<< /Length ${sealed.length} >>\nstream\n`, 'latin1'), sealed, Buffer.from('\nendstream', 'latin1')]),
      '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
      `<< /Filter /Standard /V 5 /R 6 /Length 256 /CF << /StdCF << /CFM /AESV3 /AuthEvent /DocOpen /Length 32 >> >> /StmF /StdCF /StrF /StdCF /O ${hex(o)} /U ${hex(u)} /OE ${hex(oe)} /UE ${hex(ue)} /Perms ${hex(aes256(fileKey, perms, 'ecb'))} /P ${p} >>`,
    ],
    `/Encrypt 6 0 R /ID [${hex(randomBytes(16))} ${hex(randomBytes(16))}]`,
  );
}
