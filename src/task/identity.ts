/**
 * A task's identity: the sha256 of its canonical JSON (keys sorted at every level, no
 * whitespace), leaving out what does not change the answers (name, description). Two task files
 * that say the same thing in another order or format are the same task.
 */
import { createHash } from 'node:crypto';
import type { Task } from './types.ts';

export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/** The part of a task that decides its answers (models are part of the run, not the task). */
export function taskIdentity(task: Task): Record<string, unknown> {
  const { name: _name, description: _description, models: _models, ...rest } = task;
  return rest;
}

export function taskHash(task: Task): string {
  return createHash('sha256').update(canonicalJson(taskIdentity(task))).digest('hex');
}
