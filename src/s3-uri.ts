/**
 * `s3://bucket/prefix` locations (BLOB_DIR, OUT_DIR, inputs): telling one from a path, parsing
 * and checking it, and making keys and URIs under it. No SDK here: src/config.ts checks
 * locations with this at start, and the SDK is loaded only where a store is used
 * (src/store/s3.ts).
 */
import { ConfigError } from './errors.ts';

export interface S3Location {
  bucket: string;
  /** Key prefix without leading or trailing `/` ('' for the bucket's root). */
  prefix: string;
}

export function isS3Uri(value: string): boolean {
  return /^s3:\/\//i.test(value);
}

/** `s3://bucket/prefix/` → {bucket, prefix}; a ConfigError naming `what` when it is not one. */
export function parseS3Uri(value: string, what = 'location'): S3Location {
  const { bucket, key } = parseS3Object(value, what);
  const prefix = key.replace(/\/+$/, '');
  if (prefix.startsWith('/') || prefix.split('/').some((p) => p === '.' || p === '..' || (p === '' && prefix !== ''))) {
    throw new ConfigError(`${what} ${JSON.stringify(value)}: the key prefix has an empty, "." or ".." part`);
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(prefix)) throw new ConfigError(`${what} ${JSON.stringify(value)}: the key prefix has control characters`);
  return { bucket, prefix };
}

/**
 * `s3://bucket/key` naming an object (or, ending in `/`, a prefix) that is already there: the
 * key exactly as written after the bucket's `/`. An S3 key is any string of up to 1,024 UTF-8
 * bytes: `a//b`, `a/./b`, `x/../b` and `/b` name objects of their own (not `a/b` or `b`), so
 * nothing is trimmed, normalised or refused here. Only locations docbatch writes under
 * (parseS3Uri) refuse such parts.
 */
export function parseS3Object(value: string, what = 'input'): { bucket: string; key: string } {
  const m = /^s3:\/\/([^/]*)(?:\/(.*))?$/is.exec(value);
  if (!m) throw new ConfigError(`${what} ${JSON.stringify(value)} is not an s3://bucket/prefix URI`);
  const bucket = m[1] ?? '';
  // Bucket names as the stores take them, not only today's AWS rule (3-63 of a-z 0-9 . -): AWS
  // buckets made in us-east-1 before 2018 may have capitals and underscores and up to 255
  // characters, GCS allows `_` and 222 characters in dotted names, Ceph RGW can be set to relaxed
  // names. The store refuses a name it does not have (NoSuchBucket, said with the location).
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]$/.test(bucket)) {
    throw new ConfigError(`${what} ${JSON.stringify(value)}: ${JSON.stringify(bucket)} is not a bucket name (3 to 255 letters, digits, dots, hyphens and underscores, beginning and ending with a letter or digit)`);
  }
  return { bucket, key: m[2] ?? '' };
}

/** The key of `rel` under a prefix. */
export function keyUnder(prefix: string, rel: string): string {
  return prefix === '' ? rel : `${prefix}/${rel}`;
}

export function s3Uri(bucket: string, key: string): string {
  return key === '' ? `s3://${bucket}` : `s3://${bucket}/${key}`;
}

/** The normal form of an s3:// location (no trailing slash). */
export function formatLocation(location: S3Location): string {
  return s3Uri(location.bucket, location.prefix);
}
