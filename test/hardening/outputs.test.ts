/**
 * Issue 8, items 1, 2 and 12: outputs always fit the filesystem and stay inside OUT_DIR, a write
 * that cannot succeed marks its document failed (so `enqueue --wait` and `status` return and
 * say so) and `docbatch retry` writes it again, names are never shared, a new generation never
 * takes an older one's place, and leftovers are collected.
 */
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { numberedPdf } from '../../scripts/lib/pdf-writer.ts';
import { outFolder } from '../../src/cli/out-folder.ts';
import { baseNameOf } from '../../src/ingest/prepare.ts';
import { classifyWriteError, LocalSink, PermanentWriteError } from '../../src/write/atomic.ts';
import { runCli } from '../helpers/cli.ts';
import { acceptedIds, parsePages, startPipeline, type Pipeline } from '../helpers/pipeline.ts';

let p: Pipeline | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
});

/** Every file under `dir`, as paths relative to it. */
function tree(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

describe('names', () => {
  it('fit the filesystem, keep no dots, controls or reserved names, and never clash', () => {
    const cjk = `${'文'.repeat(75)}.pdf`;
    const name = baseNameOf(cjk);
    expect(Buffer.byteLength(name)).toBeLessThanOrEqual(120);
    expect(name).toMatch(/^文+-[0-9a-f]{8}$/);
    expect(baseNameOf(`${'文'.repeat(75)}x.pdf`)).not.toBe(name);
    expect(baseNameOf('...pdf')).toBe('document');
    expect(baseNameOf('..pdf')).toBe('document');
    expect(baseNameOf('.hidden.pdf')).toBe('hidden');
    expect(baseNameOf('a\nb\u202ec\u0007.pdf')).toBe('a_b_c_');
    expect(baseNameOf('CON.pdf')).toBe('CON_');
    expect(baseNameOf('dir/evil\\name.pdf')).toBe('evil_name');
  });

  it('--out is a folder inside OUT_DIR, or refused', () => {
    expect(outFolder('batch-7', '/srv/out')).toBe('batch-7');
    expect(outFolder('/srv/out/a/b', '/srv/out')).toBe('a/b');
    expect(outFolder('.', '/srv/out')).toBe('');
    for (const bad of ['..', '../sibling', '/srv', '/tmp/x', 'a/../../b']) {
      expect(() => outFolder(bad, '/srv/out'), bad).toThrow(/outside OUT_DIR/);
    }
    // A folder name no filesystem takes is refused at enqueue, not after every page was answered.
    expect(outFolder(`a/${'é'.repeat(127)}`, '/srv/out')).toBe(`a/${'é'.repeat(127)}`);
    for (const long of ['x'.repeat(256), `a/${'é'.repeat(128)}/b`]) expect(() => outFolder(long, '/srv/out')).toThrow(/bytes long; filesystems take at most 255/);
  });

  it('the sink refuses a path or a linked folder leading outside its root', async () => {
    const base = join(await import('node:os').then((os) => os.tmpdir()), `docbatch-sink-${process.pid}`);
    rmSync(base, { recursive: true, force: true });
    mkdirSync(join(base, 'out'), { recursive: true });
    mkdirSync(join(base, 'elsewhere'));
    symlinkSync(join(base, 'elsewhere'), join(base, 'out', 'link'));
    const sink = new LocalSink(join(base, 'out'));
    await expect(sink.writeWhole('../escape.md', 'x')).rejects.toBeInstanceOf(PermanentWriteError);
    await expect(sink.writeWhole('link/escape.md', 'x')).rejects.toThrow(/a link leading outside OUT_DIR/);
    // Not even an empty folder is made through the link.
    await expect(sink.writeWhole('link/deeper/escape.md', 'x')).rejects.toThrow(/a link leading outside OUT_DIR/);
    expect(readdirSync(join(base, 'elsewhere'))).toEqual([]);
    expect(await sink.writeWhole('fine/doc.md', 'x')).toBe(join(base, 'out', 'fine', 'doc.md'));
    rmSync(base, { recursive: true, force: true });
  });

  it('a full disk is worth retrying; a name the filesystem refuses is not', () => {
    const errno = (code: string) => Object.assign(new Error(code), { code });
    expect(classifyWriteError(errno('ENOSPC'), '/x')).not.toBeInstanceOf(PermanentWriteError);
    expect(classifyWriteError(errno('EACCES'), '/x')).not.toBeInstanceOf(PermanentWriteError);
    expect(classifyWriteError(errno('ENAMETOOLONG'), '/x')).toBeInstanceOf(PermanentWriteError);
    expect(classifyWriteError(errno('ENOTDIR'), '/x')).toBeInstanceOf(PermanentWriteError);
  });
});

describe('hostile names through the pipeline', () => {
  it('every output lies inside OUT_DIR, whatever the input was called', async () => {
    p = await startPipeline({ file: import.meta.filename });
    const inputs = join(p.dir, 'in');
    mkdirSync(inputs);
    const names = [`${'文'.repeat(75)}.pdf`, '...pdf', '..pdf', 'a\u202etxt.pdf', 'CON.pdf', ' spaced .pdf'];
    names.forEach((n, i) => writeFileSync(join(inputs, n), numberedPdf(1, 20 + i)));
    const ids = acceptedIds(await p.enqueue(names.map((n) => join(inputs, n))));
    const done = await p.wait(ids);
    expect(done.every((d) => d.record.state === 'written' && d.record.failed === 0)).toBe(true);
    // Nothing beside OUT_DIR: its parent holds only what the test made.
    expect(readdirSync(dirname(p.config.outDir)).sort()).toEqual(['blobs', 'in', 'out']);
    const files = tree(p.config.outDir);
    expect(files).toHaveLength(names.length * 2);
    for (const f of files) {
      expect(f).not.toMatch(/^\.|\/\.|[\u0000-\u001f\u202e]/);
      expect(Buffer.byteLength(f)).toBeLessThan(200);
    }
    // Two that both became "document" did not share files.
    expect(files.filter((f) => f.startsWith('document')).length).toBe(4);
  }, 90_000);

  it('names that differ only by case never share a file on a case-insensitive filesystem (macOS, Windows, SMB)', async () => {
    p = await startPipeline({ file: import.meta.filename });
    const inputs = join(p.dir, 'in');
    for (const d of ['a', 'b', 'c']) mkdirSync(join(inputs, d), { recursive: true });
    writeFileSync(join(inputs, 'a', 'Report.pdf'), numberedPdf(1, 31));
    writeFileSync(join(inputs, 'b', 'report.pdf'), numberedPdf(2, 32));
    writeFileSync(join(inputs, 'c', 'REPORT.pdf'), numberedPdf(3, 33));
    // Two in one command, then one more in another command.
    const one = await p.enqueue([join(inputs, 'a', 'Report.pdf'), join(inputs, 'b', 'report.pdf')]);
    const two = await p.enqueue([join(inputs, 'c', 'REPORT.pdf')]);
    const ids = acceptedIds([...one, ...two]);
    await p.wait(ids);
    const names = [...one, ...two].map((o) => o.runs![0]!.name);
    // On a case-insensitive filesystem Report.md and report.md are one file: each output must differ by more than case.
    expect(new Set(names.map((n) => n.toLowerCase())).size).toBe(3);
    // The two of one command both take the hash suffix, whichever is read first.
    expect(names[0]).toMatch(/^Report-[0-9a-f]{8}$/);
    expect(names[1]).toMatch(/^report-[0-9a-f]{8}$/);
    const files = tree(p.config.outDir);
    expect(new Set(files.map((f) => f.toLowerCase())).size).toBe(6);
    for (const [i, name] of names.entries()) expect(parsePages(readFileSync(join(p.config.outDir, `${name}.md`), 'utf8')).size).toBe(i + 1);

    // --out folders that differ only by case are one folder there too.
    const pdf = join(inputs, 'c', 'minutes.pdf');
    const other = join(inputs, 'a', 'minutes.pdf');
    writeFileSync(pdf, numberedPdf(1, 34));
    writeFileSync(other, numberedPdf(2, 35));
    const upper = await p.enqueue([pdf], { out: 'Runs' });
    const lower = await p.enqueue([other], { out: 'runs' });
    await p.wait(acceptedIds([...upper, ...lower]));
    expect(upper[0]!.runs![0]!.name.toLowerCase()).not.toBe(lower[0]!.runs![0]!.name.toLowerCase());
  }, 90_000);
});

describe('a write that cannot succeed', () => {
  it('marks the document failed with WRITE_FAILED; --wait and status return and say so; retry writes it once fixed', async () => {
    p = await startPipeline({ file: import.meta.filename, config: { writeAttempts: 2 } });
    const pdf = join(p.dir, 'stuck.pdf');
    writeFileSync(pdf, numberedPdf(3));
    // OUT_DIR's folder for this document is a file: every write fails (ENOTDIR).
    mkdirSync(p.config.outDir, { recursive: true });
    writeFileSync(join(p.config.outDir, 'blocked'), 'not a folder');
    const env = { REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix, BLOB_DIR: p.config.blobDir, OUT_DIR: p.config.outDir };
    const run = await runCli(['enqueue', pdf, '--out', 'blocked', '--wait'], env, { timeoutMs: 60_000 });
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/FAILED\s+\S*stuck\.pdf: WRITE_FAILED: .*(EEXIST|ENOTDIR)/);
    const docId = run.stdout.split(/\s+/)[0]!;
    const record = (await p.store.get(docId))!;
    expect(record).toMatchObject({ state: 'failed', done: 3, writeError: { code: 'WRITE_FAILED' } });
    const status = await runCli(['status', '--json'], env);
    expect(status.stdout).toContain('"state":"failed"');
    // ... and why, as the dashboard does: a failed document with no failed unit says what failed.
    const line = JSON.parse(status.stdout.split('\n')[0]!) as { write_error: { code: string; message: string } | null };
    expect(line.write_error).toMatchObject({ code: 'WRITE_FAILED', message: expect.stringMatching(/EEXIST|ENOTDIR/) });
    const text = await runCli(['status'], env);
    expect(text.stdout).toMatch(new RegExp(`${docId}  write failed: WRITE_FAILED: .*(EEXIST|ENOTDIR).* \\(docbatch retry ${docId} writes it again\\)`));

    // Enqueueing it again does not pretend: it writes again (and fails again while blocked).
    rmSync(join(p.config.outDir, 'blocked'));
    const retry = await runCli(['retry', docId, '--wait'], env, { timeoutMs: 60_000 });
    expect(retry.stdout).toMatch(new RegExp(`${docId}\\s+writing again`));
    expect(retry.code).toBe(0);
    const pages = parsePages(readFileSync(join(p.config.outDir, 'blocked', 'stuck.md'), 'utf8'));
    expect(pages.size).toBe(3);
    // No unit was sent again for the rewrite (3 pages + one image probe).
    expect(p.engine.stats().completed).toBe(3 + 1);
  }, 120_000);
});

