/**
 * Object storage through the AWS SDK for JavaScript v3, for every S3-compatible store (AWS S3,
 * MinIO, Cloudflare R2, GCS interoperability): `s3://bucket/prefix` locations, one client per
 * process, and what a failed request means.
 *
 * Configured the standard way: the SDK itself reads AWS_REGION, AWS_ENDPOINT_URL_S3 /
 * AWS_ENDPOINT_URL, AWS_PROFILE and the default credential chain (environment, shared files, SSO,
 * web identity, instance roles); docbatch adds only S3_FORCE_PATH_STYLE and S3_MAX_ATTEMPTS
 * (src/config.ts). Retries are the SDK's `standard` strategy: up to S3_MAX_ATTEMPTS attempts per
 * request, exponential backoff with full jitter, on throttling (429, 503 SlowDown), 5xx and
 * network errors. Checksums are sent and checked only where S3 requires them, so stores that do
 * not speak the SDK's newer CRC headers (GCS interoperability, older MinIO) work too; docbatch
 * checks blob bytes against their sha256 itself. S3_CHECKSUMS=when_supported sends a CRC32 with
 * every upload, for buckets with Object Lock that refuse uploads without one. Uploads send no `Expect: 100-continue`.
 *
 * What a failure is (`classifyS3Error`): `missing-key` (NoSuchKey / 404 on an object: the store
 * answers, the object is not there), `missing-bucket`, `denied` (bad or missing credentials,
 * 401/403), `region` (no region configured), `network` (no answer), `other`.
 */
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { s3Sdk } from './aws.ts';
export { formatLocation, isS3Uri, keyUnder, parseS3Uri, s3Uri, type S3Location } from '../s3-uri.ts';

/** Where the SDK's own settings live, for messages. */
export const AWS_SETTINGS_HINT = 'AWS_REGION, AWS_ENDPOINT_URL(_S3), AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE';

/** The settings docbatch adds to the SDK's own (src/config.ts). */
export interface S3Settings {
  /** Path-style URLs (`endpoint/bucket/key`) for servers without virtual hosts (MinIO, s3rver). */
  forcePathStyle: boolean;
  /** Attempts per request (the SDK's standard retry strategy). */
  maxAttempts: number;
  /** Objects above this many bytes are uploaded in parts of this size. */
  partSizeBytes: number;
  /**
   * Checksums on uploads (S3_CHECKSUMS): only where S3 requires them, or a CRC32 with every one
   * (a bucket with Object Lock and a default retention refuses uploads without). @defaultValue 'when_required'
   */
  checksums?: 'when_required' | 'when_supported';
}

/**
 * One client for a process (it pools connections). Region, endpoint and credentials come from
 * the SDK's standard chains; `overrides` are for tests and embedders that pass their own.
 */
export function createS3Client(settings: Pick<S3Settings, 'forcePathStyle' | 'maxAttempts' | 'checksums'> & { timeoutMs?: number }, overrides: S3ClientConfig = {}): S3Client {
  const timeoutMs = settings.timeoutMs ?? 120_000;
  return new (s3Sdk().S3Client)({
    forcePathStyle: settings.forcePathStyle,
    maxAttempts: settings.maxAttempts,
    retryMode: 'standard',
    requestChecksumCalculation: settings.checksums === 'when_supported' ? 'WHEN_SUPPORTED' : 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // No `Expect: 100-continue` (the SDK adds it to bodies of 2 MiB or more, then waits up to 6 s
    // for the 100): R2 never sends one, so every such upload stalled 6 s there.
    expectContinueHeader: false,
    // A store that does not answer is an error (retried as a timeout), not a hang: no connection
    // in 10 s, or a socket idle for `timeoutMs` (no answer to a request, or a body that stops).
    // Not a limit on the whole request: a large part going up a slow link takes what it takes.
    requestHandler: { connectionTimeout: 10_000, socketTimeout: timeoutMs },
    ...overrides,
  });
}

