/**
 * Which requests docbatch's HTTP servers (the dashboard, a worker's /metrics) answer at all,
 * before any credentials are looked at. Pure functions over request headers; the servers call
 * them first thing and answer 4xx when they refuse.
 *
 * Host, on every request. A web page can point a name it controls at 127.0.0.1 (DNS
 * rebinding); the browser then connects to the loopback server, sends that name as Host, and
 * treats the answers as the page's own, so the page reads and drives a dashboard that has no
 * credentials because it is loopback only. A Host is accepted when it names this server:
 * `localhost`, a loopback address, the address bound to, any address of this machine when bound
 * to all of them (0.0.0.0 / ::) and then also this machine's host name, and the names the
 * operator lists (DASHBOARD_PUBLIC_NAMES / METRICS_PUBLIC_NAMES: names behind a proxy, `*.x` for
 * every name under x). The port is not compared: a rebinding page cannot choose the name.
 *
 * Origin and Sec-Fetch-Site, on every request that changes something (any method but GET, HEAD
 * and OPTIONS). Bull Board's API reads any body as JSON, so a plain HTML form on any site
 * (`enctype="text/plain"`, which needs no CORS preflight) could add jobs. Such a request is
 * refused when the browser says it comes from elsewhere: Sec-Fetch-Site other than
 * `same-origin`, or an Origin other than `http(s)://` + this request's Host (so another port of
 * localhost is elsewhere too). Its body, if it has one, must be `application/json`, which no form
 * can send without a preflight this server never grants. A client that sends neither header is
 * not a browser (curl, scripts) and is let through, to the credentials check.
 */
import { isIP } from 'node:net';
import { hostname as machineName, networkInterfaces } from 'node:os';

/** What a server answers to. */
export interface HostPolicy {
  /** The address the server is bound to (DASHBOARD_HOST, METRICS_HOST). */
  bind: string;
  /** Further names (and addresses) it is reached by, e.g. behind a proxy; `*.example.com` for every name under it. */
  publicNames: readonly string[];
}

/** A refusal: the status to answer and why, in a sentence. */
export interface Refusal {
  status: 400 | 403 | 415;
  reason: string;
}

/** The canonical host name of a Host header value (`name` or `name:port`), or null when it is not one. */
export function hostOf(header: string | undefined): string | null {
  if (header === undefined) return null;
  const value = header.trim();
  if (value === '' || /[\s/\\?#@]/.test(value)) return null;
  let url: URL;
  try {
    url = new URL(`http://${value}`);
  } catch {
    return null;
  }
  return unbracket(url.hostname).replace(/\.$/, '');
}

function unbracket(h: string): string {
  return h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
}

/** An address or name as URL parsing writes it (IPv4 dotted, IPv6 compressed, lower case). */
function canonical(name: string): string | null {
  return hostOf(isIP(name) === 6 ? `[${name}]` : name);
}

/** 127.0.0.0/8, ::1, `localhost` and IPv4-mapped loopback: reachable from this machine only. */
export function isLoopback(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[|\]$/g, '');
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || /^::ffff:127\./.test(h) || h === '0:0:0:0:0:0:0:1' || /^::ffff:7f/.test(h);
  return false;
}

function isWildcard(bind: string): boolean {
  const b = unbracket(bind.trim());
  return b === '' || b === '0.0.0.0' || b === '::' || b === '0:0:0:0:0:0:0:0';
}

/** Every address of this machine's interfaces, canonical. */
function ownAddresses(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      const c = canonical(a.address.split('%')[0] ?? a.address); // drop an IPv6 zone
      if (c) out.add(c);
    }
  }
  return out;
}

/** True when the Host header names this server under `policy`. */
export function hostAllowed(header: string | undefined, policy: HostPolicy): boolean {
  const host = hostOf(header);
  if (host === null) return false;
  if (host === 'localhost' || isLoopback(host)) return true;
  const bind = canonical(policy.bind);
  if (bind !== null && host === bind) return true;
  for (const raw of policy.publicNames) {
    const name = raw.trim().toLowerCase();
    if (name.startsWith('*.')) {
      if (host.endsWith(name.slice(1)) && host.length > name.length - 1) return true;
    } else if (canonical(name) === host) return true;
  }
  if (isWildcard(policy.bind)) {
    if (isIP(host) !== 0) return ownAddresses().has(host);
    const me = machineName().toLowerCase();
    return host === me || host === me.split('.')[0];
  }
  return false;
}

/** The refusal for a request whose Host is not this server's, or null. */
export function hostRefusal(header: string | undefined, policy: HostPolicy, setting: string): Refusal | null {
  if (header === undefined || header.trim() === '') return { status: 400, reason: 'the request has no Host header' };
  if (hostAllowed(header, policy)) return null;
  return {
    status: 403,
    reason: `this server does not answer to that Host name (a defence against DNS rebinding); if it is reached by that name, list it in ${setting}`,
  };
}

/** Request headers the cross-origin check reads (lower-case names, undefined when absent). */
export interface WriteRequest {
  method: string;
  host: string | undefined;
  origin: string | undefined;
  fetchSite: string | undefined;
  contentType: string | undefined;
  /** True when the request carries a body (Content-Length above 0, or Transfer-Encoding). */
  hasBody: boolean;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The refusal for a request that changes something from another site, or with a body that is not JSON; else null. */
export function writeRefusal(r: WriteRequest): Refusal | null {
  if (SAFE_METHODS.has(r.method.toUpperCase())) return null;
  if (r.fetchSite !== undefined && r.fetchSite.toLowerCase() !== 'same-origin') {
    return { status: 403, reason: `a request that changes something must come from the dashboard's own pages (Sec-Fetch-Site: ${r.fetchSite.slice(0, 20)})` };
  }
  if (r.origin !== undefined && !sameOrigin(r.origin, r.host)) {
    return { status: 403, reason: "a request that changes something must come from the dashboard's own pages (its Origin is another site)" };
  }
  if (r.hasBody) {
    const type = (r.contentType ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json') return { status: 415, reason: 'a request body must be JSON (Content-Type: application/json)' };
  }
  return null;
}

function sameOrigin(origin: string, host: string | undefined): boolean {
  if (host === undefined) return false;
  let o: URL;
  let h: URL;
  try {
    o = new URL(origin); // "null" (sandboxed frames, file:) throws
    h = new URL(`http://${host.trim()}`);
  } catch {
    return false;
  }
  if (o.protocol !== 'http:' && o.protocol !== 'https:') return false;
  // The Host of a request sent by https:// carries no port when it is 443, and Origin neither.
  const port = (u: URL, scheme: string) => u.port || (scheme === 'https:' ? '443' : '80');
  return o.hostname === h.hostname && port(o, o.protocol) === port(h, o.protocol);
}