describe('generations and names', () => {
  it('a newer generation is never marked written by an older one; the older one keeps reading its own results', async () => {
    p = await startPipeline({ file: import.meta.filename, worker: false });
    const pdf = join(p.dir, 'g.pdf');
    writeFileSync(pdf, numberedPdf(2));
    const [docId] = acceptedIds(await p.enqueue([pdf]));
    await p.store.settle(docId!, 1, 0, { ok: true, text: 'gen one', promptTokens: 1, completionTokens: 1, engineMs: 1, latencyMs: 1, model: 'm', finishReason: 'stop' });
    const [forced] = await p.enqueue([pdf], { force: true });
    expect(forced!.runs![0]!.gen).toBe(2);
    // A writer of generation 1 still reads generation 1's results...
    expect((await p.store.unitResult(docId!, 1, 0)) as { text: string }).toMatchObject({ text: 'gen one' });
    // ... and cannot mark generation 2 written.
    expect(await p.store.markWritten(docId!, 1, { files: ['x'], now: new Date().toISOString(), reopens: 0, retentionSeconds: 60 })).toBe('stale');
    expect((await p.store.get(docId!))!.state).not.toBe('written');
  });

  it('the same content under three prompts gets three names; claims are checked', async () => {
    p = await startPipeline({ file: import.meta.filename });
    const pdf = join(p.dir, 'same.pdf');
    writeFileSync(pdf, numberedPdf(1));
    const names: string[] = [];
    const ids: string[] = [];
    for (const prompt of ['one', 'two', 'three']) {
      const [o] = await p.enqueue([pdf], { task: { prompt } });
      names.push(o!.runs![0]!.name);
      ids.push(o!.runs![0]!.docId);
    }
    expect(new Set(ids).size).toBe(3);
    expect(new Set(names).size).toBe(3);
    expect(names[0]).toBe('same');
    await p.wait(ids);
    expect(tree(p.config.outDir).filter((f) => f.endsWith('.md'))).toHaveLength(3);
  }, 60_000);
});