export type S3Failure = 'missing-key' | 'missing-bucket' | 'denied' | 'region' | 'network' | 'other';

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'TimeoutError', 'RequestTimeout']);

interface SdkError {
  name?: string;
  code?: string;
  Code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $response?: { headers?: Record<string, string | undefined> };
  /** PermanentRedirect's body: the endpoint to address the bucket at. */
  Endpoint?: string;
}

export function classifyS3Error(err: unknown): S3Failure {
  const e = (err ?? {}) as SdkError;
  const name = e.name ?? '';
  const code = e.Code ?? e.code ?? '';
  const status = e.$metadata?.httpStatusCode;
  if (name === 'NoSuchBucket' || code === 'NoSuchBucket') return 'missing-bucket';
  if (name === 'NoSuchKey' || code === 'NoSuchKey' || name === 'NotFound' || status === 404) return 'missing-key';
  if (status === 401 || status === 403 || /AccessDenied|InvalidAccessKeyId|SignatureDoesNotMatch|ExpiredToken|InvalidToken|CredentialsProviderError/.test(`${name} ${code}`)) return 'denied';
  if (/Region is missing/i.test(e.message ?? '')) return 'region';
  if (NETWORK_CODES.has(code) || NETWORK_CODES.has(name) || (status === undefined && /socket|connect|network|timed? ?out/i.test(e.message ?? ''))) return 'network';
  return 'other';
}

/** The object is not the version asked for (If-Match failed: 412 PreconditionFailed). */
export function preconditionFailed(err: unknown): boolean {
  const e = (err ?? {}) as SdkError;
  return e.$metadata?.httpStatusCode === 412 || e.name === 'PreconditionFailed' || e.Code === 'PreconditionFailed';
}

/** A failed request in one line: what went wrong and what to check. */
export function explainS3Error(err: unknown, where: string): string {
  const e = (err ?? {}) as SdkError;
  const detail = `${e.name ?? 'Error'}${e.$metadata?.httpStatusCode ? ` ${e.$metadata.httpStatusCode}` : ''}${e.message && e.message !== e.name && e.message !== 'UnknownError' ? `: ${e.message}` : ''}`;
  switch (classifyS3Error(err)) {
    case 'missing-bucket':
      return `${where}: the bucket does not exist (${detail})`;
    case 'missing-key':
      return `${where}: no such object (${detail})`;
    case 'denied': {
      // A HEAD has no body to say more, and AWS answers 403, not 404, for a key that is not there
      // when the caller lacks s3:ListBucket: the object may simply be missing.
      const head = e.$metadata?.httpStatusCode === 403 && bareError(e) ? '; or the object does not exist (without s3:ListBucket, AWS answers 403 for a missing key)' : '';
      return `${where}: access denied: the credentials are missing, wrong or lack permission; check ${AWS_SETTINGS_HINT}${head} (${detail})`;
    }
    case 'region':
      return `${where}: no region configured: set AWS_REGION (any name, e.g. us-east-1, for MinIO and other S3-compatible servers)`;
    case 'network':
      return `${where}: the object store does not answer; check AWS_ENDPOINT_URL(_S3) and the network${/ENOTFOUND/.test(detail) && !/force/i.test(detail) ? ', and S3_FORCE_PATH_STYLE=true for a server without a name per bucket (MinIO, on-premises stores)' : ''} (${detail})`;
    default: {
      // A bucket with S3 Object Lock and a default retention refuses an upload that carries no
      // Content-MD5 or x-amz-checksum-* (400 InvalidRequest, AWS's words matched here); with
      // S3_CHECKSUMS=when_required (the default) the SDK sends none on PutObject.
      if (/Content-MD5 (OR x-amz-checksum- )?HTTP header is required/i.test(e.message ?? '')) {
        return `${where}: the bucket wants a checksum on every upload (S3 Object Lock with a default retention): set S3_CHECKSUMS=when_supported to send a CRC32 with each (${detail})`;
      }
      // A bucket in another region: AWS answers 301 PermanentRedirect (global endpoint), or 400
      // AuthorizationHeaderMalformed (a regional one), naming the bucket's region in
      // x-amz-bucket-region. To a HEAD, which has no body, any 400 is bare: the wrong region is
      // its usual cause, not the only one (expired credentials too), so it is said as likely.
      const status = e.$metadata?.httpStatusCode;
      const region = e.$response?.headers?.['x-amz-bucket-region'];
      if (status === 301 || /PermanentRedirect|AuthorizationHeaderMalformed|IllegalLocationConstraint/.test(`${e.name ?? ''} ${e.Code ?? ''}`)) {
        // Without the region header (stores other than AWS), the body's Endpoint is what is known:
        // with a custom AWS_ENDPOINT_URL, AWS_REGION alone does not move the requests there.
        const to = !region && e.Endpoint ? `: set AWS_REGION to the region of the bucket, and AWS_ENDPOINT_URL to that region's endpoint (the store names ${e.Endpoint})` : '';
        return `${where}: the bucket is in another region${region ? ` (${region}): set AWS_REGION=${region}` : to || ': set AWS_REGION to the region of the bucket'} (${detail})`;
      }
      if (status === 400 && region && bareError(e)) {
        return `${where}: the store refused the request without saying why (a HEAD has no body); the bucket is in ${region}: set AWS_REGION=${region} unless it is that already (then check the credentials: expired?) (${detail})`;
      }
      return `${where}: ${detail}`;
    }
  }
}

