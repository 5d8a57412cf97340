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

function ajvFor(schema: Record<string, unknown>): Ajv {
  const { Ajv, Ajv2020, addFormats } = loadAjv();
  const draft2020 = typeof schema.$schema === 'string' && schema.$schema.includes('2020-12');
  const ajv = draft2020 ? new Ajv2020({ allErrors: true, strict: false }) : new Ajv({ allErrors: true, strict: false });
  addFormats(ajv as Ajv);
  return ajv as Ajv;
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
