/**
 * The emulator as a process: `node src/emulator/main.ts` and `docbatch engine` (commander) print
 * their URL, serve, and exit 0 on SIGTERM; bad flags exit 2. Plus the flag table itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { optionsFromFlags } from '../../src/emulator/flags.ts';
import { EMULATOR_DEFAULTS } from '../../src/emulator/index.ts';
import { call, newAgent } from './helpers.ts';

const root = resolve(import.meta.dirname, '../..');
const node = resolve(root, 'node_modules/.bin/node');
const agent = newAgent();
const children = new Set<ChildProcess>();

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await agent.close();
});

function run(script: string, args: string[]): { child: ChildProcess; firstLine: Promise<string>; output: () => string } {
  const child = spawn(node, [resolve(root, script), ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const firstLine = new Promise<string>((ok, fail) => {
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) ok(out.slice(0, nl));
    });
    child.on('exit', (code) => fail(new Error(`exited ${code} before printing a URL: ${err}`)));
  });
  return { child, firstLine, output: () => out + err };
}

async function exitCode(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  const [code] = await once(child, 'exit');
  return code as number | null;
}

describe('as a process', () => {
  it('src/emulator/main.ts prints its URL, serves, and exits 0 on SIGTERM', async () => {
    const p = run('src/emulator/main.ts', ['--port', '0', '--speed', '50', '--model', 'test/model']);
    const url = await p.firstLine;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const models = await call(agent, `${url}/v1/models`);
    expect(models.json.data[0].id).toBe('test/model');
    p.child.kill('SIGTERM');
    expect(await exitCode(p.child)).toBe(0);
  });

  it('docbatch engine (commander) takes the same flags, e.g. --like ollama', async () => {
    const p = run('test/emulator/fixtures/engine-cli.ts', ['--port', '0', '--like', 'ollama', '--max-pending', '7', '--oom-at', '3']);
    const url = await p.firstLine;
    expect((await call(agent, `${url}/health`)).status).toBe(404);
    const faults = await call(agent, `${url}/emulator/faults`);
    expect(faults.json).toMatchObject({ errorStyle: 'ollama', noMetrics: true, maxPending: 7, oomAtConcurrentImages: 3 });
    p.child.kill('SIGINT');
    expect(await exitCode(p.child)).toBe(0);
  });

  it('both parsers take the answer flags, --reject-match repeated', async () => {
    const args = ['--port', '0', '--reject-match', '<!-- page 2 -->', '--reject-match', '<!-- page 5 -->', '--text-only', '--rpm', '5', '--cutoff', '0.25', '--alter-fields', '0.1'];
    for (const script of ['src/emulator/main.ts', 'test/emulator/fixtures/engine-cli.ts']) {
      const p = run(script, args);
      const url = await p.firstLine;
      const faults = await call(agent, `${url}/emulator/faults`);
      expect(faults.json).toMatchObject({ reject: { matchText: ['<!-- page 2 -->', '<!-- page 5 -->'] }, rateLimit: { rpm: 5 }, cutoff: 0.25, alterFields: 0.1 });
      const image = 'data:image/png;base64,iVBORw0KGgo=';
      const r = await call(agent, `${url}/v1/chat/completions`, { body: { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: image } }] }] } });
      expect(r.json.error.message).toBe('docbatch/emulated-vl is not a multimodal model');
      p.child.kill('SIGTERM');
      expect(await exitCode(p.child)).toBe(0);
    }
  });

  it('docbatch engine on a port in use exits 2 saying so, not with a stack trace', async () => {
    const taken = createServer();
    await new Promise<void>((ok) => taken.listen(0, '127.0.0.1', ok));
    const port = (taken.address() as AddressInfo).port;
    try {
      const p = run('test/emulator/fixtures/engine-cli.ts', ['--port', String(port)]);
      p.firstLine.catch(() => {});
      expect(await exitCode(p.child)).toBe(2);
      expect(p.output()).toContain(`CONFIG_INVALID: docbatch engine: 127.0.0.1:${port} is in use`);
      expect(p.output()).not.toMatch(/unexpected error|\n\s+at /);
    } finally {
      taken.close();
    }
  });

  it('exits 2 naming the flag on a bad value', async () => {
    for (const script of ['src/emulator/main.ts', 'test/emulator/fixtures/engine-cli.ts']) {
      const p = run(script, ['--port', '0', '--oom-mode', 'sometimes']);
      p.firstLine.catch(() => {});
      expect(await exitCode(p.child)).toBe(2);
      expect(p.output()).toContain('oom-mode');
    }
  });
});

describe('flags', () => {
  it('map to options, with vLLM port 8000 by default, presets first and flags over them', () => {
    expect(optionsFromFlags({}).port).toBe(8000);
    const o = optionsFromFlags({ like: 'hf', 'oom-at': '4', 'oom-mode': 'death', 'hang-every': '3', 'hang-match': 'X', 'restart-delay': '250', 'keep-alive-on-death': true, speed: '2.5' });
    expect(o).toMatchObject({ oomAtConcurrentImages: 4, oomMode: 'death', errorStyle: 'flat', hang: { every: 3, matchText: 'X' }, restartDelayMs: 250, keepAliveOnDeath: true, speed: 2.5 });
    expect(o.maxNumSeqs).toBe(EMULATOR_DEFAULTS.maxNumSeqs);
    expect(() => optionsFromFlags({ 'max-num-seqs': 'many' })).toThrow(/--max-num-seqs must be an integer/);
    expect(() => optionsFromFlags({ 'max-num-seqs': '0' })).toThrow(/maxNumSeqs/);
  });
});
