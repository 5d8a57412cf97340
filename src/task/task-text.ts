/**
 * The text of task, schema and prompt files, read for src/task/load.ts: a file as a string (byte-order
 * mark dropped, CRLF to LF, UTF-16 by its mark, other bytes that are not UTF-8 refused), parsed as JSON or YAML (anchors and merge keys; a key written twice is refused
 * in JSON too), and the line a field is on, for errors. Every mistake is a TASK_INVALID.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { DocbatchError } from '../errors.ts';
import { firstInvalidUtf8 } from '../json-errors.ts';

export interface Where {
  file?: string | undefined;
  field?: string | undefined;
  line?: number | undefined;
}

export function invalid(message: string, where: Where, cause?: unknown): DocbatchError {
  const place = { ...(where.file ? { file: where.file } : {}), ...(where.line ? { line: where.line } : {}), ...(where.field ? { field: where.field } : {}) };
  return new DocbatchError('TASK_INVALID', message, { place, ...(cause ? { cause } : {}) });
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A text file as a string, as Windows editors save it too: without the byte-order mark, line ends
 * `\n` (a prompt file saved with CRLF would send `\r` to the model and be another task than the
 * same prompt saved with LF), UTF-16 when its byte-order mark says so (Notepad's "Unicode").
 * Bytes that are not UTF-8 (a file saved as Windows-1252 or Latin-1) are refused, not read as
 * U+FFFD: every "é" of the prompt would reach the model as "�".
 */
export function readText(path: string, what: string, where: Where = { file: path }): string {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'a directory' : String((err as Error).message);
    throw invalid(`cannot read the ${what}${where.file !== path ? ` ${path}` : ''} (${why})`, where, err);
  }
  let text: string;
  if (bytes[0] === 0xff && bytes[1] === 0xfe) text = new TextDecoder('utf-16le').decode(bytes.subarray(2));
  else if (bytes[0] === 0xfe && bytes[1] === 0xff) text = new TextDecoder('utf-16be').decode(bytes.subarray(2));
  else {
    try {
      text = utf8.decode(bytes);
    } catch (err) {
      const at = firstInvalidUtf8(bytes);
      const line = bytes.subarray(0, at).reduce((n, b) => n + (b === 0x0a ? 1 : 0), 1);
      throw invalid(`the ${what}${where.file !== path ? ` ${path}` : ''} is not UTF-8 (byte ${at}, 0x${bytes[at]!.toString(16)}, on line ${line}): save it as UTF-8`, where, err);
    }
  }
  return text.replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n');
}

// The YAML parser (CommonJS for Node) loads on first use: ~20 ms a command without a task or
// schema file does not pay (JSON files are read with it too, for their repeated keys).
const require = createRequire(import.meta.url);
let yamlModule: typeof import('yaml') | undefined;
const yaml = () => (yamlModule ??= require('yaml') as typeof import('yaml'));

/** YAML as written by hand: anchors and `<<:` merge keys (YAML 1.1's, which editors and Compose users expect), at most 100 aliases. */
const YAML_OPTIONS = { maxAliasCount: 100, merge: true } as const;

export function parseStructured(text: string, file: string): unknown {
  if (/\.json$/i.test(file)) {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw invalid(`not valid JSON: ${(err as Error).message}`, { file }, err);
    }
    refuseDuplicateKeys(text, { file });
    return value;
  }
  try {
    return yaml().parse(text, YAML_OPTIONS);
  } catch (err) {
    const line = (err as { linePos?: Array<{ line: number }> }).linePos?.[0]?.line;
    const first = (err as Error).message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    throw invalid(`not valid YAML: ${first}`, { file, line }, err);
  }
}

/**
 * JSON.parse keeps the last of two equal keys, so `"required"` written twice drops the first
 * silently. JSON text is YAML, whose parser says where a key repeats; JSON it cannot read (tabs
 * where YAML forbids them) is left at that.
 */
export function refuseDuplicateKeys(text: string, where: Where, what = 'the file'): void {
  const counter = new (yaml().LineCounter)();
  const doc = yaml().parseDocument(text, { lineCounter: counter, uniqueKeys: true });
  const duplicate = doc.errors.find((e) => e.code === 'DUPLICATE_KEY');
  if (!duplicate) return;
  const line = duplicate.linePos?.[0]?.line;
  const quoted = /^\s*("(?:[^"\\]|\\.)*")/.exec(text.slice(duplicate.pos[0]))?.[1];
  let key = '';
  try {
    key = quoted ? ` ${JSON.stringify(JSON.parse(quoted))}` : '';
  } catch {
    // not a JSON string where the parser points: the line says enough
  }
  throw invalid(`${what} has the key${key} written twice in one object (JSON would keep only the last)`, { ...where, ...(where.line === undefined && !where.field ? { line } : {}) });
}

/**
 * The line of `field` (dotted, as in errors) in a task file's text: the line of its key, or
 * undefined where the text does not say (a value merged in from an anchor, JSON that is not YAML).
 */
export function lineOfField(text: string, field: string): number | undefined {
  const { LineCounter, isMap, isScalar, isSeq } = yaml();
  const counter = new LineCounter();
  const doc = yaml().parseDocument(text, { ...YAML_OPTIONS, lineCounter: counter });
  if (doc.errors.length > 0) return undefined;
  let node: unknown = doc.contents;
  let offset: number | undefined;
  for (const step of field.split('.')) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === step);
      if (!pair) return undefined;
      offset = isScalar(pair.key) ? pair.key.range?.[0] : undefined;
      node = pair.value;
    } else if (isSeq(node) && /^\d+$/.test(step)) {
      node = node.items[Number(step)];
      offset = (node as { range?: [number] } | undefined)?.range?.[0];
    } else {
      return undefined;
    }
  }
  return offset === undefined ? undefined : counter.linePos(offset).line;
}
