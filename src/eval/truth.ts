/**
 * The ground truth: the `X.json` and `X.md` files at the top of the --truth folder (the extension
 * in any case: `X.JSON` too). Reads files.
 *
 * `X.json` must be a JSON object (its leaves are the fields to score); `X.md` is text, with
 * `<!-- page N -->` markers where pages should be scored one by one. X is the name the output
 * must have. A file that cannot be used is an EVAL_BAD_TRUTH problem naming the file and the
 * place (line, byte offset and column of a JSON syntax error; the line of a key written twice in
 * one object, which JSON.parse would drop silently); the other files are still read. `X.report.json` and `X.compare.json` are skipped
 * (a copied output folder used as truth).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DocbatchError } from '../errors.ts';
import { firstInvalidUtf8, locateJsonError } from '../json-errors.ts';
import { refuseDuplicateKeys } from '../task/task-text.ts';
import { parseMarkedText, type MarkedText } from './text.ts';

export interface Truth {
  /** X: the output name it is for. */
  key: string;
  /** Absolute path. */
  path: string;
  fields?: Record<string, unknown>;
  text?: MarkedText;
}

export interface TruthSet {
  dir: string;
  /** By key, sorted by key; a key may have a JSON and a text truth (one entry each). */
  truths: Truth[];
  problems: DocbatchError[];
}

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

export function readTruth(dir: string): TruthSet {
  const truths: Truth[] = [];
  const problems: DocbatchError[] = [];
  const names = readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isFile() || e.isSymbolicLink())
    .map((e) => e.name)
    .filter((n) => /\.(?:json|md)$/i.test(n) && !/\.(?:report|compare)\.json$/i.test(n))
    .sort();
  for (const name of names) {
    const path = join(dir, name);
    try {
      truths.push(readOne(path, name));
    } catch (err) {
      if (err instanceof DocbatchError) problems.push(err);
      else problems.push(new DocbatchError('EVAL_BAD_TRUTH', `cannot be read: ${(err as Error).message}`, { cause: err, place: { file: path } }));
    }
  }
  truths.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return { dir, truths, problems };
}

function readOne(path: string, name: string): Truth {
  const bytes = readFileSync(path);
  let content: string;
  try {
    content = decoder.decode(bytes);
  } catch (err) {
    throw new DocbatchError('EVAL_BAD_TRUTH', 'not valid UTF-8', { cause: err, place: { file: path, offset: firstInvalidUtf8(bytes) } });
  }
  if (/\.md$/i.test(name)) return { key: name.slice(0, -3), path, text: parseMarkedText(content) };
  let value: unknown;
  try {
    value = JSON.parse(content);
  } catch (err) {
    const found = locateJsonError(content);
    if (!found) throw new DocbatchError('EVAL_BAD_TRUTH', `not valid JSON: ${(err as Error).message}`, { cause: err, place: { file: path } });
    const bom = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
    const before = content.slice(0, found.pos);
    const lineStart = before.lastIndexOf('\n') + 1;
    const line = before.split('\n').length;
    const column = [...before.slice(lineStart)].length + 1;
    throw new DocbatchError('EVAL_BAD_TRUTH', `not valid JSON at column ${column}: ${found.message}`, {
      cause: err,
      place: { file: path, line, offset: bom + Buffer.byteLength(before) },
    });
  }
  try {
    refuseDuplicateKeys(content, { file: path }, 'the truth file');
  } catch (err) {
    const line = (err as DocbatchError).place?.line;
    const message = (err as Error).message.replace(/^the truth file has the key/, 'the key').replace(/ written twice/, ' is written twice');
    throw new DocbatchError('EVAL_BAD_TRUTH', message, { cause: err, place: { file: path, ...(line !== undefined ? { line } : {}) } });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    const what = Array.isArray(value) ? 'an array' : value === null ? 'null' : `a ${typeof value}`;
    throw new DocbatchError('EVAL_BAD_TRUTH', `must be a JSON object (the fields to score), not ${what}`, { place: { file: path, offset: 0 } });
  }
  return { key: name.slice(0, -5), path, fields: value as Record<string, unknown> };
}
