/** Helpers for the emulator tests: real HTTP over undici, real images made with sharp. */
import sharp from 'sharp';
import { Agent, request, type Dispatcher } from 'undici';
import { afterAll } from 'vitest';
import { startEmulator, type Emulator, type EmulatorOptions } from '../../src/emulator/index.ts';

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: any;
}

/** One agent per test file, closed in afterAll, so no socket outlives the file. */
export function newAgent(): Agent {
  return new Agent({ keepAliveTimeout: 2000, connections: 512 });
}

export async function call(
  agent: Dispatcher,
  url: string,
  options: { method?: 'GET' | 'POST'; body?: unknown; headers?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<Reply> {
  const res = await request(url, {
    dispatcher: agent,
    method: options.method ?? (options.body === undefined ? 'GET' : 'POST'),
    headers: { 'content-type': 'application/json', ...options.headers },
    body: options.body === undefined ? undefined : typeof options.body === 'string' ? options.body : JSON.stringify(options.body),
    signal: options.signal,
  });
  const text = await res.body.text();
  let json: any;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.statusCode, headers: res.headers, text, json };
}

/** A PNG (or other format) of the given size, with pixels that depend on `seed`. */
export async function makeImage(width: number, height: number, format: 'png' | 'jpeg' | 'webp' = 'png', seed = 0): Promise<Buffer> {
  const img = sharp({ create: { width, height, channels: 3, background: { r: (seed * 37) % 256, g: (seed * 91) % 256, b: 200 } } });
  return img.toFormat(format).toBuffer();
}

export function dataUrl(bytes: Buffer, mime = 'image/png'): string {
  return `data:${mime};base64,${bytes.toString('base64')}`;
}

export function chatBody(text: string, images: string[] = [], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    messages: [
      { role: 'system', content: 'You are a careful reader.' },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'Transcribe the page.' },
          ...images.map((url) => ({ type: 'image_url', image_url: { url } })),
          { type: 'text', text },
        ],
      },
    ],
    ...extra,
  };
}

export async function waitFor<T>(what: string, probe: () => T | Promise<T>, timeoutMs = 10_000, everyMs = 20): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Parses Prometheus text into `name{labels}` → value, ignoring comments. */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`bad metrics line: ${line}`);
    out.set(`${m[1]}${m[2] ?? ''}`, m[3] === '+Inf' ? Infinity : Number(m[3]));
  }
  return out;
}

/** The value of a metric by name, whatever its labels (the first sample). */
export function metric(samples: Map<string, number>, name: string, labelPart = ''): number | undefined {
  for (const [key, value] of samples) {
    if ((key === name || key.startsWith(`${name}{`)) && key.includes(labelPart)) return value;
  }
  return undefined;
}

/**
 * An HTTP agent and an emulator starter for one test file; both are closed after the file's
 * tests (no server or socket left behind).
 */
export function emulatorsForFile(): { agent: Agent; emulator: (options: Partial<EmulatorOptions>) => Promise<Emulator> } {
  const agent = newAgent();
  const started: Emulator[] = [];
  afterAll(async () => {
    await Promise.all(started.map((e) => e.close()));
    await agent.close();
  });
  return {
    agent,
    emulator: async (options) => {
      const e = await startEmulator(options);
      started.push(e);
      return e;
    },
  };
}
