/**
 * Prompt templates: `{{name}}` placeholders, nothing else (no logic, no escapes). The variables
 * a unit offers are listed in VARIABLES; a template naming any other is refused when the task is
 * loaded, not when the thousandth page reaches it.
 */

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
export type Variables = Partial<Record<VariableName, string | number>>;

const PLACEHOLDER = /\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g;

/** Names used by a template. */
export function placeholders(template: string): string[] {
  return [...template.matchAll(PLACEHOLDER)].map((m) => m[1]!);
}

/** Unknown placeholders of a template (empty when all are known). */
export function unknownPlaceholders(template: string): string[] {
  return placeholders(template).filter((name) => !(name in VARIABLES));
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
