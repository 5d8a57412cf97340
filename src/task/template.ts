/**
 * Prompt templates: `{{name}}` placeholders, nothing else (no logic, no escapes). The variables
 * are listed in VARIABLES and the units that offer each in VARIABLE_UNITS; a template naming
 * another, or one its unit does not have (`{{page}}` in a `document` task), is refused when the
 * task is loaded, not when the thousandth page reaches it.
 */
import type { TaskUnit } from './types.ts';

export const VARIABLES = {
  file: 'the input file name (without folders)',
  page: 'the page number (1-based; page units)',
  pages: 'the number of pages of the document',
  text: "the unit's text: a page's text layer, a chunk's conversation text",
  title: "the conversation's title (chat units)",
  conversation_id: "the conversation's id (chat units)",
  chunk: 'the chunk number within its conversation (1-based)',
  chunks: 'the number of chunks of the conversation',
  part: '"part N of M of " when a conversation has several chunks, else empty',
} as const;

export type VariableName = keyof typeof VARIABLES;

/**
 * The units that give each variable a value. `part` is empty for a conversation answered whole,
 * but the built-in summarize prompt uses it, so a `conversation` task may name it.
 */
export const VARIABLE_UNITS: Record<VariableName, readonly TaskUnit[]> = {
  file: ['page', 'document', 'chunk', 'conversation'],
  page: ['page'],
  pages: ['page', 'document'],
  text: ['page', 'document', 'chunk', 'conversation'],
  title: ['chunk', 'conversation'],
  conversation_id: ['chunk', 'conversation'],
  chunk: ['chunk'],
  chunks: ['chunk', 'conversation'],
  part: ['chunk', 'conversation'],
};
export type Variables = Partial<Record<VariableName, string | number>>;

const PLACEHOLDER = /\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g;

/** Names used by a template. */
export function placeholders(template: string): string[] {
  return [...template.matchAll(PLACEHOLDER)].map((m) => m[1]!);
}

/**
 * What looks meant as one of our placeholders but is not: `{{conversation-id}}`, `{{ page number }}`
 * (words joined by `-` or spaces that together spell a variable, or two words one of which is
 * one), `{{file}` (not closed). These would reach the model as written. Anything else in double braces is the user's
 * text: Handlebars or Jinja examples (`{{user.name}}`, `{{#each}}`), BibTeX (`{{The Title}}`),
 * LaTeX; `{{` appears in no JSON.
 */
const MISTAKEN = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:[-\s]+[A-Za-z0-9_]+)+)\s*\}\}|\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}(?!\})/g;

/** `conversation-id` (a variable, spelt otherwise), `page number` (two words, one a variable). */
function meantAsVariable(words: string[]): boolean {
  const lower = words.map((w) => w.toLowerCase());
  return lower.join('_') in VARIABLES || (lower.length === 2 && lower.some((w) => w in VARIABLES));
}

/** Unknown placeholders of a template (empty when all are known), mistaken ones as written. */
export function unknownPlaceholders(template: string): string[] {
  const unknown = placeholders(template).filter((name) => !(name in VARIABLES));
  for (const m of template.matchAll(MISTAKEN)) {
    if (m[1] !== undefined && meantAsVariable(m[1].split(/[-\s]+/))) unknown.push(m[1].trim());
    else if (m[2] !== undefined && m[2] in VARIABLES) unknown.push(`${m[2]}}`);
  }
  return unknown;
}

/** Known placeholders of a template that `unit` gives no value (empty when all apply). */
export function unavailablePlaceholders(template: string, unit: TaskUnit): VariableName[] {
  return placeholders(template).filter((name): name is VariableName => name in VARIABLES && !VARIABLE_UNITS[name as VariableName].includes(unit));
}

export function usesVariable(template: string, name: VariableName): boolean {
  return placeholders(template).includes(name);
}

/** Fills the placeholders; a variable the unit does not have becomes an empty string. */
export function render(template: string, vars: Variables): string {
  return template.replace(PLACEHOLDER, (_, name: string) => {
    const value = vars[name as VariableName];
    return value === undefined ? '' : String(value);
  });
}
