/**
 * Writes a .zip of many small entries and one `conversations.json`, as an export with its
 * attachments (a ChatGPT export of a long-used account holds tens of thousands of images) looks
 * to the central directory. Streamed to disk; zip64 end records once the entries pass 65,535.
 * The filler entries are stored (method 0); conversations.json is deflated. Its place in the
 * directory (first or last) decides how far a reader looking for it by name walks.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { crc32, deflateRawSync } from 'node:zlib';

export interface ZipGenOptions {
  path: string;
  /** Filler entries besides conversations.json. */
  entries: number;
  conversations: Buffer;
  /** Where conversations.json sits in the directory. @defaultValue 'last' */
  conversationsAt?: 'first' | 'last';
}

export function generateZip(o: ZipGenOptions): { bytes: number; entries: number } {
  const fd = openSync(o.path, 'w');
  const central: Buffer[] = [];
  let offset = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const write = (b: Buffer): void => {
    pending.push(b);
    pendingBytes += b.length;
    offset += b.length;
    if (pendingBytes >= 1 << 20) flush();
  };
  const flush = (): void => {
    writeSync(fd, Buffer.concat(pending));
    pending = [];
    pendingBytes = 0;
  };
  const add = (fileName: string, data: Buffer, deflate: boolean): void => {
    const name = Buffer.from(fileName);
    const body = deflate ? deflateRawSync(data) : data;
    const crc = crc32(data);
    const method = deflate ? 8 : 0;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x0800, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(name.length, 26);
    const at = offset;
    write(local);
    write(name);
    write(body);
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE(45, 4);
    c.writeUInt16LE(20, 6);
    c.writeUInt16LE(0x0800, 8);
    c.writeUInt16LE(method, 10);
    c.writeUInt32LE(crc, 16);
    c.writeUInt32LE(body.length, 20);
    c.writeUInt32LE(data.length, 24);
    c.writeUInt16LE(name.length, 28);
    c.writeUInt32LE(at, 42);
    central.push(c, name);
  };
  const last = o.conversationsAt !== 'first';
  if (!last) add('conversations.json', o.conversations, true);
  for (let i = 0; i < o.entries; i++) add(`files/file-${String(i).padStart(7, '0')}.txt`, Buffer.from(`attachment ${i}\n`), false);
  if (last) add('conversations.json', o.conversations, true);
  const count = o.entries + 1;
  const cdAt = offset;
  for (const b of central) write(b);
  const cdBytes = offset - cdAt;
  if (count > 0xfffe) {
    const zip64At = offset;
    const z = Buffer.alloc(56);
    z.writeUInt32LE(0x06064b50, 0);
    z.writeBigUInt64LE(44n, 4);
    z.writeUInt16LE(45, 12);
    z.writeUInt16LE(45, 14);
    z.writeBigUInt64LE(BigInt(count), 24);
    z.writeBigUInt64LE(BigInt(count), 32);
    z.writeBigUInt64LE(BigInt(cdBytes), 40);
    z.writeBigUInt64LE(BigInt(cdAt), 48);
    write(z);
    const locator = Buffer.alloc(20);
    locator.writeUInt32LE(0x07064b50, 0);
    locator.writeBigUInt64LE(BigInt(zip64At), 8);
    locator.writeUInt32LE(1, 16);
    write(locator);
  }
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(Math.min(count, 0xffff), 8);
  end.writeUInt16LE(Math.min(count, 0xffff), 10);
  end.writeUInt32LE(cdBytes, 12);
  end.writeUInt32LE(count > 0xfffe ? 0xffffffff : cdAt, 16);
  write(end);
  flush();
  closeSync(fd);
  return { bytes: offset, entries: count };
}