/**
 * Whether a bucket answers, for the start checks (BLOB_DIR, OUT_DIR): HeadBucket, and when that
 * is refused, a listing of one key under `prefix`. HeadBucket needs s3:ListBucket on the whole
 * bucket; the usual way to share a bucket grants s3:ListBucket only under a prefix (a Condition
 * on `s3:prefix`), which refuses the HEAD (it has no prefix) while everything docbatch does under
 * its prefix is allowed. When the listing is refused too, the HeadBucket's error is thrown.
 * The listing is also asked after a bare 400, to learn why.
 */
export async function reachBucket(client: S3Client, Bucket: string, prefix: string): Promise<void> {
  try {
    await client.send(new (s3Sdk().HeadBucketCommand)({ Bucket }));
  } catch (err) {
    // A bare 400 says nothing (HEAD has no body): the listing's answer says why (the region it
    // expects, expired credentials ...), and that is the error then.
    const bare = (err as SdkError).$metadata?.httpStatusCode === 400 && bareError(err as SdkError);
    if (classifyS3Error(err) !== 'denied' && !bare) throw err;
    try {
      await client.send(new (s3Sdk().ListObjectsV2Command)({ Bucket, Prefix: prefix === '' ? '' : `${prefix}/`, MaxKeys: 1 }));
    } catch (listed) {
      throw bare ? listed : err;
    }
  }
}

/** An error answer without a body to name it (a HEAD's): the SDK knows only the status. */
function bareError(e: SdkError): boolean {
  return !e.Code && (e.name === undefined || /^(Unknown|BadRequest|Error)$/.test(e.name));
}

/**
 * Every object under `prefix`, page by page (1000 a request): ListObjectsV2, or ListObjects (V1)
 * on a store that only speaks V1. Keys are asked for URL-encoded (`encoding-type=url`, as the
 * AWS CLI and botocore do): in plain XML a key's carriage return reads back as a line feed (XML's
 * end-of-line rule) and names another key, and some control characters cannot be written at
 * all. They are decoded when the answer says it is encoded (EncodingType); a store that ignores
 * the parameter sends keys as they are, one that refuses it (400 InvalidArgument) is asked
 * again without it. V1 requests go without it: GCS encodes V1 keys without saying so.
 * A store that only speaks V1 ignores `list-type=2` and its continuation token
 * and answers a V1 listing: IsTruncated without a NextContinuationToken. The listing then goes on
 * with V1 `marker`s (NextMarker, else the page's last key, as the V1 API documents), in order.
 * A store that pages badly otherwise (no way on, or the same page again) is an error, never a
 * listing cut short or a loop.
 */
