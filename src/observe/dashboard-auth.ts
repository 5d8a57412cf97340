/**
 * Who may see the dashboard. The dashboard is Redis access (it retries, removes and reads jobs,
 * and job data point at documents), so it binds to loopback by default and refuses to listen
 * anywhere else without credentials: HTTP basic auth (DASHBOARD_USER / DASHBOARD_PASSWORD) or a
 * bearer token (DASHBOARD_TOKEN). When credentials are set they guard every route. A read token
 * (DASHBOARD_READ_TOKEN) opens only the figures (the dashboard lists which): what a scraper or an
 * autoscaler holds cannot retry or remove jobs, or read documents.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { ConfigError } from '../errors.ts';
import { isLoopback } from './host-guard.ts';

export { isLoopback };

export interface DashboardCredentials {
  user?: string | undefined;
  password?: string | undefined;
  token?: string | undefined;
  /** Opens the figures only (readAuthorized). */
  readToken?: string | undefined;
}

/** Any credential is set: every route then needs one. */
export function hasCredentials(c: DashboardCredentials): boolean {
  return fullAccess(c) || Boolean(c.readToken);
}

function fullAccess(c: DashboardCredentials): boolean {
  return Boolean((c.user && c.password) || c.token);
}

/** Throws CONFIG_INVALID (exit 2) when `host` is beyond loopback and no credentials are set. */
export function assertSafeBinding(host: string, credentials: DashboardCredentials): void {
  if (isLoopback(host) || hasCredentials(credentials)) return;
  throw new ConfigError(
    `refusing to serve the dashboard on ${host} without credentials: anyone who reaches it can retry, remove and read jobs (it is Redis access). ` +
      'Set DASHBOARD_USER and DASHBOARD_PASSWORD (basic auth) or DASHBOARD_TOKEN (bearer), or bind to 127.0.0.1 (DASHBOARD_HOST / --host).',
  );
}

/** Compares in time independent of where the strings differ (and of their lengths). */
export function safeEqual(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** True when the `Authorization` header carries the configured basic credentials or token. */
export function authorized(header: string | undefined, c: DashboardCredentials): boolean {
  if (!hasCredentials(c)) return true;
  if (!header || !fullAccess(c)) return false;
  const space = header.indexOf(' ');
  if (space < 0) return false;
  const scheme = header.slice(0, space).toLowerCase();
  const value = header.slice(space + 1).trim();
  if (scheme === 'bearer' && c.token) return safeEqual(value, c.token);
  if (scheme === 'basic' && c.user && c.password) {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return false;
    // Both halves are always compared, so the time does not tell which one was wrong.
    const userOk = safeEqual(decoded.slice(0, colon), c.user);
    const passwordOk = safeEqual(decoded.slice(colon + 1), c.password);
    return userOk && passwordOk;
  }
  return false;
}

/** True when the `Authorization` header carries the read token (`Bearer <DASHBOARD_READ_TOKEN>`). */
export function readAuthorized(header: string | undefined, c: DashboardCredentials): boolean {
  if (!c.readToken || !header) return false;
  const match = /^bearer\s+(.+)$/i.exec(header.trim());
  return match !== null && safeEqual(match[1]!.trim(), c.readToken);
}

/** The `WWW-Authenticate` challenge for a refused request (basic first, so browsers prompt). */
export function challenge(c: DashboardCredentials): string {
  const schemes: string[] = [];
  if (c.user && c.password) schemes.push('Basic realm="docbatch dashboard", charset="UTF-8"');
  if (c.token || c.readToken) schemes.push('Bearer realm="docbatch dashboard"');
  return schemes.join(', ');
}
