/**
 * Finding documents the way people name them: a document id or its start (`d5f0c`), the input
 * path as given to enqueue, its file name (`report.pdf`), its output name (`report`), or, when
 * the argument is a file that exists, every run of that file's content. With `partial`, a name
 * that matches nothing exactly finds the documents whose input path contains it
 * (case-insensitive). Newest first. Reads records in batches of 500 from the index
 * (`{p}:docs`), looking at no more than `scan` documents.
 */
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { hashFile } from './blobs.ts';
import type { DocStore } from './docs.ts';
import type { DocRecord } from './types.ts';

export interface FindOptions {
  /** Also match a part of the input path when nothing matches exactly. @defaultValue false */
  partial?: boolean;
  /** Newest documents looked at. @defaultValue 100_000 */
  scan?: number;
}

const ID = /^d[0-9a-f]{1,20}$/;

async function contentHash(target: string): Promise<string | null> {
  try {
    if (!(await stat(target)).isFile()) return null;
    return await hashFile(target);
  } catch {
    return null;
  }
}

export async function findDocuments(store: DocStore, target: string, options: FindOptions = {}): Promise<DocRecord[]> {
  const ids = await store.list(options.scan ?? 100_000);
  if (ID.test(target)) {
    const byId = ids.filter((id) => id.startsWith(target));
    if (byId.length > 0) return store.getMany(byId);
  }
  const sha = await contentHash(target);
  const needle = target.toLowerCase();
  const exact: DocRecord[] = [];
  const partial: DocRecord[] = [];
  for (let i = 0; i < ids.length; i += 500) {
    for (const record of await store.getMany(ids.slice(i, i + 500))) {
      const { source, name, sha256 } = record.meta;
      if (source === target || basename(source) === target || name === target || (sha !== null && sha256 === sha)) exact.push(record);
      else if (options.partial && source.toLowerCase().includes(needle)) partial.push(record);
    }
  }
  return exact.length > 0 ? exact : partial;
}
