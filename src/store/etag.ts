/**
 * ETags as stores and what stands in front of them write them. One version of an object may be
 * written `"9b2c…"` (AWS, quoted as HTTP says), `9b2c…` or `9B2C…` (stores and gateways that
 * drop the quotes or write their hex in capitals on some answers), or `W/"9b2c…"` (a proxy that
 * transforms the body, as nginx's gzip does, weakens it). A multipart upload's `"…-3"` is an
 * ETag like any other here: docbatch compares ETags with ETags, never with an MD5 of the bytes.
 *
 * - `sameETag`: two answers name the same version (quotes, `W/` and case set aside).
 * - `ifMatch`: the value to send in If-Match: strong and quoted (RFC 9110 13.1.1: If-Match
 *   compares strongly, so a weak tag never matches), its characters as the store wrote them.
 */

function opaque(etag: string): string {
  return etag.trim().replace(/^W\//i, '').replace(/^"(.*)"$/s, '$1');
}

export function sameETag(a: string, b: string): boolean {
  return opaque(a).toLowerCase() === opaque(b).toLowerCase();
}

export function ifMatch(etag: string): string {
  return `"${opaque(etag)}"`;
}
