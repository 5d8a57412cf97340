/**
 * Task files (YAML or JSON) and the enqueue flags that shape a task (`--task`, `--prompt`,
 * `--schema`, `--unit`, `--model`) → a validated Task. Every mistake is a TASK_INVALID naming the
 * file and the field; nothing is enqueued with a task that could fail on its thousandth unit.
 * The format is documented in docs/tasks.md.
 */
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { DocbatchError } from '../errors.ts';
import { BUILTIN_TASKS, defaultTaskFor, isBuiltinTask, unitsFor } from './builtin.ts';
import { lintSchema, SCHEMA_KEYWORDS } from './schema.ts';
import { invalid, lineOfField, parseStructured, readText, refuseDuplicateKeys, type Where } from './task-text.ts';
import { unavailablePlaceholders, unknownPlaceholders, VARIABLES } from './template.ts';
import type { InputKind, Task, TaskUnit } from './types.ts';

const UNITS = ['page', 'document', 'chunk', 'conversation'] as const;

/** The file format: snake_case, everything optional but `prompt` (or a built-in to start from). */
const TaskFile = z
  .object({
    name: z.string().min(1).max(100).optional(),
    description: z.string().optional(),
    /** Start from a built-in task and change what follows. */
    extends: z.enum(['transcribe', 'summarize']).optional(),
    unit: z.enum(UNITS).optional(),
    system: z.string().optional(),
    prompt: z.string().min(1).optional(),
    output: z
      .object({
        type: z.enum(['text', 'json']).optional(),
        schema: z.union([z.string().min(1), z.record(z.string(), z.unknown())]).optional(),
        name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, _ and - only, at most 64').optional(),
      })
      .strict()
      .optional(),
    sampling: z
      .object({
        temperature: z.number().min(0).max(2).optional(),
        max_tokens: z.number().int().min(1).max(1_000_000).optional(),
        top_p: z.number().gt(0).max(1).optional(),
        seed: z.number().int().optional(),
        stop: z.array(z.string().min(1)).max(16).optional(),
      })
      .strict()
      .optional(),
    model: z.string().min(1).optional(),
    models: z.array(z.string().min(1)).optional(),
    image: z
      .object({ size: z.number().int().min(64).max(10000).optional(), format: z.enum(['png', 'jpeg']).optional() })
      .strict()
      .optional(),
    text_layer: z.boolean().optional(),
    text_layer_note: z.string().optional(),
    retries: z.number().int().min(0).max(10).optional(),
    fallback: z.enum(['none', 'text-layer']).optional(),
    max_pages: z.number().int().min(1).max(100).optional(),
  })
  .strict();

/** What the enqueue command says about the task. */
export interface TaskSpec {
  /** A task file path, or a built-in name. */
  task?: string;
  /** `--prompt TEXT`, or the contents of `--prompt @FILE`. */
  prompt?: string;
  /** `--schema FILE.json`. */
  schema?: string;
  unit?: TaskUnit;
  /** `--model` (repeatable): replaces the task's models. */
  models?: string[];
}

/**
 * The prompt of a task made from `--schema` alone. "use null" only where the schema allows it: a
 * null the schema refuses is an invalid answer.
 */
export function defaultExtractPrompt(kind: InputKind): string {
  const what = kind === 'chat' ? 'conversation' : 'document';
  return `Extract the information the JSON schema describes from this ${what}. Answer with one JSON value that follows the schema; where the ${what} does not say, use null if the schema allows it.`;
}

/**
 * A JSON Schema given inline or as a file (relative to `base`). Mistakes name `owner` (the task
 * file that refers to the schema) and its `output.schema` field, or the schema file itself when
 * it came from `--schema`.
 */