describe('the same document into another --out folder', () => {
  it('claims its name in the new folder, resumed or forced, and never takes a name another document holds there', async () => {
    p = await startPipeline({ file: import.meta.filename, worker: false });
    mkdirSync(join(p.dir, 'a'));
    mkdirSync(join(p.dir, 'b'));
    const mine = join(p.dir, 'a', 'report.pdf');
    const theirs = join(p.dir, 'b', 'report.pdf');
    writeFileSync(mine, numberedPdf(2));
    writeFileSync(theirs, numberedPdf(3));
    const [first] = await p.enqueue([mine], { out: 'x' });
    const [other] = await p.enqueue([theirs], { out: 'y' });
    expect(first!.runs![0]!.name).toBe('report');
    expect(other!.runs![0]!.name).toBe('report');
    const docId = first!.runs![0]!.docId;
    const holder = (field: string) => p!.store.redis.hget(p!.store.namesKey, field);

    // Resumed (still running) into y: report is the other document's there.
    const [resumed] = await p.enqueue([mine], { out: 'y' });
    expect(resumed!.runs![0]).toMatchObject({ outcome: 'resumed', docId });
    const name = resumed!.runs![0]!.name;
    expect(name).not.toBe('report');
    expect(await holder(`y/${name}`)).toBe(docId);
    expect(await holder('y/report')).toBe(other!.runs![0]!.docId);
    expect((await p.store.get(docId))!.meta).toMatchObject({ outSub: 'y', name });

    // Forced into z: a folder where nobody holds report.
    const [forced] = await p.enqueue([mine], { out: 'z', force: true });
    expect(forced!.runs![0]).toMatchObject({ outcome: 'enqueued', docId, name: 'report' });
    expect(await holder('z/report')).toBe(docId);
  });

  /** A new pipeline with `name`.pdf of `pages` pages written into folder x: the pipeline, the file, its doc id. */
  async function writtenIntoX(name: string, pages: number): Promise<{ pipeline: Pipeline; pdf: string; docId: string }> {
    const pipeline = await startPipeline({ file: import.meta.filename });
    p = pipeline; // stopped by afterEach even if what follows fails
    const pdf = join(pipeline.dir, `${name}.pdf`);
    writeFileSync(pdf, numberedPdf(pages));
    const [first] = await pipeline.enqueue([pdf], { out: 'x' });
    const docId = first!.runs![0]!.docId;
    await pipeline.wait([docId]);
    return { pipeline, pdf, docId };
  }

  it('a written document asked for in another folder is written there from its results, not run again', async () => {
    const written = await writtenIntoX('moved', 3);
    p = written.pipeline;
    const { pdf, docId } = written;
    const before = readFileSync(join(p.config.outDir, 'x', 'moved.md'), 'utf8');

    // Its name in y belongs to another document: it takes a suffixed one.
    mkdirSync(join(p.dir, 'elsewhere'));
    const otherPdf = join(p.dir, 'elsewhere', 'moved.pdf');
    writeFileSync(otherPdf, numberedPdf(1));
    const [held] = await p.enqueue([otherPdf], { out: 'y' });
    await p.wait([held!.runs![0]!.docId]);
    expect(held!.runs![0]!.name).toBe('moved');
    const requests = p.engine.stats().requests;

    const [again] = await p.enqueue([pdf], { out: 'y' });
    expect(again!.runs![0]).toMatchObject({ outcome: 'rewrite', docId });
    const name = again!.runs![0]!.name;
    expect(name).not.toBe('moved');
    const [done] = await p.wait([docId]);
    expect(done!.state).toBe('written');
    expect(readFileSync(join(p.config.outDir, 'y', `${name}.md`), 'utf8')).toBe(before);
    expect(JSON.parse(readFileSync(join(p.config.outDir, 'y', `${name}.report.json`), 'utf8'))).toMatchObject({ stats: { pages: 3 } });
    // The other document's output is untouched, and no page went to the engine again.
    expect(readFileSync(join(p.config.outDir, 'y', 'moved.md'), 'utf8')).not.toBe(before);
    expect(p.engine.stats().requests).toBe(requests);
    // The record and the names say y; the old outputs stay where they were.
    const record = (await p.store.get(docId))!;
    expect(record.meta).toMatchObject({ outSub: 'y', name });
    expect(record.files.every((f) => f.includes(`/y/${name}.`))).toBe(true);
    expect(existsSync(join(p.config.outDir, 'x', 'moved.md'))).toBe(true);
    const names = p.store.namesKey;
    expect(await p.store.redis.hget(names, `y/${name}`)).toBe(docId);
    expect(await p.store.redis.hget(names, 'y/moved')).toBe(held!.runs![0]!.docId);
    // A move is refused when the record is no longer what the mover read (another mover won).
    expect(await p.store.moveOutputs(docId, record.gen, 'written', { outSub: 'x', name: 'moved' }, { ...record.meta, outSub: 'z' })).toBe(false);
    expect((await p.store.get(docId))!.meta.outSub).toBe('y');
    // ... and when the new name is another document's (the claim is checked again in the move).
    expect(await p.store.moveOutputs(docId, record.gen, 'written', record.meta, { ...record.meta, outSub: 'y', name: 'moved' })).toBe(false);
    expect(await p.store.redis.hget(names, 'y/moved')).toBe(held!.runs![0]!.docId);
    // Enqueued again into y: it is there now.
    const [third] = await p.enqueue([pdf], { out: 'y' });
    expect(third!.runs![0]).toMatchObject({ outcome: 'done', name });
  }, 60_000);

  it('a move that fails gives back the name it took in the new folder', async () => {
    const written = await writtenIntoX('lost', 2);
    p = written.pipeline;
    const { pdf, docId } = written;
    // Its results archive is gone (collected): it cannot be written again from its results.
    rmSync(join(p.config.blobDir, 'named', 'results', docId), { recursive: true, force: true });
    // The file is rejected, named, and a file after it in the same command still goes in.
    const next = join(p.dir, 'next.pdf');
    writeFileSync(next, numberedPdf(1, 5));
    const [moved, after] = await p.enqueue([pdf, next], { out: 'y' });
    expect(moved!.error).toMatchObject({ code: 'BLOB_MISSING', place: { file: pdf } });
    expect(after!.runs![0]).toMatchObject({ outcome: 'enqueued', name: 'next' });
    expect(await p.store.redis.hget(p.store.namesKey, 'y/lost')).toBeNull();
    expect((await p.store.get(docId))!.meta).toMatchObject({ outSub: 'x', name: 'lost' });
    // So another document called lost.pdf gets its plain name there.
    mkdirSync(join(p.dir, 'other'));
    const other = join(p.dir, 'other', 'lost.pdf');
    writeFileSync(other, numberedPdf(1));
    const [theirs] = await p.enqueue([other], { out: 'y' });
    expect(theirs!.runs![0]!.name).toBe('lost');
    // A name the document held before a failed move stays its own.
    expect(await p.store.releaseName('x', 'lost', docId)).toBe(false);
    expect(await p.store.redis.hget(p.store.namesKey, 'x/lost')).toBe(docId);
  }, 60_000);
});

