/**
 * Inputs for the observe and ui tests, made here (no corpus needed): an N-page PDF, and a JSONL
 * chat export with one short conversation and one long one whose chunk does not fit a small
 * engine context (set the emulator's `maxModelLen` to SMALL_CONTEXT and IMAGE_SIZE to SMALL_IMAGE), so one
 * unit completes and one fails for good with CONTEXT_TOO_LONG.
 */
import { writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';

/** A context length that page prompts at IMAGE_SIZE 448 fit in and the long chunk does not. */
export const SMALL_CONTEXT = 1500;
/** Page size that keeps a page prompt well inside SMALL_CONTEXT (about 350 image tokens). */
export const SMALL_IMAGE = 448;

export async function writeInputs(dir: string, options: { pages: number; tag: string }): Promise<{ pdf: string; chat: string }> {
  const pdf = join(dir, `${options.tag}.pdf`);
  await writeFile(pdf, numberedPdf(options.pages));
  const words = ['river', 'stone', 'maple', 'harbor', 'copper', 'lantern', 'meadow', 'signal', 'orbit', 'quartz', 'willow', 'ember'];
  // About 3000 tokens in one message: one chunk (the default budget is 3500), too long for SMALL_CONTEXT.
  const long = Array.from({ length: 2600 }, (_, i) => `${words[(i * 5) % words.length]}${i % 97}`).join(' ');
  const lines = [
    { id: `${options.tag}-short`, title: 'A short one', messages: [{ role: 'user', content: 'What is a lantern for?' }, { role: 'assistant', content: 'Light in the dark.' }] },
    { id: `${options.tag}-long`, title: 'A very long one', messages: [{ role: 'user', content: long }, { role: 'assistant', content: 'Noted.' }] },
  ];
  const chat = join(dir, `${options.tag}.jsonl`);
  await writeFile(chat, `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`);
  return { pdf, chat };
}

/** Prometheus exposition text → its samples. */
export function parseMetrics(text: string): Array<{ name: string; labels: Record<string, string>; value: number }> {
  const out: Array<{ name: string; labels: Record<string, string>; value: number }> = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparseable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** The sum of the samples of `name` whose labels include `match`. */
export function sumOf(samples: ReturnType<typeof parseMetrics>, name: string, match: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

/**
 * One HTTP request with exactly the headers given (fetch will not send a Host of our choosing,
 * nor leave it out): `host: null` sends none at all.
 */
export function rawRequest(
  url: string,
  options: { method?: string; headers?: Record<string, string>; host?: string | null; body?: string } = {},
): Promise<{ status: number; text: string }> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: target.hostname.replace(/^\[|\]$/g, ''),
        port: target.port,
        path: `${target.pathname}${target.search}`,
        method: options.method ?? 'GET',
        setHost: options.host === undefined,
        headers: { ...(typeof options.host === 'string' ? { host: options.host } : {}), ...options.headers, ...(options.body !== undefined ? { 'content-length': String(Buffer.byteLength(options.body)) } : {}) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}
