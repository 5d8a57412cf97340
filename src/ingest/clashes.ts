/**
 * Which base names of one `enqueue` command belong to more than one document (names that
 * differ only by case count as one). Those all take the
 * hash suffix, so two different files never race for a name and the names do not depend on the
 * order files are read in. Only names walked more than once are looked at (usually none); of those,
 * local files that are not documents (by their bytes: `invoice.txt` beside `invoice.pdf`) and
 * byte-identical copies (one document) do not count. Objects in S3 count as walked: telling them
 * apart would cost a download each.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { detectFile } from './detect.ts';
import { baseNameOf } from './prepare.ts';
import { isS3Uri } from '../s3-uri.ts';
import { nameField } from '../store/names.ts';
import type { WalkedFile } from './walk.ts';

export async function clashingNames(walked: readonly WalkedFile[]): Promise<Set<string>> {
  // Names that differ only by case clash too: one file on a case-insensitive filesystem (nameField).
  const byName = new Map<string, Array<{ path: string; name: string }>>();
  for (const { path } of walked) {
    const name = baseNameOf(path);
    const key = nameField('', name);
    // Appended in place: a copy per file made this quadratic (60,000 `invoice.pdf` in as many
    // folders: ~35 s of CPU before the first file was read).
    const files = byName.get(key);
    if (files) files.push({ path, name });
    else byName.set(key, [{ path, name }]);
  }
  const clashing = new Set<string>();
  for (const files of byName.values()) {
    if (files.length < 2) continue;
    const contents = new Set<string>();
    for (const { path } of files) {
      const identity = await identify(path);
      if (identity !== null) contents.add(identity);
    }
    if (contents.size > 1) for (const { name } of files) clashing.add(name);
  }
  return clashing;
}

/** The file's content hash, its path for an S3 object, or null for what is not a document. */
async function identify(path: string): Promise<string | null> {
  if (isS3Uri(path)) return path;
  try {
    const kind = await detectFile(path);
    if (kind.kind === 'unknown' || kind.kind === 'empty') return null;
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
    return hash.digest('hex');
  } catch {
    return null; // unreadable: it is reported when its turn comes
  }
}