function loadSchema(source: string | Record<string, unknown>, base: string, owner?: string): Record<string, unknown> {
  let schema: unknown = source;
  let path: string | undefined;
  const where = (): Where => (owner ? { file: owner, field: 'output.schema' } : { file: path });
  const named = () => (owner && path ? ` (${path})` : '');
  if (typeof source === 'string') {
    path = resolve(base, source);
    const text = readText(path, 'JSON Schema', where());
    try {
      schema = JSON.parse(text);
    } catch (err) {
      throw invalid(`the schema${named()} is not valid JSON: ${(err as Error).message}`, where(), err);
    }
    refuseDuplicateKeys(text, where(), `the schema${named()}`);
  }
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) throw invalid(`the schema${named()} must be a JSON object`, where());
  let lint: ReturnType<typeof lintSchema>;
  try {
    lint = lintSchema(schema as Record<string, unknown>);
  } catch (err) {
    throw invalid(`the schema${named()} is not a usable JSON Schema: ${(err as Error).message}`, where(), err);
  }
  if (lint.unknownFormats.length > 0) {
    throw invalid(`the schema${named()} names the unknown format ${JSON.stringify(lint.unknownFormats[0])}: nothing would be checked (the formats are date, time, date-time, duration, email, hostname, ipv4, ipv6, uri, uri-reference, uuid, regex, ...)`, where());
  }
  for (const keyword of lint.unknownKeywords) {
    const near = misspeltKeyword(keyword);
    if (near) throw invalid(`the schema${named()} has the unknown keyword ${JSON.stringify(keyword)}${near}: Ajv would ignore it`, where());
  }
  return schema as Record<string, unknown>;
}

/** The fields the task file format knows at a path ('' = the top). */
function knownFields(path: readonly PropertyKey[]): string[] {
  const top = TaskFile.shape;
  if (path.length === 0) return Object.keys(top);
  const sub = top[path[0] as keyof typeof top] as unknown as { unwrap?: () => { shape?: Record<string, unknown> } } | undefined;
  return Object.keys(sub?.unwrap?.().shape ?? {});
}

/** ` (did you mean "x"?)` when one known word is within two edits of `word`, else ''. */
/**
 * Whether an unknown schema keyword is a misspelt known one: one edit in a word of 5 letters or
 * more, two in one of 8 or more. Short words (`unit`, `note`, `kind`) are annotations a schema may
 * carry; so is OpenAPI's `example`.
 */
