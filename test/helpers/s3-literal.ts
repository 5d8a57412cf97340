/**
 * A small S3-protocol server for what s3rver cannot show. s3rver keeps objects as files, so it
 * is not S3 where keys are concerned: it turns `a/./b` into `a/b` and `a/x/../b` into `a/b`,
 * refuses `a//b` with an internal error and keys past the filesystem's 255-byte names. Real
 * stores keep a key as the literal string it is ("a sequence of Unicode characters whose UTF-8
 * encoding is at most 1,024 bytes long": AWS, *Naming Amazon S3 objects*,
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-keys.html), and some list only
 * with ListObjects V1 (a V1 server ignores `list-type=2` and `continuation-token` and pages with
 * `marker`: https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjects.html).
 *
 * Path-style, in memory, on 127.0.0.1 port 0; it answers, as S3 documents them: HeadBucket,
 * ListObjectsV2 and V1 (prefix, max-keys, continuation-token / start-after, marker,
 * encoding-type=url), HEAD, GET
 * (Range, If-Match: 412), PUT and DELETE of objects. Signatures are not checked. `intercept`
 * answers chosen requests itself (a store's own errors). A real HTTP peer: the SDK talks to it
 * as to any store.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface LiteralS3Options {
  /** Answer ListObjectsV2 requests as a V1-only server does (a V1 listing, paged by marker). */
  v1Only?: boolean;
  /** Keys per listing page at most, whatever max-keys asks. @defaultValue 1000 */
  pageSize?: number;
  /**
   * Refuse `encoding-type` on listings with 400 InvalidArgument, as GCS's interoperability did
   * ("Invalid query parameter(s): [encoding-type]", nextcloud/server#9716).
   */
  rejectEncodingType?: boolean;
  /**
   * Never answer `Expect: 100-continue` with `100 Continue` (the body is read when it comes), as
   * R2 documents: "Cloudflare does not support the HTTP 100 response" (R2, S3 API extensions).
   * Node's server answers 100 by itself otherwise.
   */
  noContinue?: boolean;
  /** Each request seen, as it arrives (before its body). */
  onRequest?: (req: IncomingMessage) => void;
}

export interface LiteralS3 {
  endpoint: string;
  /** Objects by bucket, then key (buckets are made by `put`). */
  buckets: Map<string, Map<string, { body: Buffer; etag: string }>>;
  put(bucket: string, key: string, body: Buffer | string): void;
  /** Requests seen: method and raw URL. */
  requests: Array<{ method: string; url: string; headers: IncomingMessage['headers'] }>;
  /** Answers a request itself when it returns true (after recording it). */
  intercept: ((req: IncomingMessage, res: ServerResponse, target: { bucket: string; key: string | null; body: Buffer }) => boolean) | null;
  close(): Promise<void>;
}

const xml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');