export async function* listObjects(client: S3Client, Bucket: string, Prefix: string, onError: (err: unknown) => Error): AsyncGenerator<{ key: string; size: number; modifiedMs: number }> {
  const where = `s3://${Bucket}/${Prefix}`;
  let ContinuationToken: string | undefined;
  let Marker: string | undefined;
  const tokens = new Set<string>();
  let encoded = true;
  for (;;) {
    let page;
    try {
      page =
        Marker === undefined
          ? await client.send(new (s3Sdk().ListObjectsV2Command)({ Bucket, Prefix, ...(encoded ? { EncodingType: 'url' } : {}), ...(ContinuationToken ? { ContinuationToken } : {}) }))
          : await client.send(new (s3Sdk().ListObjectsCommand)({ Bucket, Prefix, Marker }));
    } catch (err) {
      // A store that refuses the parameter (400 InvalidArgument: GCS did) lists without it.
      if (encoded && Marker === undefined && invalidArgument(err)) {
        encoded = false;
        continue;
      }
      throw onError(err);
    }
    // Keys come URL-encoded when the store did as asked (it says so); as they are from one that ignores it.
    const decode = page.EncodingType === 'url' ? (k: string) => urlDecodedKey(k, where, onError) : (k: string) => k;
    let last: string | undefined;
    for (const o of page.Contents ?? []) {
      if (o.Key === undefined) continue;
      const key = decode(o.Key);
      // A V1 page starts after its marker; one that gives the marker again would yield it twice.
      if (Marker !== undefined && !after(key, Marker)) continue;
      last = key;
      yield { key, size: o.Size ?? 0, modifiedMs: o.LastModified?.getTime() ?? 0 };
    }
    if (!page.IsTruncated) return;
    const token = 'NextContinuationToken' in page ? page.NextContinuationToken : undefined;
    if (Marker === undefined && token) {
      if (tokens.has(token)) throw onError(new Error(`the store hands back a continuation token it gave before while listing ${where}: it does not page (continuation-token ignored?)`));
      tokens.add(token);
      ContinuationToken = token;
      continue;
    }
    // A V1 answer (to a V2 request from a V1-only store, or to a V1 request): on by marker.
    const nextMarker = 'NextMarker' in page ? page.NextMarker : undefined;
    const next = (nextMarker !== undefined ? decode(nextMarker) : undefined) ?? last;
    if (next === undefined || (Marker !== undefined && !after(next, Marker))) {
      throw onError(new Error(`the store says the listing of ${where} goes on (IsTruncated) but gives no NextContinuationToken, and ListObjects V1 with a marker does not move it on`));
    }
    Marker = next;
  }
}

function invalidArgument(err: unknown): boolean {
  const e = (err ?? {}) as SdkError;
  return e.$metadata?.httpStatusCode === 400 && (e.name === 'InvalidArgument' || e.Code === 'InvalidArgument');
}

/** A key of a listing answered with encoding-type=url: form-encoded (AWS writes a space as `+`). */
function urlDecodedKey(key: string, where: string, onError: (err: unknown) => Error): string {
  try {
    return decodeURIComponent(key.replace(/\+/g, ' '));
  } catch (err) {
    throw onError(new Error(`the store lists a key under ${where} that is not URL-encoded though it says it is (EncodingType url): ${JSON.stringify(key)}`, { cause: err }));
  }
}

/** `a` lists after `b`: S3 orders keys by their UTF-8 bytes (not JavaScript's UTF-16 order). */
function after(a: string, b: string): boolean {
  return Buffer.compare(Buffer.from(a), Buffer.from(b)) > 0;
}
