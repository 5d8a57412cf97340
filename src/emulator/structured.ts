/**
 * Structured output as vLLM takes it: `response_format` (`json_schema`, `json_object`, `text`)
 * and vLLM's own `structured_outputs` (`json` as an object or a JSON string, `json_object`,
 * `choice`), merged the way vLLM merges them (response_format fills in structured_outputs; two
 * kinds of constraint at once is a 400), with vLLM's messages for the 400s. `regex`, `grammar`
 * and `structural_tag` are accepted but not emulated: the answer is unconstrained. The old
 * `guided_json` field is not read at all (vLLM ignores it too since late 2025), unless the
 * emulator acts out an older server (`asSupported`, the structuredOutputs option).
 *
 * Also the answer's text: JSON written as a model writes it (`{"a": 1, "b": [2, 3]}`), with the
 * place of its last string value (where a cut-off or looping answer goes astray).
 */
import { badRequest } from './errors.ts';
import { normalizeLabel } from './labels.ts';
import { checkSchema, SchemaError, type Schema } from './schema.ts';

/** What the answer must be: JSON (of a schema, or any object when `schema` is null), or one of some strings. */
export type OutputFormat = { kind: 'json'; schema: Schema | null } | { kind: 'choice'; choices: string[] };

const KINDS = ['json', 'regex', 'choice', 'grammar', 'json_object', 'structural_tag'] as const;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Python's repr-ish of the constraint fields, as vLLM's message shows them. */
function describe(constraints: Record<string, unknown>): string {
  return JSON.stringify(Object.fromEntries(KINDS.map((k) => [k, constraints[k] ?? null])));
}

function fromResponseFormat(rf: unknown, into: Record<string, unknown>): void {
  if (!isObject(rf)) throw badRequest('response_format must be an object.', 'response_format');
  switch (rf.type) {
    case 'text':
      return;
    case 'json_object':
      into.json_object = true;
      return;
    case 'json_schema': {
      const js = rf.json_schema;
      if (!isObject(js)) throw badRequest('response_format.json_schema: Field required when type is "json_schema".', 'response_format');
      if (typeof js.name !== 'string') throw badRequest('response_format.json_schema.name: Field required (a string).', 'response_format');
      into.json = js.schema ?? null;
      return;
    }
    case 'structural_tag':
      into.structural_tag = rf;
      return;
    default:
      throw badRequest(
        `response_format.type: Input should be 'text', 'json_object', 'json_schema' or 'structural_tag'; got ${JSON.stringify(rf.type)}.`,
        'response_format',
      );
  }
}

/**
 * The request as a server of this structured-output support reads it (`support`, the
 * emulator's structuredOutputs), or the 400 such a server answers: older vLLM's pydantic refusal
 * of json_schema (and its guided_json read as structured_outputs.json), a gateway's refusal of a
 * type or field it does not take.
 */
export function asSupported(body: Readonly<Record<string, unknown>>, support: 'full' | 'old-vllm' | 'json-object' | 'none' | 'ignored'): Readonly<Record<string, unknown>> {
  if (support === 'full') return body;
  if (support === 'ignored') {
    // Taken without a word, and not read: the model answers as it would without them.
    const { response_format: _rf, structured_outputs: _so, guided_json: _gj, ...rest } = body;
    return rest;
  }
  const rf = isObject(body.response_format) ? body.response_format : undefined;
  if (support === 'old-vllm') {
    if (rf && rf.type !== 'text' && rf.type !== 'json_object') {
      throw badRequest(`1 validation error for ChatCompletionRequest\nresponse_format.type\n  Input should be 'text' or 'json_object' [type=literal_error, input_value=${JSON.stringify(rf.type)}, input_type=str]`, 'response_format');
    }
    if (body.guided_json === undefined || body.guided_json === null) return body;
    const { guided_json: schema, ...rest } = body;
    return { ...rest, structured_outputs: { json: schema } };
  }
  if (body.guided_json !== undefined) throw badRequest('Unrecognized request argument supplied: guided_json', 'guided_json');
  if (body.response_format === undefined || body.response_format === null) return body;
  if (support === 'none') throw badRequest("Unknown parameter: 'response_format'.", 'response_format');
  if (rf && rf.type !== 'text' && rf.type !== 'json_object') {
    throw badRequest(`Invalid parameter: 'response_format' of type ${JSON.stringify(rf.type)} is not supported with this model.`, 'response_format');
  }
  return body;
}

/** docbatch's instruction for engines without structured output (src/engine/structured-fallback.ts schemaInstruction), as a model reads it. */
const SCHEMA_IN_WORDS = /valid against this JSON Schema:\n(.*)/;
const OBJECT_IN_WORDS = /Answer with one JSON object and nothing else/;