function misspeltKeyword(keyword: string): string {
  if (keyword === 'example' || keyword.length < 5) return '';
  const limit = keyword.length >= 8 ? 2 : 1;
  let best: string | null = null;
  let bestDistance = limit + 1;
  for (const candidate of SCHEMA_KEYWORDS) {
    const d = editDistance(keyword.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best ? ` (did you mean ${JSON.stringify(best)}?)` : '';
}

export function didYouMean(word: string, known: readonly string[]): string {
  let best: string | null = null;
  let bestDistance = 3;
  for (const candidate of known) {
    const d = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best ? ` (did you mean ${JSON.stringify(best)}?)` : '';
}

function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
}

/** A task file → Task (relative schema paths resolve against the file's folder). */
export function loadTaskFile(path: string): Task {
  const file = resolve(path);
  // A bare word that is no file is most likely a built-in task's name, mistyped.
  const builtin = /^[A-Za-z_-]+$/.test(path) && !existsSync(file) ? didYouMean(path, Object.keys(BUILTIN_TASKS)) : '';
  if (builtin) throw invalid(`no task file ${JSON.stringify(path)} and no built-in task of that name${builtin}; the built-in tasks are ${Object.keys(BUILTIN_TASKS).join(', ')}`, { file });
  const text = readText(file, 'task file');
  const raw = parseStructured(text, file);
  try {
    return taskFromObject(raw, file);
  } catch (err) {
    // A mistake in a field also says the line it is on.
    const place = err instanceof DocbatchError ? err.place : undefined;
    if (err instanceof DocbatchError && err.code === 'TASK_INVALID' && place?.file === file && place.field && place.line === undefined) {
      const line = lineOfField(text, place.field);
      if (line !== undefined) throw invalid(err.message, { file, line, field: place.field }, err.cause);
    }
    throw err;
  }
}

export function taskFromObject(raw: unknown, file: string): Task {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw invalid('a task file holds one object (`prompt: ...`, `unit: ...`); see docs/tasks.md', { file });
  // Top-level `x-` fields are the file's own (a place for YAML anchors to merge from), as in Compose files.
  const parsed = TaskFile.safeParse(Object.fromEntries(Object.entries(raw).filter(([key]) => !key.startsWith('x-'))));
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    if (issue.code === 'unrecognized_keys') {
      const key = issue.keys[0]!;
      throw invalid(`unknown field${didYouMean(key, knownFields(issue.path))}; the fields are in docs/tasks.md`, { file, field: [...issue.path, key].join('.') });
    }
    throw invalid(issue.message, { file, field: issue.path.join('.') || undefined });
  }
  const t = parsed.data;
  const base = t.extends ? BUILTIN_TASKS[t.extends] : null;
  if (!base && !t.prompt) throw invalid('a task needs a prompt (or `extends: transcribe|summarize`)', { file, field: 'prompt' });
  const schema = t.output?.schema !== undefined ? loadSchema(t.output.schema, dirname(file), file) : null;
  if (t.output?.type === 'text' && schema) throw invalid('output.type text cannot have a schema', { file, field: 'output' });
  const output: Task['output'] = schema
    ? { type: 'json', schema, name: t.output?.name ?? 'answer' }
    : t.output?.type === 'json'
      ? { type: 'json', schema: {}, name: t.output?.name ?? 'answer' }
      : (base?.output ?? { type: 'text' });
  if (t.model && t.models) throw invalid('give `model` or `models`, not both', { file, field: 'models' });
  const task: Task = {
    name: t.name ?? base?.name ?? 'task',
    ...(t.description ?? base?.description ? { description: t.description ?? base?.description } : {}),
    unit: t.unit ?? base?.unit ?? 'page',
    ...(t.system ?? base?.system ? { system: t.system ?? base?.system } : {}),
    prompt: t.prompt ?? base!.prompt,
    output,
    sampling: {
      temperature: t.sampling?.temperature ?? base?.sampling.temperature ?? 0,
      ...(t.sampling?.max_tokens !== undefined ? { maxTokens: t.sampling.max_tokens } : {}),
      ...(t.sampling?.top_p !== undefined ? { topP: t.sampling.top_p } : {}),
      ...(t.sampling?.seed !== undefined ? { seed: t.sampling.seed } : {}),
      ...(t.sampling?.stop !== undefined ? { stop: t.sampling.stop } : {}),
    },
    // Named twice, a model would run every unit twice under one document id.
    models: [...new Set(t.models ?? (t.model ? [t.model] : []))],
    image: { ...(t.image?.size ? { size: t.image.size } : {}), ...(t.image?.format ? { format: t.image.format } : {}) },
    textLayer: t.text_layer ?? base?.textLayer ?? true,
    ...(t.text_layer_note ?? base?.textLayerNote ? { textLayerNote: t.text_layer_note ?? base?.textLayerNote } : {}),
    retries: t.retries ?? base?.retries ?? 3,
    // A fallback the base task has is inherited only where it works (text output, the page unit):
    // `extends: transcribe` with `unit: document` is a valid task without it.
    fallback: t.fallback ?? (output.type === 'json' || (t.unit ?? base?.unit ?? 'page') !== 'page' ? 'none' : (base?.fallback ?? 'none')),
    maxPages: t.max_pages ?? 8,
  };
  checkTask(task, file);
  return task;
}

const TEMPLATES = [['prompt', (t: Task) => t.prompt], ['system', (t: Task) => t.system ?? '']] as const;

function checkTask(task: Task, file?: string): void {
  for (const [field, template] of TEMPLATES) {
    const unknown = unknownPlaceholders(template(task));
    if (unknown.length > 0) {
      const name = unknown[0]!;
      const written = name.endsWith('}') ? `{{${name}` : `{{${name}}}`;
      const near = didYouMean(name.replace(/[^A-Za-z0-9_]+/g, '_').replace(/_+$/, ''), Object.keys(VARIABLES));
      throw invalid(`unknown variable ${written}${near}; placeholders are {{name}} with a name from docs/tasks.md`, { file, field });
    }
  }
  const unavailable = unitVariables(task);
  if (unavailable) throw invalid(unavailable.message, { file, field: unavailable.field });
  if (task.fallback === 'text-layer' && task.output.type !== 'text') throw invalid('fallback text-layer needs a text output', { file, field: 'fallback' });
  if (task.fallback === 'text-layer' && task.unit !== 'page') throw invalid('fallback text-layer works on the page unit only', { file, field: 'fallback' });
}

/** A variable of the templates that the task's unit gives no value, or null. */
function unitVariables(task: Task): { field: string; message: string } | null {
  for (const [field, template] of TEMPLATES) {
    const unavailable = unavailablePlaceholders(template(task), task.unit);
    if (unavailable.length > 0) return { field, message: `{{${unavailable[0]}}} has no value in a ${task.unit} unit (see the variables in docs/tasks.md)` };
  }
  return null;
}

/**
 * The task for one input kind, from what the command said: a task file or built-in name, then
 * `--prompt`, `--schema`, `--unit`, `--model` on top. Without a task, the kind's default task is
 * the start (transcribe for PDFs and images, summarize for exports). Throws TASK_INVALID for a
 * bad task; returns a reason (for TASK_UNIT_MISMATCH) when the task's unit does not fit the kind.
 */
export function resolveTask(spec: TaskSpec, kind: InputKind, cache: Map<string, Task> = new Map()): Task | { mismatch: string } {
  let task: Task;
  if (spec.task === undefined) task = defaultTaskFor(kind);
  else if (isBuiltinTask(spec.task)) task = BUILTIN_TASKS[spec.task];
  else {
    const key = resolve(spec.task);
    task = cache.get(key) ?? loadTaskFile(spec.task); // as typed: a bare word may be a built-in mistyped
    cache.set(key, task);
  }
  const base = task;
  if (spec.prompt !== undefined || spec.schema !== undefined || spec.unit !== undefined || spec.models !== undefined) {
    task = { ...task, sampling: { ...task.sampling }, image: { ...task.image } };
    if (spec.schema !== undefined) {
      const schema = loadSchema(spec.schema, process.cwd());
      task.output = { type: 'json', schema, name: 'answer' };
      task.fallback = 'none';
      if (spec.prompt === undefined && spec.task === undefined) {
        // The default task's instructions (transcribe a page, summarize a chat) do not apply.
        task.prompt = defaultExtractPrompt(kind);
        delete task.textLayerNote;
        delete task.system;
        task.name = 'extract';
      }
    }
    if (spec.prompt !== undefined) {
      if (spec.prompt.trim() === '') throw invalid('--prompt is empty', { field: 'prompt' });
      task.prompt = spec.prompt;
      if (spec.task === undefined) task.name = task.output.type === 'json' ? 'extract' : 'custom';
    }
    if (spec.unit !== undefined) {
      task.unit = spec.unit;
      if (task.fallback === 'text-layer' && spec.unit !== 'page') task.fallback = 'none';
    }
    if (spec.models !== undefined) task.models = [...new Set(spec.models)];
  }
  if (!unitsFor(kind).includes(task.unit)) {
    return { mismatch: `task ${JSON.stringify(task.name)} works on ${task.unit} units, which ${kind === 'chat' ? 'a chat export' : `a ${kind === 'pdf' ? 'PDF' : 'image'}`} does not have (use ${unitsFor(kind).join(' or ')})` };
  }
  if (task !== base) {
    // The unit came from the kind's default task (no --task, no --unit): a variable it has no
    // value for makes the prompt unfit for this kind of input only (a PDF among chat exports).
    const unavailable = spec.task === undefined && spec.unit === undefined ? unitVariables(task) : null;
    if (unavailable) return { mismatch: `--prompt: ${unavailable.message}` };
    checkTask(task, spec.task);
  }
  return task;
}

/** `--prompt @FILE` reads FILE; any other value is the prompt itself. */
export function promptArgument(value: string): string {
  return value.startsWith('@') ? readText(resolve(value.slice(1)), 'prompt file', { field: '--prompt' }) : value;
}
