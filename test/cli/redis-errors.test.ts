/**
 * Issue 14, errors people can read: a REDIS_URL that goes nowhere is one line on stderr with a
 * stable code and what to do, exit 2, in every verb that talks to Redis: nothing listens there,
 * the host is unknown, the password is wrong, what answers is not Redis, nothing answers in time.
 * No ioredis dump, no stack, no "unexpected error", no process left waiting.
 */
import { once } from 'node:events';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';

const VERBS: string[][] = [['status'], ['enqueue', 'samples/sample-report.pdf'], ['retry', 'd0123'], ['gc'], ['worker'], ['writer'], ['dashboard', '--port', '0']];

let closedPort: number;
let http: HttpServer;
let httpPort: number;
let silent: Server;
let silentPort: number;
const held = new Set<Socket>();

beforeAll(async () => {
  // A port nothing listens on: listen, note it, close.
  const probe = createServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  closedPort = (probe.address() as AddressInfo).port;
  await new Promise<void>((ok) => probe.close(() => ok()));
  // Something that is not Redis: an HTTP server.
  http = createHttpServer((_req, res) => res.end('hello'));
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  httpPort = (http.address() as AddressInfo).port;
  // Something that accepts and never answers (a stuck proxy, a firewall that swallows).
  silent = createServer((s) => {
    held.add(s);
    s.on('error', () => {});
  });
  silent.listen(0, '127.0.0.1');
  await once(silent, 'listening');
  silentPort = (silent.address() as AddressInfo).port;
});

afterAll(async () => {
  for (const s of held) s.destroy();
  await new Promise<void>((ok) => http.close(() => ok()));
  await new Promise<void>((ok) => silent.close(() => ok()));
});

/** What every case must look like: exit 2, one line on stderr with the code, nothing on stdout. */
function expectOneLine(r: { code: number | null; stdout: string; stderr: string }, code: string, what: RegExp): void {
  expect(r.code).toBe(2);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(new RegExp(`^docbatch: ${code}: `));
  expect(lines[0]).toMatch(what);
  expect(r.stderr).not.toMatch(/unexpected error|\n\s+at |ECONNREFUSED 127|MaxRetriesPerRequest/);
  expect(r.stdout).toBe('');
}

describe('a REDIS_URL that goes nowhere, in every verb', () => {
  const cases: Array<[string, () => string, string, RegExp]> = [
    ['connection refused', () => `redis://127.0.0.1:${closedPort}`, 'REDIS_UNREACHABLE', /nothing listens at 127\.0\.0\.1:\d+ \(connection refused\): start Redis there, or set REDIS_URL/],
    ['unknown host', () => 'redis://no-such-host.invalid:6379', 'REDIS_UNREACHABLE', /the host no-such-host\.invalid is not known/],
    ['wrong password (shown masked)', () => 'redis://ops:hunter2@127.0.0.1:6379', 'REDIS_AUTH_FAILED', /refused the user or password in REDIS_URL.*redis:\/\/ops:\*\*\*@127\.0\.0\.1:6379/],
    // An HTTP server answers 400 and hangs up: its answer, or only the hang-up, reaches the client first.
    ['not Redis', () => `redis://127.0.0.1:${httpPort}`, 'REDIS_UNREACHABLE', /is not Redis|closed the connection \(E[A-Z]+\): is it Redis/],
  ];
  for (const [name, url, code, what] of cases) {
    it(name, async () => {
      const results = await Promise.all(VERBS.map((verb) => runCli(verb, { REDIS_URL: url(), DOCBATCH_PREFIX: 'dbt-redis-errors', BLOB_DIR: '/nonexistent/blobs' }, { timeoutMs: 30_000 })));
      results.forEach((r, i) => {
        try {
          expectOneLine(r, code, what);
        } catch (err) {
          throw new Error(`docbatch ${VERBS[i]!.join(' ')}: ${(err as Error).message}`, { cause: err });
        }
        expect(r.stderr).not.toContain('hunter2');
      });
    }, 60_000);
  }

  it('nothing answers in time (checked once: it takes the 5 s limit)', async () => {
    const started = Date.now();
    const r = await runCli(['status'], { REDIS_URL: `redis://127.0.0.1:${silentPort}` }, { timeoutMs: 30_000 });
    expectOneLine(r, 'REDIS_UNREACHABLE', /no answer from 127\.0\.0\.1:\d+ within 5 s/);
    expect(Date.now() - started).toBeLessThan(20_000);
  }, 40_000);

  it('a URL without a password is shown as it is', async () => {
    const r = await runCli(['status'], { REDIS_URL: `redis://127.0.0.1:${closedPort}/2` });
    expectOneLine(r, 'REDIS_UNREACHABLE', new RegExp(`REDIS_URL is redis://127\\.0\\.0\\.1:${closedPort}/2\\)$`));
  });
});

describe('a REDIS_URL naming a database that cannot be used, in every verb', () => {
  // ioredis sent a database that is not a number as `SELECT NaN` and the process died with its
  // stack; one Redis does not have (the local one has the default 16) was refused in silence and
  // every command ran in database 0.
  const cases: Array<[string, string, RegExp]> = [
    ['not a number, in the path', 'redis://127.0.0.1:6379/abc', /setting REDIS_URL .*"redis:\/\/127\.0\.0\.1:6379\/abc" is invalid: the database .* must be a number, not "abc"$/],
    ['not a number, as ?db=', 'redis://127.0.0.1:6379?db=x', /is invalid: the database .* must be a number, not "x"$/],
    ['one Redis does not have', 'redis://127.0.0.1:6379/99', /REDIS_URL names database 99, which Redis at 127\.0\.0\.1:6379 refuses \(ERR DB index is out of range\)/],
  ];
  for (const [name, url, what] of cases) {
    it(name, async () => {
      const results = await Promise.all(VERBS.map((verb) => runCli(verb, { REDIS_URL: url, DOCBATCH_PREFIX: 'dbt-redis-errors', BLOB_DIR: '/nonexistent/blobs' }, { timeoutMs: 30_000 })));
      results.forEach((r, i) => {
        try {
          expectOneLine(r, 'CONFIG_INVALID', what);
        } catch (err) {
          throw new Error(`docbatch ${VERBS[i]!.join(' ')}: ${(err as Error).message}`, { cause: err });
        }
      });
    }, 60_000);
  }

  it('a database Redis has is used', async () => {
    const r = await runCli(['status'], { REDIS_URL: 'redis://127.0.0.1:6379/3', DOCBATCH_PREFIX: 'dbt-redis-errors' }, { timeoutMs: 30_000 });
    expect([r.code, r.stderr]).toEqual([0, '']);
  });
});
