/**
 * A real S3-protocol server for the tests: s3rver (an S3 server in Node, storing objects in a
 * temp folder) on 127.0.0.1, port 0, path-style, with the credentials it accepts (S3RVER). Never
 * a mock: the AWS SDK talks HTTP to it, signatures checked. `flakyProxy` puts a scripted HTTP
 * proxy in front of it that answers chosen requests with throttling or 5xx, to show retries.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, request, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';

export const S3_KEY = 'S3RVER';

export interface S3Server {
  endpoint: string;
  /** The environment a docbatch process needs to reach it (merge BLOB_DIR/OUT_DIR in). */
  env: Record<string, string>;
  /** A client of the test's own (made with explicit settings, not the environment). */
  client: S3Client;
  createBucket(name: string): Promise<void>;
  put(bucket: string, key: string, body: Buffer | string): Promise<void>;
  get(bucket: string, key: string): Promise<Buffer | null>;
  keys(bucket: string, prefix?: string): Promise<string[]>;
  close(): Promise<void>;
}

/** A client for `endpoint` with s3rver's credentials (or others, to be refused). */
export function testClient(endpoint: string, options: { key?: string; maxAttempts?: number } = {}): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    maxAttempts: options.maxAttempts ?? 3,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    credentials: { accessKeyId: options.key ?? S3_KEY, secretAccessKey: options.key ?? S3_KEY },
  });
}

export async function startS3Server(buckets: string[] = []): Promise<S3Server> {
  const directory = await mkdtemp(join(tmpdir(), 'docbatch-s3rver-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: buckets.map((name) => ({ name })) });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  const client = testClient(endpoint);
  let closed = false;
  return {
    endpoint,
    env: { AWS_ENDPOINT_URL: endpoint, AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: S3_KEY, AWS_SECRET_ACCESS_KEY: S3_KEY, S3_FORCE_PATH_STYLE: 'true' },
    client,
    async createBucket(name) {
      await client.send(new CreateBucketCommand({ Bucket: name }));
    },
    async put(bucket, key, body) {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: typeof body === 'string' ? Buffer.from(body) : body }));
    },
    async get(bucket, key) {
      try {
        const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        return Buffer.from(await res.Body!.transformToByteArray());
      } catch (err) {
        if ((err as { name?: string }).name === 'NoSuchKey') return null;
        throw err;
      }
    },
    async keys(bucket, prefix = '') {
      const out: string[] = [];
      let token: string | undefined;
      do {
        const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }));
        out.push(...(page.Contents ?? []).map((o) => o.Key!));
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      return out.sort();
    },
    async close() {
      if (closed) return;
      closed = true;
      client.destroy();
      server.httpServer.closeAllConnections();
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/** Sets the process's AWS_* / S3_* variables for code that makes its client from the settings; returns the undo. */
export function useS3Env(env: Record<string, string>): () => void {
  const before = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  return () => {
    for (const [k, v] of Object.entries(before)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
}

export type Fault =
  | {
      status: number;
      /** The S3 error code in the XML body (SlowDown, InternalError, ServiceUnavailable ...). */
      code: string;
    }
  /** The real answer, its body cut off after this many bytes (a connection reset mid-body). */
  | { cutAfterBytes: number }
  /** No answer at all: the request is read and left hanging (a stuck load balancer). */
  | { stall: true }
  /** The real answer without these headers (lowercase names): a gateway that drops Content-Length. */
  | { dropHeaders: string[] }
  /** The real answer, once `before` has run (the object replaced between two requests, say). */
  | { before: () => Promise<void> };

export interface FlakyProxy {
  endpoint: string;
  /** The next requests (of `method`, any when absent) get these faults, one each, in order. */
  failNext(faults: Fault[], method?: string): void;
  /** Every request gets this fault until called again with null (an outage). */
  outage(fault: Fault | null): void;
  /** Requests seen, by method, and faults answered. */
  stats(): { requests: Record<string, number>; faulted: number };
  /** The last requests seen (up to 100), oldest first: method, path and headers as sent. */
  seen(): Array<{ method: string; url: string; headers: IncomingHttpHeaders }>;
  close(): Promise<void>;
}

/** An HTTP proxy in front of `target` answering scripted faults; everything else passes through unchanged (the Host header too, so signatures hold). */
export async function flakyProxy(target: string): Promise<FlakyProxy> {
  const upstream = new URL(target);
  const queue: Array<Fault & { method?: string }> = [];
  let down: Fault | null = null;
  const requests: Record<string, number> = {};
  const seen: Array<{ method: string; url: string; headers: IncomingHttpHeaders }> = [];
  let faulted = 0;
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    requests[req.method ?? '?'] = (requests[req.method ?? '?'] ?? 0) + 1;
    seen.push({ method: req.method ?? '?', url: req.url ?? '', headers: { ...req.headers } });
    if (seen.length > 100) seen.shift();
    const i = down ? -1 : queue.findIndex((f) => f.method === undefined || f.method === req.method);
    if (down || i >= 0) {
      const fault = down ?? queue.splice(i, 1)[0]!;
      faulted++;
      if ('stall' in fault) {
        req.resume();
        return;
      }
      if ('dropHeaders' in fault) {
        forward(req, res, fault.dropHeaders);
        return;
      }
      if ('before' in fault) {
        req.pause();
        fault.before().then(
          () => forward(req, res),
          () => res.destroy(),
        );
        return;
      }
      if ('cutAfterBytes' in fault) {
        const cut = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          let sent = 0;
          answer.on('data', (chunk: Buffer) => {
            if (sent >= fault.cutAfterBytes) return;
            const part = chunk.subarray(0, fault.cutAfterBytes - sent);
            sent += part.length;
            res.write(part);
            if (sent >= fault.cutAfterBytes) setTimeout(() => res.socket?.destroy(), 20);
          });
        });
        cut.on('error', () => res.destroy());
        req.pipe(cut);
        return;
      }
      req.resume();
      req.once('end', () => {
        const body = req.method === 'HEAD' ? '' : `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${fault.code}</Code><Message>injected by the test proxy</Message><RequestId>test</RequestId></Error>`;
        res.writeHead(fault.status, { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(body), Connection: 'close' });
        res.end(body);
      });
      return;
    }
    forward(req, res);
  });
  function forward(req: IncomingMessage, res: ServerResponse, drop: string[] = []): void {
    const out = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      const headers = Object.fromEntries(Object.entries(answer.headers).filter(([name]) => !drop.includes(name)));
      res.writeHead(answer.statusCode ?? 502, headers);
      res.flushHeaders(); // as the store sent them, even before a body that never comes (s3rver: a range of an empty object)
      answer.pipe(res);
    });
    out.on('error', () => res.destroy());
    req.pipe(out);
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    failNext(faults, method) {
      for (const f of faults) queue.push({ ...f, ...(method ? { method } : {}) });
    },
    outage(fault) {
      down = fault;
    },
    stats: () => ({ requests: { ...requests }, faulted }),
    seen: () => [...seen],
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