describe('leftovers', () => {
  it('a writer killed mid-write leaves no temporary file once the document is written again', async () => {
    p = await startPipeline({ file: import.meta.filename, config: { lockDurationMs: 2000 } });
    const pdf = join(p.dir, 'killed.pdf');
    writeFileSync(pdf, numberedPdf(2));
    // What a writer SIGKILLed inside the write of killed.md leaves (its job is then taken over by
    // the next writer once its lock expired): a partial temporary file, untouched since.
    mkdirSync(p.config.outDir, { recursive: true });
    const dead = join(p.config.outDir, '.killed.md.tmp-99999-0badcafe');
    writeFileSync(dead, '<!-- page 1 -->\nhalf a pa');
    const past = new Date(Date.now() - 5000);
    utimesSync(dead, past, past);
    // A dead temporary of another output goes too; one being written right now stays.
    const other = join(p.config.outDir, '.other.md.tmp-99999-0badcafe');
    writeFileSync(other, 'x');
    utimesSync(other, past, past);
    const live = join(p.config.outDir, '.killed.md.tmp-99998-1badcafe');
    writeFileSync(live, 'still being written');
    const writing = setInterval(() => appendFileSync(live, '.'), 100);
    const [docId] = acceptedIds(await p.enqueue([pdf]));
    await p.wait([docId!]).finally(() => clearInterval(writing));
    expect(tree(p.config.outDir)).toEqual(['.killed.md.tmp-99998-1badcafe', 'killed.md', 'killed.report.json']);
    expect(parsePages(readFileSync(join(p.config.outDir, 'killed.md'), 'utf8')).size).toBe(2);
    expect(existsSync(live)).toBe(true);
  }, 60_000);

  it("the writer removes temporary files of crashed writers; gc removes what expired documents leave", async () => {
    p = await startPipeline({ file: import.meta.filename });
    const pdf = join(p.dir, 'old.pdf');
    writeFileSync(pdf, numberedPdf(2));
    const [docId] = acceptedIds(await p.enqueue([pdf]));
    const [done] = await p.wait([docId!]);
    const meta = done!.record.meta;
    const blobPath = join(p.config.blobDir, meta.blob.slice(0, 2), meta.blob);
    const archive = join(p.config.blobDir, 'named', 'results', docId!);
    expect(existsSync(blobPath)).toBe(true);
    expect(existsSync(archive)).toBe(true);

    // The record expires (as RETENTION_DAYS would make it), and the blob has not been used since.
    await p.redis.del(p.store.docKey(docId!));
    const long = new Date(Date.now() - 30 * 86_400_000);
    utimesSync(blobPath, long, long);
    // ... and its producer's pin (gc leaves a blob a producer stored or found in the last day) is as old.
    await p.redis.zadd(`${p.config.prefix}:blob-pins`, long.getTime(), meta.blob);
    const crashed = join(p.config.outDir, '.old.md.tmp-99999-0badcafe');
    writeFileSync(crashed, 'half');
    utimesSync(crashed, long, long);
    const report = await p.writer.collect();
    expect(report).toMatchObject({ documents: 1, names: 1, archives: 1 });
    expect(report.blobs).toBeGreaterThanOrEqual(1);
    expect(existsSync(blobPath)).toBe(false);
    expect(existsSync(archive)).toBe(false);
    expect(await p.redis.zscore(`${p.config.prefix}:docs`, docId!)).toBeNull();
    const gc = await runCli(['gc', '--json'], { REDIS_URL: p.config.redisUrl, DOCBATCH_PREFIX: p.config.prefix, BLOB_DIR: p.config.blobDir, OUT_DIR: p.config.outDir });
    expect(JSON.parse(gc.stdout)).toMatchObject({ outputTemporaries: 1, documents: 0 });
    expect(existsSync(crashed)).toBe(false);
  }, 60_000);
});
