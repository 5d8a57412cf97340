/**
 * Folders as users have them (found by an independent hunt with real files): a file or folder
 * that cannot be read is that file's problem, not the command's; links named on the command line
 * are followed and links inside a folder are listed, not dropped; an unzipped Claude export, a
 * folder with office zips, READMEs and scripts mentioning `%PDF-` go in without errors for what
 * is not a document; `--glob` matches names with a newline.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import type { FileOutcome } from '../../src/ingest/batch.ts';
import { startPipeline, type Pipeline } from '../helpers/pipeline.ts';
import { makeZip, zipOf } from './chat/fixtures.ts';

const BIN = resolve(import.meta.dirname, '../../bin/docbatch');
let p: Pipeline;
let seed = 100;

beforeAll(async () => {
  p = await startPipeline({ file: import.meta.filename, worker: false });
});
afterAll(async () => {
  await p?.stop();
});

function folder(name: string): string {
  const dir = join(p.dir, name);
  mkdirSync(dir, { recursive: true });
  return dir;
}
function pdfIn(dir: string, name: string): string {
  const path = join(dir, name);
  writeFileSync(path, numberedPdf(1, seed++));
  return path;
}
/** What happened to each file, by its path relative to `dir`. */
function byFile(outcomes: FileOutcome[], dir: string): Record<string, string> {
  return Object.fromEntries(
    outcomes.map((o) => [o.file.slice(dir.length + 1) || '.', o.error ? `error ${o.error.code}` : o.skipped !== undefined ? 'skipped' : `${o.runs![0]!.outcome}`]),
  );
}

