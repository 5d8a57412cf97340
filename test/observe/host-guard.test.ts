/**
 * Who docbatch's HTTP servers answer before credentials (src/observe/host-guard.ts): the Host
 * rules, including binding to every address (then this machine's own addresses and host name),
 * the cross-origin rules for requests that change something, and a worker's metrics server over
 * real HTTP, which must not hand /metrics or /health to a rebound name.
 */
import { hostname, networkInterfaces } from 'node:os';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { hostAllowed, hostOf, writeRefusal, type WriteRequest } from '../../src/observe/host-guard.ts';
import { startMetricsServer, type MetricsServer } from '../../src/observe/metrics-server.ts';
import { rawRequest } from './fixtures.ts';

const servers: MetricsServer[] = [];
afterAll(async () => {
  for (const s of servers) await s.close();
});

describe('Host', () => {
  it('reads the name of a Host header, canonical, or null for what is not one', () => {
    expect(hostOf('LocalHost:3000')).toBe('localhost');
    expect(hostOf('[::1]:3000')).toBe('::1');
    expect(hostOf('127.1')).toBe('127.0.0.1');
    expect(hostOf('example.com.')).toBe('example.com');
    for (const bad of [undefined, '', 'a b', 'u@h', 'h/x', 'h?x', 'h#x', 'h:port', '[::1', '::1']) expect(hostOf(bad), String(bad)).toBeNull();
  });

  it('bound to loopback: localhost and loopback addresses only, plus the listed names', () => {
    const policy = { bind: '127.0.0.1', publicNames: ['board.example', '*.corp.example'] };
    for (const h of ['localhost:1', '127.0.0.1', '127.0.0.2:9', '[::1]:3000', '[::ffff:127.0.0.1]', 'board.example', 'x.corp.example']) expect(hostAllowed(h, policy), h).toBe(true);
    for (const h of ['rebind.example', 'corp.example', 'xcorp.example', '10.0.0.1', 'board.example.evil', hostname()]) expect(hostAllowed(h, policy), h).toBe(false);
  });

  it('bound to a name or an address: that one too', () => {
    expect(hostAllowed('dash.internal:8080', { bind: 'dash.internal', publicNames: [] })).toBe(true);
    expect(hostAllowed('10.1.2.3', { bind: '10.1.2.3', publicNames: [] })).toBe(true);
    expect(hostAllowed('10.1.2.4', { bind: '10.1.2.3', publicNames: [] })).toBe(false);
  });

  it("bound to every address: this machine's addresses and host name, nothing else", () => {
    const own = Object.values(networkInterfaces()).flatMap((l) => l ?? []).map((a) => (a.family === 'IPv6' ? `[${a.address.split('%')[0]}]` : a.address));
    expect(own.length).toBeGreaterThan(0);
    for (const bind of ['0.0.0.0', '::']) {
      const policy = { bind, publicNames: [] };
      for (const h of own) expect(hostAllowed(`${h}:3000`, policy), h).toBe(true);
      expect(hostAllowed(hostname(), policy)).toBe(true);
      for (const h of ['203.0.113.7', 'rebind.example', `${hostname()}.attacker.example`]) expect(hostAllowed(h, policy), h).toBe(false);
    }
  });
});

describe('requests that change something', () => {
  const base: WriteRequest = { method: 'POST', host: '127.0.0.1:3000', origin: undefined, fetchSite: undefined, contentType: 'application/json', hasBody: true };
  const refused = (r: Partial<WriteRequest>) => writeRefusal({ ...base, ...r })?.status ?? null;

  it('GET, HEAD and OPTIONS are never checked', () => {
    for (const method of ['GET', 'HEAD', 'OPTIONS', 'get']) expect(refused({ method, origin: 'http://evil.example', fetchSite: 'cross-site', contentType: 'text/plain' })).toBeNull();
  });

  it('from its own origin: accepted (http or https, default ports)', () => {
    expect(refused({ origin: 'http://127.0.0.1:3000', fetchSite: 'same-origin' })).toBeNull();
    expect(refused({ host: 'dash.example.com', origin: 'https://dash.example.com' })).toBeNull();
    expect(refused({ host: 'dash.example.com:80', origin: 'http://dash.example.com' })).toBeNull();
    // The scheme is not compared: behind a TLS proxy the page is https://, the Host the same name.
    expect(refused({ host: '127.0.0.1:3000', origin: 'https://127.0.0.1:3000' })).toBeNull();
    expect(refused({ method: 'PUT', hasBody: false, contentType: undefined, origin: 'http://127.0.0.1:3000' })).toBeNull();
  });

  it('from anywhere else: 403', () => {
    expect(refused({ origin: 'http://127.0.0.1:3001' })).toBe(403); // another port is another origin
    expect(refused({ origin: 'http://localhost:3000' })).toBe(403); // another name too
    expect(refused({ origin: 'null' })).toBe(403);
    expect(refused({ origin: 'file:///x' })).toBe(403);
    expect(refused({ fetchSite: 'same-site' })).toBe(403);
    expect(refused({ fetchSite: 'none' })).toBe(403);
    expect(refused({ method: 'DELETE', hasBody: false, fetchSite: 'cross-site' })).toBe(403);
  });

  it('a body that is not JSON: 415 (what a form can send without a preflight)', () => {
    for (const contentType of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', undefined]) {
      expect(refused({ contentType }), String(contentType)).toBe(415);
    }
    expect(refused({ contentType: 'Application/JSON; charset=utf-8' })).toBeNull();
  });
});

describe("a worker's metrics server", () => {
  it('refuses a Host that is not its own (DNS rebinding) and answers its own and the listed ones', async () => {
    const server = await startMetricsServer({ registry: new Registry(), checks: {}, port: 0, publicNames: ['gpu0.metrics.internal'] });
    servers.push(server);
    for (const path of ['/metrics', '/health', '/']) {
      const res = await rawRequest(`${server.url}${path}`, { host: `rebind.attacker.example:${server.port}` });
      expect(res.status, path).toBe(403);
      expect(res.text).toMatch(/METRICS_PUBLIC_NAMES/);
    }
    for (const host of [`127.0.0.1:${server.port}`, `localhost:${server.port}`, 'gpu0.metrics.internal:9464']) {
      expect((await rawRequest(`${server.url}/metrics`, { host })).status, host).toBe(200);
    }
    expect((await rawRequest(`${server.url}/health`, { host: null })).status).toBeOneOf([400, 403]);
  });
});
