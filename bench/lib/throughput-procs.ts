/**
 * The processes of bench/throughput.ts: `docbatch engine`, `docbatch worker`, `docbatch writer`
 * and `docbatch enqueue`, each started through bin/docbatch as a user would, with their logs in
 * files. Every process started here is stopped by its own pid (SIGTERM, then SIGKILL after a
 * grace period), never by name.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';

export const DOCBATCH = resolve(import.meta.dirname, '../../bin/docbatch');

export class Proc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  private stopping: Promise<number | null> | null = null;

  constructor(name: string, args: string[], env: Record<string, string>, logFile: string) {
    this.name = name;
    const log = createWriteStream(logFile);
    this.child = spawn(DOCBATCH, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stderr!.pipe(log);
    this.exited = once(this.child, 'exit').then(([code, signal]) => (code === null ? (signal === 'SIGKILL' ? 137 : 143) : (code as number)));
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** The first line the process prints on stdout (the engine's URL). */
  async firstLine(timeoutMs: number): Promise<string> {
    let buffered = '';
    const line = new Promise<string>((resolveLine, reject) => {
      this.child.stdout!.on('data', (chunk: Buffer) => {
        buffered += chunk.toString('utf8');
        const nl = buffered.indexOf('\n');
        if (nl >= 0) resolveLine(buffered.slice(0, nl).trim());
      });
      void this.exited.then((code) => reject(new Error(`${this.name} exited with ${code} before printing a line`)));
      setTimeout(() => reject(new Error(`${this.name} printed nothing within ${timeoutMs} ms`)), timeoutMs).unref();
    });
    return line;
  }

  /** All of stdout until exit, and the exit code. */
  async output(): Promise<{ code: number | null; stdout: string }> {
    let stdout = '';
    this.child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    const code = await this.exited;
    return { code, stdout };
  }

  /** SIGTERM (drain), SIGKILL after `graceMs`. Idempotent. */
  stop(graceMs = 15_000): Promise<number | null> {
    this.stopping ??= (async () => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) return this.exited;
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
      try {
        return await this.exited;
      } finally {
        clearTimeout(timer);
      }
    })();
    return this.stopping;
  }
}

/** A free TCP port on loopback (the worker's metrics server needs one we know in advance). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  server.close();
  await once(server, 'close');
  return port;
}

export interface EngineProc {
  proc: Proc;
  url: string;
}

export async function startEngine(speed: number, extra: string[], logDir: string): Promise<EngineProc> {
  const port = await freePort();
  const proc = new Proc('engine', ['engine', '--port', String(port), '--speed', String(speed), ...extra], {}, join(logDir, `engine-${port}.log`));
  const url = await proc.firstLine(30_000).catch(async (err: unknown) => {
    await proc.stop(1000);
    throw err;
  });
  return { proc, url };
}

/** Polls `url` until it answers 200 (a worker's metrics server is up once the worker started). */
export async function waitForUrl(url: string, timeoutMs: number, proc?: Proc): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (proc && (proc.child.exitCode !== null || proc.child.signalCode !== null)) throw new Error(`${proc.name} exited before ${url} answered`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.ok) return;
    } catch {
      // not up yet
    }
    if (performance.now() > deadline) throw new Error(`${url} did not answer within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
