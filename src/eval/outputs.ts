/**
 * One output file's content as what scoring compares: fields (an object) or text (pages). Pure
 * (the caller reads the file). The writer's output contract:
 *   X.json   a schema task on the whole document: the validated object → fields as they are.
 *   X.md     a text task on pages: `<!-- page N -->` then the text → text with pages.
 *   X.jsonl  one line per page or chunk, in order:
 *            `{"page": N, "data": {...}}` → fields keyed by page number: `{"1": {...}, "2": {...}}`
 *            (chat chunks: by `<conversation_id>#<chunk>`), so a truth `{"1": {"total": 5}}` scores
 *            page 1's total;
 *            `{"page": N, "text"|"summary": "..."}` → text with pages (chunks: text in order);
 *            `{"page": N, "error": {"code", "message"}}` → that unit has no fields / a failed page.
 * Every form says which units failed (`failed`), so that two models that both lack a unit's
 * answer are not taken to agree on it.
 */
import { DocbatchError } from '../errors.ts';
import { parseMarkedText, type MarkedText, type PageText } from './text.ts';

export type ContentKind = 'fields' | 'text';

/**
 * `failed`: the units that failed, when any did: page numbers (`"2"`), `<conversation_id>#<chunk>`,
 * or `"document"` for a document-unit text whose unit failed. They have no fields or text.
 */
export type OutputContent = { kind: 'fields'; value: unknown; failed?: string[] } | { kind: 'text'; text: MarkedText; failed?: string[] };

/** The content of an output file named `fileName` (only its extension matters). */
export function parseOutput(fileName: string, content: string, want?: ContentKind): OutputContent {
  if (fileName.endsWith('.md')) {
    const text = parseMarkedText(content);
    const failed = text.failed ? ['document'] : (text.pages ?? []).filter((p) => p.failed).map((p) => String(p.page));
    return { kind: 'text', text, ...(failed.length > 0 ? { failed } : {}) };
  }
  if (fileName.endsWith('.jsonl')) return parseJsonl(fileName, content, want);
  if (fileName.endsWith('.json')) {
    try {
      return { kind: 'fields', value: JSON.parse(content) };
    } catch (err) {
      throw new DocbatchError('EVAL_BAD_OUTPUT', `not valid JSON: ${(err as Error).message}`, { cause: err, place: { file: fileName } });
    }
  }
  throw new DocbatchError('EVAL_BAD_OUTPUT', 'not an output docbatch writes (.md, .json or .jsonl)', { place: { file: fileName } });
}

interface Line {
  page?: number;
  conversation_id?: string;
  chunk?: number | string;
  data?: unknown;
  text?: string;
  summary?: string;
  error?: { code?: string; message?: string };
}

function parseJsonl(fileName: string, content: string, want: ContentKind | undefined): OutputContent {
  const lines: Line[] = [];
  content.split('\n').forEach((raw, i) => {
    if (raw.trim() === '') return;
    let line: unknown;
    try {
      line = JSON.parse(raw);
    } catch (err) {
      throw new DocbatchError('EVAL_BAD_OUTPUT', `not valid JSON: ${(err as Error).message}`, { cause: err, place: { file: fileName, line: i + 1 } });
    }
    if (typeof line !== 'object' || line === null || Array.isArray(line)) {
      throw new DocbatchError('EVAL_BAD_OUTPUT', 'a line is not a JSON object', { place: { file: fileName, line: i + 1 } });
    }
    lines.push(line as Line);
  });
  const hasData = lines.some((l) => 'data' in l);
  const hasText = lines.some((l) => typeof l.text === 'string' || typeof l.summary === 'string');
  const kind: ContentKind = want ?? (hasData || !hasText ? 'fields' : 'text');
  const keyOf = (l: Line, i: number) => (typeof l.page === 'number' ? String(l.page) : l.conversation_id !== undefined ? `${l.conversation_id}#${l.chunk ?? i}` : String(i + 1));
  const failedKeys = lines.flatMap((l, i) => (l.error ? [keyOf(l, i)] : []));
  const failed = failedKeys.length > 0 ? { failed: failedKeys } : {};
  if (kind === 'fields') {
    const value: Record<string, unknown> = {};
    lines.forEach((l, i) => {
      if ('data' in l && !l.error) value[keyOf(l, i)] = l.data;
    });
    return { kind, value, ...failed };
  }
  const textOf = (l: Line) => (typeof l.text === 'string' ? l.text : typeof l.summary === 'string' ? l.summary : '');
  if (lines.length > 0 && lines.every((l) => typeof l.page === 'number')) {
    const pages = lines.map((l): PageText => {
      const page: PageText = { page: l.page!, text: l.error ? '' : textOf(l) };
      if (l.error) page.failed = { code: l.error.code ?? 'UNKNOWN', message: l.error.message ?? '' };
      return page;
    });
    return { kind, text: { pages, text: pages.filter((p) => !p.failed).map((p) => p.text).join('\n') }, ...failed };
  }
  return { kind, text: { pages: null, text: lines.filter((l) => !l.error).map(textOf).join('\n') }, ...failed };
}
