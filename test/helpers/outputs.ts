/**
 * Writes output folders in the writer's layout (X.report.json beside X.json / X.md / X.jsonl),
 * for the eval and compare tests: the contract those verbs read, written by hand.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface DocSpec {
  /** X: the file base name (`X.report.json`). */
  name: string;
  /** The report's `source`. @defaultValue `/inputs/<name>.pdf` */
  source?: string;
  /** The report's `models` (served names). */
  models: string[];
  /** The report's `model`: the model the run named. @defaultValue null */
  model?: string | null;
  /** The report's task hash. @defaultValue 'task-hash-1' */
  taskHash?: string;
  json?: unknown;
  md?: string;
  jsonl?: unknown[];
  failed?: Array<{ unit: number; code: string; message: string; page?: number }>;
}

/** Writes each document's report and outputs into `dir` (created). */
export function writeOutputs(dir: string, docs: DocSpec[]): void {
  mkdirSync(dir, { recursive: true });
  for (const d of docs) {
    const outputs: string[] = [];
    if (d.json !== undefined) {
      writeFileSync(join(dir, `${d.name}.json`), `${JSON.stringify(d.json, null, 2)}\n`);
      outputs.push(join(dir, `${d.name}.json`));
    }
    if (d.md !== undefined) {
      writeFileSync(join(dir, `${d.name}.md`), d.md);
      outputs.push(join(dir, `${d.name}.md`));
    }
    if (d.jsonl !== undefined) {
      writeFileSync(join(dir, `${d.name}.jsonl`), d.jsonl.map((l) => `${JSON.stringify(l)}\n`).join(''));
      outputs.push(join(dir, `${d.name}.jsonl`));
    }
    const output = d.md !== undefined ? 'text' : 'json';
    const report = {
      document: `d${d.name.replace(/[^a-z0-9]/gi, '').slice(0, 20)}`,
      source: d.source ?? `/inputs/${d.name}.pdf`,
      kind: 'pdf',
      model: d.model ?? null,
      models: d.models,
      task: { name: output === 'text' ? 'transcribe' : 'invoice', unit: output === 'text' ? 'page' : 'document', output, hash: d.taskHash ?? 'task-hash-1' },
      units: 1,
      completed: d.failed?.length ? 0 : 1,
      failed: d.failed ?? [],
      outputs: [...outputs, join(dir, `${d.name}.report.json`)],
    };
    writeFileSync(join(dir, `${d.name}.report.json`), `${JSON.stringify(report, null, 2)}\n`);
  }
}
