/**
 * `s3://bucket/prefix` as a setting: BLOB_DIR and OUT_DIR accept it (checked at start, kept in
 * normal form) while folders still resolve; a bad one is a ConfigError naming the setting; and
 * `enqueue --out` stays inside an s3:// OUT_DIR.
 */
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { outFolder } from '../../src/cli/out-folder.ts';
import { loadConfig } from '../../src/config.ts';
import { ConfigError } from '../../src/errors.ts';
import { parseS3Object, parseS3Uri } from '../../src/s3-uri.ts';

describe('s3:// locations', () => {
  it('parse into bucket and prefix; bad bucket names and "." / ".." / empty parts are refused', () => {
    expect(parseS3Uri('s3://my-bucket/a/b/')).toEqual({ bucket: 'my-bucket', prefix: 'a/b' });
    expect(parseS3Uri('s3://my.bucket')).toEqual({ bucket: 'my.bucket', prefix: '' });
    for (const bad of ['s3://', 's3://ab/x', 's3://b_/x', 's3://_bucket/x', 's3://bucket-/x', 's3://bu cket/x', 's3://bucket/a/../b', 's3://bucket/a//b', 's3://bucket//a', `s3://${'b'.repeat(256)}/x`]) {
      expect(() => parseS3Uri(bad), bad).toThrow(ConfigError);
    }
  });

  it('bucket names real stores have beyond the current AWS rule are taken: legacy us-east-1 capitals and underscores, long dotted GCS names', () => {
    expect(parseS3Uri('s3://Legacy_Bucket/in')).toEqual({ bucket: 'Legacy_Bucket', prefix: 'in' });
    const gcs = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.example`;
    expect(parseS3Uri(`s3://${gcs}/out`)).toEqual({ bucket: gcs, prefix: 'out' });
    expect(parseS3Object('s3://my_bucket/a b.pdf')).toEqual({ bucket: 'my_bucket', key: 'a b.pdf' });
  });

  it('BLOB_DIR and OUT_DIR: s3:// kept in normal form, folders resolved, a bad URI names the setting', () => {
    const c = loadConfig({}, { BLOB_DIR: 's3://data-bucket/docbatch/blobs/', OUT_DIR: 'out', CACHE_DIR: 'cache' });
    expect(c.blobDir).toBe('s3://data-bucket/docbatch/blobs');
    expect(c.outDir).toBe(resolve('out'));
    expect(c.cacheDir).toBe(resolve('cache'));
    expect(c.s3ForcePathStyle).toBe(false);
    expect(loadConfig({}, { S3_FORCE_PATH_STYLE: 'true', OUT_DIR: 'S3://data-bucket' }).s3ForcePathStyle).toBe(true);
    expect(() => loadConfig({}, { OUT_DIR: 's3://X/out' })).toThrow(/setting OUT_DIR .* is invalid: .*not a bucket name/);
    expect(() => loadConfig({}, { S3_MAX_ATTEMPTS: '0' })).toThrow(/S3_MAX_ATTEMPTS/);
    expect(() => loadConfig({}, { S3_PART_SIZE_MB: '4' })).toThrow(/S3_PART_SIZE_MB/);
  });

  it('enqueue --out under an s3:// OUT_DIR: relative or a URI under it; ".." and absolute paths refused', () => {
    const root = 's3://data-bucket/out';
    expect(outFolder('model-a', root)).toBe('model-a');
    expect(outFolder('./a/b/', root)).toBe('a/b');
    expect(outFolder('s3://data-bucket/out/run-7', root)).toBe('run-7');
    expect(outFolder('s3://data-bucket/out', root)).toBe('');
    for (const bad of ['../elsewhere', 'a/../../b', '/abs', 's3://data-bucket/output', 's3://other/out/x']) {
      expect(() => outFolder(bad, root), bad).toThrow(ConfigError);
    }
  });
});
