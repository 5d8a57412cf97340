/**
 * JSON Schema validation of structured answers, with Ajv (the most used JSON Schema validator for
 * JavaScript: draft-07 and 2020-12, formats via ajv-formats; compiling a schema once and reusing
 * the function is what makes validating every answer cheap). Compiled validators are cached by
 * schema text.
 */
import { createRequire } from 'node:module';
import type { Ajv, ErrorObject, ValidateFunction } from 'ajv';
import { canonicalJson } from './identity.ts';

// Ajv and ajv-formats are CommonJS, loaded on first use: ~30-50 ms that a command whose task has
// no schema (enqueue of the built-in transcribe) does not pay. `require` gives the very classes
// an `import` would.
const require = createRequire(import.meta.url);
let ajvModules: { Ajv: typeof import('ajv').Ajv; Ajv2020: typeof import('ajv/dist/2020.js').Ajv2020; addFormats: (ajv: Ajv) => Ajv } | undefined;

function loadAjv(): NonNullable<typeof ajvModules> {
  if (!ajvModules) {
    const formats = require('ajv-formats') as { default?: unknown };
    ajvModules = {
      Ajv: (require('ajv') as typeof import('ajv')).Ajv,
      Ajv2020: (require('ajv/dist/2020.js') as typeof import('ajv/dist/2020.js')).Ajv2020,
      addFormats: (formats.default ?? formats) as (ajv: Ajv) => Ajv,
    };
  }
  return ajvModules;
}

const cache = new Map<string, ValidateFunction>();

/** Keywords only draft 2020-12 (or 2019-09) has: a schema using them without `$schema` means it. */
const DRAFT_2020_ONLY = new Set(['prefixItems', 'unevaluatedProperties', 'unevaluatedItems', 'dependentRequired', 'dependentSchemas', '$dynamicRef', '$dynamicAnchor', 'minContains', 'maxContains']);

/** Every JSON Schema keyword of draft-07 and 2020-12 (and the annotations), for "did you mean". */
export const SCHEMA_KEYWORDS = [
  '$schema', '$id', '$ref', '$defs', 'definitions', '$comment', '$anchor', '$dynamicRef', '$dynamicAnchor', '$vocabulary',
  'type', 'enum', 'const', 'multipleOf', 'maximum', 'exclusiveMaximum', 'minimum', 'exclusiveMinimum', 'maxLength', 'minLength',
  'pattern', 'format', 'items', 'prefixItems', 'additionalItems', 'contains', 'minContains', 'maxContains', 'maxItems', 'minItems',
  'uniqueItems', 'maxProperties', 'minProperties', 'required', 'properties', 'patternProperties', 'additionalProperties',
  'propertyNames', 'dependencies', 'dependentRequired', 'dependentSchemas', 'unevaluatedProperties', 'unevaluatedItems',
  'allOf', 'anyOf', 'oneOf', 'not', 'if', 'then', 'else', 'title', 'description', 'default', 'examples', 'readOnly', 'writeOnly',
  'deprecated', 'contentEncoding', 'contentMediaType', 'contentSchema',
];

/** Whether a schema is draft 2020-12: it says so, or uses a keyword only 2020-12 has (anywhere in it). */
function isDraft2020(schema: Record<string, unknown>): boolean {
  if (typeof schema.$schema === 'string') return schema.$schema.includes('2020-12') || schema.$schema.includes('2019-09');
  const uses = (value: unknown, depth: number): boolean => {
    if (depth > 64 || value === null || typeof value !== 'object') return false;
    if (Array.isArray(value)) return value.some((v) => uses(v, depth + 1));
    return Object.entries(value).some(([k, v]) => DRAFT_2020_ONLY.has(k) || uses(v, depth + 1));
  };
  return uses(schema, 0);
}

/** Where Ajv's warnings go: an unknown format is a mistake to report, not a line on stderr. */
interface Warnings {
  formats: string[];
}

function ajvFor(schema: Record<string, unknown>, options: { strictSchema?: boolean; warnings?: Warnings } = {}): Ajv {
  const { Ajv, Ajv2020, addFormats } = loadAjv();
  const warn = (...args: unknown[]) => {
    const format = /unknown format "([^"]+)"/.exec(args.map(String).join(' '))?.[1];
    if (format !== undefined && options.warnings && !options.warnings.formats.includes(format)) options.warnings.formats.push(format);
  };
  const settings = {
    allErrors: true,
    strict: false,
    ...(options.strictSchema ? { strictSchema: true } : {}),
    logger: { log: () => undefined, warn, error: () => undefined },
  };
  const ajv = isDraft2020(schema) ? new Ajv2020(settings) : new Ajv(settings);
  addFormats(ajv as Ajv);
  return ajv as Ajv;
}

/**
 * Mistakes in a schema that Ajv lets pass: formats it does not know (`format: dat`: nothing would
 * be checked), and keywords it does not know (`requird`: nothing would be required). Unknown
 * keywords are returned for the caller to judge (an annotation like `example` is harmless; a
 * near miss of a keyword is a typo). Throws with Ajv's reason when the schema is bad.
 */
export function lintSchema(schema: Record<string, unknown>): { unknownFormats: string[]; unknownKeywords: string[] } {
  const warnings: Warnings = { formats: [] };
  ajvFor(schema, { warnings }).compile(schema);
  const unknownKeywords: string[] = [];
  const strict = ajvFor(schema, { strictSchema: true });
  for (let i = 0; i < 50; i++) {
    try {
      strict.compile(schema);
      break;
    } catch (err) {
      const keyword = /unknown keyword: "([^"]+)"/.exec((err as Error).message)?.[1];
      if (keyword === undefined || unknownKeywords.includes(keyword)) break;
      unknownKeywords.push(keyword);
      strict.addKeyword(keyword);
    }
  }
  return { unknownFormats: warnings.formats, unknownKeywords };
}

/** Compiles (or takes from the cache) the validator of a schema; throws with Ajv's reason when the schema is bad. */
export function compileSchema(schema: Record<string, unknown>): ValidateFunction {
  const key = canonicalJson(schema);
  let validate = cache.get(key);
  if (!validate) {
    validate = ajvFor(schema).compile(schema);
    if (cache.size > 100) cache.delete(cache.keys().next().value!);
    cache.set(key, validate);
  }
  return validate;
}

/** null when `value` is valid; otherwise the first few violations in one line. */
export function schemaViolations(schema: Record<string, unknown>, value: unknown): string | null {
  const validate = compileSchema(schema);
  if (validate(value)) return null;
  return describeErrors(validate.errors ?? []);
}

export function describeErrors(errors: ErrorObject[]): string {
  const shown = errors.slice(0, 5).map((e) => `${e.instancePath || '(root)'} ${e.message ?? 'is invalid'}`);
  return shown.join('; ') + (errors.length > 5 ? `; and ${errors.length - 5} more` : '');
}
