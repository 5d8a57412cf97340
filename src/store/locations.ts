/**
 * docbatch's own folders (BLOB_DIR, OUT_DIR; folders or s3:// prefixes) kept apart from each
 * other and from the inputs:
 *
 *   BLOB_DIR and OUT_DIR  must not be one folder, and OUT_DIR must not be inside BLOB_DIR (on
 *                         s3://: the same bucket, OUT_DIR's prefix under BLOB_DIR's):
 *                         LOCATIONS_OVERLAP, naming both, before anything is read or written.
 *                         Inside BLOB_DIR, `docbatch gc` removes `tmp/` files older than a day
 *                         (outputs there would go). BLOB_DIR inside OUT_DIR is allowed: `OUT_DIR=.`
 *                         with the default `./data/blobs` is a setup people have, and nothing
 *                         there is lost (a walk of OUT_DIR skips the store, below; the store's
 *                         copies ride along only where the whole folder is delivered).
 *   inputs                a folder walked that holds BLOB_DIR, OUT_DIR or CACHE_DIR skips them
 *                         (listed with why, once each): the blobs (and the cache's copies of
 *                         them) are stored copies of inputs (a second `enqueue .` read each
 *                         stored PDF again as an input), the outputs are docbatch's. An input
 *                         named inside BLOB_DIR or CACHE_DIR is refused (INPUT_OWN_FOLDER); one
 *                         named inside OUT_DIR is taken (the user named it, and outputs are no
 *                         documents: they are skipped as such).
 *
 * Folders compare by their real paths (links resolved, as far as the path exists: a folder not
 * made yet compares as written below its nearest existing parent). Bind mounts and
 * case-insensitive filesystems are not seen through.
 */
import { realpathSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { DocbatchError } from '../errors.ts';
import { isS3Uri, parseS3Object } from '../s3-uri.ts';

/** One of docbatch's own folders, as the walk sees it. */
export interface OwnFolder {
  setting: 'BLOB_DIR' | 'OUT_DIR' | 'CACHE_DIR';
  /** As configured (for messages). */
  location: string;
  /** A real path, or `s3://bucket/prefix` in normal form. */
  canonical: string;
  /** Why a walk does not go in. */
  why: string;
}

/** The real path of `path`, resolving links as far as it exists. */
export function realPath(path: string): string {
  const abs = resolve(path);
  const rest: string[] = [];
  for (let dir = abs; ; dir = dirname(dir)) {
    try {
      return join(realpathSync(dir), ...rest.reverse());
    } catch {
      if (dirname(dir) === dir) return abs;
      rest.push(basename(dir));
    }
  }
}

/** `inner` is `outer` or inside it (real paths, or s3:// URIs in normal form). */
export function within(inner: string, outer: string): boolean {
  if (isS3Uri(inner) !== isS3Uri(outer)) return false;
  if (isS3Uri(inner)) {
    const a = parseS3Object(inner);
    const b = parseS3Object(outer);
    const ka = a.key.replace(/\/+$/, '');
    const kb = b.key.replace(/\/+$/, '');
    return a.bucket === b.bucket && (kb === '' || ka === kb || ka.startsWith(`${kb}/`));
  }
  const rel = relative(outer, inner);
  // `..x` is a name inside (a folder called `..data`); `..` and `../x` are outside.
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

function canonical(location: string): string {
  return isS3Uri(location) ? location.replace(/\/+$/, '') : realPath(location);
}

/** BLOB_DIR and OUT_DIR (and CACHE_DIR, given) as the walk compares them. */
export function ownFolders(config: { blobDir: string; outDir: string; cacheDir?: string }): OwnFolder[] {
  return [
    { setting: 'BLOB_DIR', location: config.blobDir, canonical: canonical(config.blobDir), why: `docbatch's blob store (BLOB_DIR ${config.blobDir}): stored copies of inputs, not inputs; not walked` },
    { setting: 'OUT_DIR', location: config.outDir, canonical: canonical(config.outDir), why: `docbatch's output folder (OUT_DIR ${config.outDir}): its outputs are not inputs; not walked` },
    // The workers' copies of blobs stored on s3:// (CACHE_DIR/blobs), and temporaries.
    ...(config.cacheDir === undefined ? [] : [{ setting: 'CACHE_DIR' as const, location: config.cacheDir, canonical: canonical(config.cacheDir), why: `docbatch's cache (CACHE_DIR ${config.cacheDir}): copies of stored inputs, not inputs; not walked` }]),
  ];
}

/** Throws LOCATIONS_OVERLAP when BLOB_DIR and OUT_DIR are one folder or OUT_DIR is inside BLOB_DIR. */
export function checkLocations(config: { blobDir: string; outDir: string }): void {
  const [blob, out] = ownFolders(config) as [OwnFolder, OwnFolder];
  const how = blob.canonical === out.canonical ? 'are the same folder' : within(out.canonical, blob.canonical) ? 'overlap: OUT_DIR is inside BLOB_DIR' : null;
  if (how === null) return;
  const real = (f: OwnFolder) => (f.canonical === f.location || isS3Uri(f.location) ? '' : ` (${f.canonical})`);
  throw new DocbatchError(
    'LOCATIONS_OVERLAP',
    `BLOB_DIR ${blob.location}${real(blob)} and OUT_DIR ${out.location}${real(out)} ${how}: give them two separate folders (e.g. OUT_DIR ./out and BLOB_DIR ./data/blobs). ` +
      'BLOB_DIR holds copies of every input and its temporaries are collected by `docbatch gc`; OUT_DIR is what is delivered',
  );
}

/** The own folder of `settings` that `path` (a real path or s3:// URI) is, or is inside; undefined when none. */
export function ownFolderOf(path: string, own: OwnFolder[], settings: Array<OwnFolder['setting']>): OwnFolder | undefined {
  return own.find((f) => settings.includes(f.setting) && within(path, f.canonical));
}

/** Where no input named is taken from: copies of inputs (src/ingest/walk.ts). */
export const STORES: Array<OwnFolder['setting']> = ['BLOB_DIR', 'CACHE_DIR'];