const claudeConversation = { uuid: 'c-1', name: 'Trip', created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z', chat_messages: [{ uuid: 'm-1', sender: 'human', text: 'Where to?', created_at: '2026-01-01T00:00:00Z' }, { uuid: 'm-2', sender: 'assistant', text: 'The coast.', created_at: '2026-01-01T00:00:01Z' }] };

describe('a folder as users have it', () => {
  it('an unzipped Claude export: the conversations go in, users.json and projects.json are skipped', async () => {
    const dir = folder('claude-export');
    writeFileSync(join(dir, 'conversations.json'), JSON.stringify([claudeConversation]));
    writeFileSync(join(dir, 'users.json'), JSON.stringify([{ uuid: 'u-1', full_name: 'Ada', email_address: 'ada@example.com' }]));
    writeFileSync(join(dir, 'projects.json'), JSON.stringify([{ uuid: 'p-1', name: 'Notes', docs: [] }]));
    expect(byFile(await p.enqueue([dir]), dir)).toEqual({ 'conversations.json': 'enqueued', 'projects.json': 'skipped', 'users.json': 'skipped' });
  });

  it('office zips, a README and a script that mention %PDF- are skipped; a broken .zip, a password-protected export or two exports in one are errors', async () => {
    const dir = folder('office');
    pdfIn(dir, 'report.pdf');
    writeFileSync(join(dir, 'slides.docx'), makeZip([{ name: 'word/document.xml', data: '<w:document/>' }]));
    writeFileSync(join(dir, 'photos.zip'), makeZip([{ name: 'a.txt', data: 'not a photo, but not an export either' }]));
    writeFileSync(join(dir, 'broken.zip'), makeZip([{ name: 'conversations.json', data: '[]' }]).subarray(0, 30));
    writeFileSync(join(dir, 'broken.xlsx'), makeZip([{ name: 'xl/workbook.xml', data: '<workbook/>' }]).subarray(0, 30));
    writeFileSync(join(dir, 'locked.zip'), zipOf([{ name: 'conversations.json', body: Buffer.alloc(64, 7), method: 8, size: 52, crc: 0, flags: 0x1 }]));
    writeFileSync(join(dir, 'two.zip'), makeZip([{ name: 'a/conversations.json', data: JSON.stringify([claudeConversation]) }, { name: 'b/conversations.json', data: JSON.stringify([claudeConversation]) }]));
    writeFileSync(join(dir, 'README.md'), '# Tools\nA PDF starts with `%PDF-1.x`; we check for it.\n');
    writeFileSync(join(dir, 'check.py'), 'def is_pdf(data):\n    return data[:5] == b"%PDF-"\n');
    expect(byFile(await p.enqueue([dir]), dir)).toEqual({
      // A .zip that is damaged may be a half-downloaded export; one with two exports would lose one.
      // A password-protected export is an export all the same: said, not skipped.
      'README.md': 'skipped', 'broken.xlsx': 'skipped', 'broken.zip': 'error ZIP_CORRUPT', 'check.py': 'skipped', 'locked.zip': 'error ZIP_ENCRYPTED', 'photos.zip': 'skipped', 'report.pdf': 'enqueued', 'slides.docx': 'skipped', 'two.zip': 'error ZIP_SEVERAL_EXPORTS',
    });
    const [alone] = await p.enqueue([join(dir, 'photos.zip')]);
    expect(alone!.error?.code).toBe('ZIP_NO_CONVERSATIONS');
  });

  it('follows a link named on the command line; lists the links inside a folder instead of dropping them', async () => {
    const target = folder('links-target');
    pdfIn(target, 'inside.pdf');
    const dir = folder('links');
    pdfIn(dir, 'real.pdf');
    symlinkSync(join(dir, 'real.pdf'), join(dir, 'alias.pdf'));
    symlinkSync(target, join(dir, 'elsewhere'));
    const link = join(p.dir, 'inbox');
    symlinkSync(target, link);
    expect(byFile(await p.enqueue([link]), link)).toEqual({ 'inside.pdf': 'enqueued' });
    const outcomes = await p.enqueue([dir]);
    expect(byFile(outcomes, dir)).toEqual({ 'alias.pdf': 'skipped', elsewhere: 'skipped', 'real.pdf': 'enqueued' });
    expect(outcomes.find((o) => o.file.endsWith('alias.pdf'))!.skipped).toMatch(/symbolic link/);
  });

  it('lists a FIFO inside a folder as skipped instead of dropping it without a word, and never opens it', async () => {
    const dir = folder('special');
    pdfIn(dir, 'real.pdf');
    expect(spawnSync('mkfifo', [join(dir, 'pipe.pdf')]).status).toBe(0);
    const outcomes = await p.enqueue([dir]);
    expect(byFile(outcomes, dir)).toEqual({ 'pipe.pdf': 'skipped', 'real.pdf': 'enqueued' });
    expect(outcomes.find((o) => o.file.endsWith('pipe.pdf'))!.skipped).toBe('not a regular file (a FIFO): not read');
  });

  it('/dev/stdin redirected from a PDF is that PDF (the inspector child used to read its own, empty, stdin)', () => {
    const file = pdfIn(folder('stdin'), 'piped.pdf');
    const fd = openSync(file, 'r');
    try {
      const env = { PATH: process.env.PATH!, REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix, BLOB_DIR: p.config.blobDir, OUT_DIR: p.config.outDir };
      const run = spawnSync(BIN, ['enqueue', '--json', '/dev/stdin'], { env, encoding: 'utf8', stdio: [fd, 'pipe', 'pipe'], timeout: 60_000 });
      expect(run.stderr).toBe('');
      expect(JSON.parse(run.stdout.trim())).toMatchObject({ file: '/dev/stdin', outcome: 'enqueued', units: 1 });
    } finally {
      closeSync(fd);
    }
  });

  it('a name that is not UTF-8 is listed with what to do, not as "no such file"', async () => {
    const dir = folder('latin1');
    pdfIn(dir, 'plain.pdf');
    writeFileSync(Buffer.concat([Buffer.from(`${dir}/caf`), Buffer.from([0xe9]), Buffer.from('.pdf')]), numberedPdf(1, seed++));
    const outcomes = await p.enqueue([dir]);
    expect(outcomes.map((o) => o.skipped ?? o.runs?.[0]?.outcome)).toEqual([expect.stringMatching(/not valid UTF-8.*rename it/), 'enqueued']);
  });

  it('--glob matches names with a newline', async () => {
    const dir = folder('newline');
    pdfIn(folder('newline/two\nlines'), 'inside.pdf');
    expect(byFile(await p.enqueue([dir], { glob: '**/*.pdf' }), dir)).toEqual({ 'two\nlines/inside.pdf': 'enqueued' });
  });
});

describe('what cannot be read', () => {
  it("a locked file is that file's error, named or found in a folder; a locked folder inside is listed; the others go in", () => {
    // As a user other than root (root reads anything), with everything it needs readable.
    const dir = mkdtempSync(join(tmpdir(), 'docbatch-locked-'));
    try {
      chmodSync(dir, 0o755);
      const blobs = join(dir, 'blobs');
      mkdirSync(blobs, { mode: 0o777 });
      chmodSync(blobs, 0o777);
      const inbox = join(dir, 'inbox');
      mkdirSync(inbox, { mode: 0o755 });
      const locked = join(inbox, 'a-locked.pdf');
      writeFileSync(locked, numberedPdf(1, seed++));
      chmodSync(locked, 0o000);
      pdfIn(inbox, 'b-ok.pdf');
      const sub = join(inbox, 'c-locked-folder');
      mkdirSync(sub);
      pdfIn(sub, 'hidden.pdf');
      chmodSync(sub, 0o000);
      const env = { PATH: process.env.PATH!, REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix, BLOB_DIR: blobs, OUT_DIR: join(dir, 'out'), LOG_FORMAT: 'json' };
      const asUser = (args: string[]) => {
        const argv = process.getuid?.() === 0 ? ['runuser', '-u', 'nobody', '--', BIN, ...args] : [BIN, ...args];
        return spawnSync(argv[0]!, argv.slice(1), { env, encoding: 'utf8', timeout: 60_000 });
      };
      // `--json`: a line per run ({file, outcome, ...}), per rejected file ({file, error}) and per skipped one ({file, skipped}).
      const lines = (out: string) => out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { file: string; outcome?: string; skipped?: string; error?: { code: string } });

      const named = asUser(['enqueue', '--json', locked, join(inbox, 'b-ok.pdf')]);
      expect(named.stderr).not.toMatch(/unexpected error/);
      expect(named.status).toBe(2);
      const [a, b] = lines(named.stdout);
      expect(a!.error?.code).toBe('FILE_UNREADABLE');
      expect(b!.outcome).toBe('enqueued');

      // In a folder too: a file that cannot be read may be a document, so it is an error (exit 2);
      // a folder inside that cannot be read (lost+found) is listed with why.
      const walked = asUser(['enqueue', '--json', inbox]);
      expect(walked.stderr).not.toMatch(/unexpected error/);
      expect(walked.status).toBe(2);
      const outcomes = lines(walked.stdout);
      expect(outcomes.find((o) => o.file.endsWith('a-locked.pdf'))?.error?.code).toBe('FILE_UNREADABLE');
      expect(outcomes.find((o) => o.file.endsWith('c-locked-folder'))?.skipped).toMatch(/cannot read the folder/);
      expect(outcomes.find((o) => o.file.endsWith('b-ok.pdf'))?.outcome).toBe('resumed'); // already in, from the command above

      const folderLocked = asUser(['enqueue', '--json', sub]);
      expect(folderLocked.status).toBe(2);
      expect(lines(folderLocked.stdout)[0]!.error?.code).toBe('FILE_UNREADABLE');
    } finally {
      spawnSync('chmod', ['-R', 'u+rwx', dir]);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  // A file the kernel refuses to read with an errno nobody listed (found fuzzing the readers: a
  // sysfs attribute of a device without one answers EINVAL; a FUSE or network mount may answer
  // any code). It stopped the whole command ("unexpected error", exit 1) before the files after it.
  const einval = ['/sys/class/net/lo/speed', '/sys/class/net/lo/duplex'].find((f) => {
    try {
      readFileSync(f);
      return false;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'EINVAL';
    }
  });
  it.skipIf(einval === undefined)("a file whose read fails with an errno of its own (EINVAL) is that file's FILE_UNREADABLE; the others go in", () => {
    const good = pdfIn(folder('einval'), 'after.pdf');
    const env = { PATH: process.env.PATH!, REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix, BLOB_DIR: p.config.blobDir, OUT_DIR: p.config.outDir };
    const run = spawnSync(BIN, ['enqueue', '--json', einval!, good], { env, encoding: 'utf8', timeout: 60_000 });
    expect(run.stderr).not.toMatch(/unexpected error/);
    expect(run.status).toBe(2);
    const [bad, ok] = run.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { file: string; outcome?: string; error?: { code: string; message: string; place: { file: string } } });
    expect(bad).toEqual({ file: einval, error: { code: 'FILE_UNREADABLE', message: 'cannot read the file: EINVAL: invalid argument, read', place: { file: einval } } });
    expect(ok).toMatchObject({ file: good, outcome: 'enqueued' });
    expect(run.stderr).toBe(`docbatch: rejected ${einval}: FILE_UNREADABLE: cannot read the file: EINVAL: invalid argument, read\n`);
  }, 60_000);
});
