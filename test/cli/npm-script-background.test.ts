/**
 * An npm script that starts docbatch in the background and goes on (`nohup docbatch engine … &`,
 * then other steps) means it to outlive the script. Its `sh -c` ends with the script, as npm's
 * does when npm is sent SIGTERM, and the process stopped ("npm, which started it, is gone").
 * A process npm's shell started in the background (its stdin not the shell's: POSIX gives an
 * asynchronous command /dev/null) is not npm's to stop. Real npm, real shell, real processes.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { BIN } from '../helpers/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'docbatch-npm-bg-'));
let pid: number | null = null;
afterAll(() => {
  if (pid !== null) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  rmSync(dir, { recursive: true, force: true });
});

const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });

it('an engine an npm script starts with nohup … & outlives the script', async () => {
  const log = join(dir, 'engine.log');
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'bg', private: true, scripts: { engine: `nohup ${BIN} engine --port 0 > ${log} 2>&1 & echo $! > ${join(dir, 'pid')}; sleep 2` } }));
  // stdin a pipe, as from a terminal or a CI runner.
  const npm = spawn('npm', ['run', '-s', 'engine'], { cwd: dir, stdio: ['pipe', 'ignore', 'inherit'] });
  const code = await new Promise<number | null>((resolve) => npm.on('exit', resolve));
  expect(code).toBe(0);
  pid = Number(readFileSync(join(dir, 'pid'), 'utf8'));
  // The engine may still be starting when the script's `sleep 2` ends (a loaded machine): its URL
  // is waited for, after npm is gone (what is tested is that it lives on).
  let url: RegExpExecArray | null = null;
  for (let waited = 0; url === null && waited < 20_000; waited += 100) {
    url = /http:\/\/127\.0\.0\.1:(\d+)/.exec(readFileSync(log, 'utf8'));
    if (url === null) await new Promise((r) => setTimeout(r, 100));
  }
  expect(url, readFileSync(log, 'utf8')).not.toBeNull();
  const port = Number(url![1]);
  await new Promise((r) => setTimeout(r, 3000)); // the watch looks every second
  expect(readFileSync(log, 'utf8')).not.toMatch(/is gone: stopping/);
  expect(await listening(port)).toBe(true);
}, 30_000);
