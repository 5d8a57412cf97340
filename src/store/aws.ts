/**
 * The AWS SDK, loaded on first use: importing it takes ~130 ms, which a command that touches no
 * s3:// location does not pay. Node loads these packages as CommonJS whether they are imported or
 * required (they have no ES module entry for Node), so `require` gives the very classes an
 * `import` would.
 */
import { createRequire } from 'node:module';

type ClientS3 = typeof import('@aws-sdk/client-s3');
type LibStorage = typeof import('@aws-sdk/lib-storage');

const require = createRequire(import.meta.url);
let clientS3: ClientS3 | undefined;
let libStorage: LibStorage | undefined;

/** `@aws-sdk/client-s3`. */
export function s3Sdk(): ClientS3 {
  return (clientS3 ??= require('@aws-sdk/client-s3') as ClientS3);
}

/** `@aws-sdk/lib-storage` (multipart uploads). */
export function s3Storage(): LibStorage {
  return (libStorage ??= require('@aws-sdk/lib-storage') as LibStorage);
}