function error(res: ServerResponse, status: number, code: string, head = false): void {
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${code}</Message><RequestId>literal</RequestId></Error>`;
  res.writeHead(status, { 'Content-Type': 'application/xml', 'Content-Length': head ? 0 : Buffer.byteLength(body) });
  res.end(head ? undefined : body);
}

export async function startLiteralS3(options: LiteralS3Options = {}): Promise<LiteralS3> {
  const buckets = new Map<string, Map<string, { body: Buffer; etag: string }>>();
  const requests: LiteralS3['requests'] = [];
  const pageSize = options.pageSize ?? 1000;
  const state: LiteralS3 = {
    endpoint: '',
    buckets,
    requests,
    intercept: null,
    put(bucket, key, body) {
      const bytes = typeof body === 'string' ? Buffer.from(body) : body;
      if (!buckets.has(bucket)) buckets.set(bucket, new Map());
      buckets.get(bucket)!.set(key, { body: bytes, etag: `"${createHash('md5').update(bytes).digest('hex')}"` });
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };

  const list = (res: ServerResponse, bucket: string, objects: Map<string, { body: Buffer; etag: string }>, query: URLSearchParams) => {
    if (options.rejectEncodingType && query.has('encoding-type')) return error(res, 400, 'InvalidArgument');
    const v2 = query.get('list-type') === '2' && !options.v1Only;
    const prefix = query.get('prefix') ?? '';
    const max = Math.min(pageSize, Number(query.get('max-keys') ?? 1000));
    // Keys in UTF-8 byte order, as S3 lists them.
    const keys = [...objects.keys()].filter((k) => k.startsWith(prefix)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    const token = query.get('continuation-token');
    const after = v2 ? (token !== null ? Buffer.from(token, 'base64').toString() : (query.get('start-after') ?? '')) : (query.get('marker') ?? '');
    const rest = keys.filter((k) => Buffer.compare(Buffer.from(k), Buffer.from(after)) > 0);
    const page = rest.slice(0, max);
    const truncated = rest.length > page.length;
    // encoding-type=url: keys (and prefix, markers) form-encoded, a space as `+` (as AWS does);
    // without it, keys as they are, a carriage return included (XML readers turn it into \n).
    const url = query.get('encoding-type') === 'url';
    const enc = (k: string) => xml(url ? encodeURIComponent(k).replace(/%20/g, '+') : k);
    const contents = page.map((k) => `<Contents><Key>${enc(k)}</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>${xml(objects.get(k)!.etag)}</ETag><Size>${objects.get(k)!.body.length}</Size><StorageClass>STANDARD</StorageClass></Contents>`).join('');
    const paging = v2
      ? `<KeyCount>${page.length}</KeyCount>${truncated ? `<NextContinuationToken>${Buffer.from(page.at(-1)!).toString('base64')}</NextContinuationToken>` : ''}`
      : `<Marker>${enc(after)}</Marker>`; // V1 gives NextMarker only with a delimiter: the next marker is the last key
    const body = `<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>${bucket}</Name><Prefix>${enc(prefix)}</Prefix>${url ? '<EncodingType>url</EncodingType>' : ''}${paging}<MaxKeys>${max}</MaxKeys><IsTruncated>${truncated}</IsTruncated>${contents}</ListBucketResult>`;
    res.writeHead(200, { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  };

  const server: Server = createServer((req, res) => {
    const raw = req.url ?? '/';
    requests.push({ method: req.method ?? '?', url: raw, headers: { ...req.headers } });
    const q = raw.indexOf('?');
    const path = q < 0 ? raw : raw.slice(0, q);
    const query = new URLSearchParams(q < 0 ? '' : raw.slice(q + 1));
    const slash = path.indexOf('/', 1);
    const bucket = decodeURIComponent(slash < 0 ? path.slice(1) : path.slice(1, slash));
    const key = slash < 0 || slash === path.length - 1 ? null : decodeURIComponent(path.slice(slash + 1));
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (state.intercept?.(req, res, { bucket, key, body: Buffer.concat(chunks) })) return;
      const head = req.method === 'HEAD';
      const objects = buckets.get(bucket);
      if (!objects) return error(res, 404, 'NoSuchBucket', head);
      if (key === null) {
        if (req.method === 'GET') return list(res, bucket, objects, query);
        res.writeHead(200, { 'x-amz-bucket-region': 'us-east-1', 'Content-Length': 0 });
        return res.end();
      }
      if (req.method === 'PUT') {
        state.put(bucket, key, Buffer.concat(chunks));
        res.writeHead(200, { ETag: objects.get(key)!.etag, 'Content-Length': 0 });
        return res.end();
      }
      if (req.method === 'DELETE') {
        objects.delete(key);
        res.writeHead(204);
        return res.end();
      }
      const object = objects.get(key);
      if (!object) return error(res, 404, 'NoSuchKey', head);
      if (req.headers['if-match'] !== undefined && req.headers['if-match'] !== object.etag) return error(res, 412, 'PreconditionFailed', head);
      let body = object.body;
      const headers: Record<string, string | number> = { ETag: object.etag, 'Last-Modified': 'Thu, 01 Jan 2026 00:00:00 GMT', 'Content-Type': 'application/octet-stream' };
      let status = 200;
      const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
      if (range) {
        const start = Number(range[1]);
        if (start >= body.length) return error(res, 416, 'InvalidRange', head);
        const end = Math.min(range[2] ? Number(range[2]) : body.length - 1, body.length - 1);
        headers['Content-Range'] = `bytes ${start}-${end}/${body.length}`;
        body = body.subarray(start, end + 1);
        status = 206;
      }
      headers['Content-Length'] = body.length;
      res.writeHead(status, headers);
      res.end(head ? undefined : body);
    });
  });
  if (options.noContinue) server.on('checkContinue', (req, res) => server.emit('request', req, res));
  if (options.onRequest) server.prependListener('request', options.onRequest);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  state.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}