/**
 * The JSON a prompt asks for in its words (the schema written into it), for a model that
 * follows its prompt where the server ignores response_format; null when it asks none.
 */
export function promptedFormat(texts: readonly string[]): OutputFormat | null {
  for (const text of texts) {
    const written = SCHEMA_IN_WORDS.exec(text)?.[1];
    if (written !== undefined) {
      try {
        const schema = JSON.parse(written) as unknown;
        checkSchema(schema);
        return { kind: 'json', schema: schema as Schema };
      } catch {
        continue; // not a schema the model can follow: free text
      }
    }
    if (OBJECT_IN_WORDS.test(text)) return { kind: 'json', schema: null };
  }
  return null;
}

/** The output format a request asks for, or null for free text. Throws the 400s vLLM gives. */
export function outputFormatOf(body: Readonly<Record<string, unknown>>): OutputFormat | null {
  const so = body.structured_outputs;
  const rf = body.response_format;
  if ((so === undefined || so === null) && (rf === undefined || rf === null)) return null;
  const constraints: Record<string, unknown> = {};
  if (so !== undefined && so !== null) {
    if (!isObject(so)) throw badRequest('structured_outputs must be an object.', 'structured_outputs');
    if (['json', 'regex', 'choice'].filter((k) => so[k] !== undefined && so[k] !== null).length > 1) {
      throw badRequest("You can only use one kind of constraints for structured outputs ('json', 'regex' or 'choice').");
    }
    for (const k of KINDS) if (so[k] !== undefined && so[k] !== null) constraints[k] = so[k];
  }
  if (rf !== undefined && rf !== null) fromResponseFormat(rf, constraints);
  const kinds = KINDS.filter((k) => constraints[k] !== undefined && constraints[k] !== null && constraints[k] !== false);
  if (kinds.length > 1) {
    throw badRequest(`You can only use one kind of structured outputs constraint but multiple are specified: ${describe(constraints)}`);
  }
  const kind = kinds[0];
  if (kind === undefined) {
    // response_format text alone is free text; an empty structured_outputs is refused.
    if (so === undefined || so === null) return null;
    throw badRequest(`You must use one kind of structured outputs constraint but none are specified: ${describe(constraints)}`);
  }
  if (kind === 'json_object') return { kind: 'json', schema: null };
  if (kind === 'choice') {
    const choices = constraints.choice;
    if (!Array.isArray(choices) || choices.length === 0 || !choices.every((c) => typeof c === 'string')) {
      throw badRequest('structured_outputs.choice must be a non-empty list of strings.', 'structured_outputs');
    }
    return { kind: 'choice', choices: choices as string[] };
  }
  if (kind !== 'json') return null; // regex, grammar, structural_tag: not emulated
  let schema = constraints.json;
  if (typeof schema === 'string') {
    try {
      schema = JSON.parse(schema);
    } catch {
      throw badRequest('Invalid JSON grammar specification.');
    }
  }
  try {
    checkSchema(schema);
  } catch (err) {
    if (err instanceof SchemaError) throw badRequest(`Failed to transform json schema into a grammar: ${err.message}`);
    throw err;
  }
  return { kind: 'json', schema: schema as Schema };
}

/** Where the last string value of a JSON text is: its opening and closing quote. */
export interface StringSpan {
  start: number;
  end: number;
}

/** JSON as a model writes it, one line, `": "` and `", "` between parts. */
export function writeJson(value: unknown): { text: string; lastString: StringSpan | null } {
  let text = '';
  let lastString: StringSpan | null = null;
  const write = (v: unknown): void => {
    if (typeof v === 'string') {
      const s = JSON.stringify(v);
      lastString = { start: text.length, end: text.length + s.length - 1 };
      text += s;
    } else if (Array.isArray(v)) {
      text += '[';
      v.forEach((item, i) => {
        if (i > 0) text += ', ';
        write(item);
      });
      text += ']';
    } else if (isObject(v)) {
      text += '{';
      Object.entries(v).forEach(([k, item], i) => {
        text += `${i > 0 ? ', ' : ''}${JSON.stringify(k)}: `;
        write(item);
      });
      text += '}';
    } else {
      text += JSON.stringify(v) ?? 'null';
    }
  };
  write(value);
  return { text, lastString };
}

/** The choice the text names (first in the list that appears as words of the text), else one picked by `bits`. */
export function pickChoice(choices: readonly string[], texts: readonly string[], bits: number): string {
  const haystack = ` ${normalizeLabel(texts.join('\n'))} `;
  const named = choices.find((c) => normalizeLabel(c) !== '' && haystack.includes(` ${normalizeLabel(c)} `));
  return named ?? (choices[bits % choices.length] as string);
}
