/**
 * JSON Schema validation of structured answers, with Ajv (the most used JSON Schema validator for
 * JavaScript: draft-06, -07, 2019-09 and 2020-12, and draft-04 read as -06; formats via ajv-formats; compiling a schema once and reusing
 * the function is what makes validating every answer cheap). Compiled validators are cached by
 * schema text.
 */
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import type { Ajv, ErrorObject, ValidateFunction } from 'ajv';
import { canonicalJson } from './identity.ts';

// Ajv and ajv-formats are CommonJS, loaded on first use: ~30-50 ms that a command whose task has
// no schema (enqueue of the built-in transcribe) does not pay. `require` gives the very classes
// an `import` would.
const require = createRequire(import.meta.url);
let ajvModules:
  | { Ajv: typeof import('ajv').Ajv; Ajv2019: typeof import('ajv/dist/2019.js').Ajv2019; Ajv2020: typeof import('ajv/dist/2020.js').Ajv2020; addFormats: (ajv: Ajv) => Ajv; draft06: object }
  | undefined;

function loadAjv(): NonNullable<typeof ajvModules> {
  if (!ajvModules) {
    const formats = require('ajv-formats') as { default?: unknown };
    ajvModules = {
      Ajv: (require('ajv') as typeof import('ajv')).Ajv,
      Ajv2019: (require('ajv/dist/2019.js') as typeof import('ajv/dist/2019.js')).Ajv2019,
      Ajv2020: (require('ajv/dist/2020.js') as typeof import('ajv/dist/2020.js')).Ajv2020,
      addFormats: (formats.default ?? formats) as (ajv: Ajv) => Ajv,
      draft06: require('ajv/dist/refs/json-schema-draft-06.json') as object,
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

type Draft = '04' | '06' | '07' | '2019-09' | '2020-12';

/** The meta-schema id each Ajv class knows a draft by (Ajv refuses any other spelling of it). */
const META_IDS: Record<Draft, string> = {
  '04': 'http://json-schema.org/draft-06/schema#', // validated as draft-06: see forAjv
  '06': 'http://json-schema.org/draft-06/schema#',
  '07': 'http://json-schema.org/draft-07/schema#',
  '2019-09': 'https://json-schema.org/draft/2019-09/schema',
  '2020-12': 'https://json-schema.org/draft/2020-12/schema',
};

/**
 * The draft of a schema: the one its `$schema` names, however spelt (http or https, with or
 * without the final `#`: generators and people write all four, and the engine reads none of it);
 * without `$schema`, 2020-12 when it uses a keyword only 2020-12 has (anywhere in it), else
 * draft-07. A `$schema` naming no draft is refused: Ajv would say only "no schema with key or ref".
 */
function draftOf(schema: Record<string, unknown>): Draft {
  const named = schema.$schema;
  if (typeof named === 'string') {
    const draft = /^https?:\/\/json-schema\.org\/(?:draft-(0[467])|draft\/(2019-09|2020-12))\/schema#?$/.exec(named.trim());
    if (!draft) throw new Error(`$schema ${JSON.stringify(named)} names no JSON Schema draft docbatch knows (draft-04, -06, -07, 2019-09, 2020-12: "https://json-schema.org/draft/2020-12/schema")`);
    return (draft[1] ?? draft[2]) as Draft;
  }
  const uses = (value: unknown, depth: number): boolean => {
    if (depth > 64 || value === null || typeof value !== 'object') return false;
    if (Array.isArray(value)) return value.some((v) => uses(v, depth + 1));
    return Object.entries(value).some(([k, v]) => DRAFT_2020_ONLY.has(k) || uses(v, depth + 1));
  };
  return uses(schema, 0) ? '2020-12' : '07';
}

/**
 * The copy of a schema Ajv compiles: `$schema` spelt as Ajv knows it. Ajv 8 has no draft-04; a
 * draft-04 schema differs from draft-06 only in `exclusiveMinimum`/`exclusiveMaximum` being flags
 * on `minimum`/`maximum` and in `id` for `$id`, so those become draft-06's numbers and `$id`.
 * The engine is sent the schema as written.
 */
function forAjv(schema: Record<string, unknown>, draft: Draft): Record<string, unknown> {
  const copy = draft === '04' ? (fromDraft04(schema, 0) as Record<string, unknown>) : { ...schema };
  if (typeof schema.$schema === 'string') copy.$schema = META_IDS[draft];
  return copy;
}

function fromDraft04(value: unknown, depth: number): unknown {
  if (depth > 256 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => fromDraft04(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = fromDraft04(v, depth + 1);
  // draft-04's `id` is draft-06's `$id` (Ajv 8 refuses `id`); a property named id is an object, left alone.
  if (typeof out.id === 'string' && out.$id === undefined) {
    out.$id = out.id;
    delete out.id;
  }
  for (const [flag, bound] of [['exclusiveMinimum', 'minimum'], ['exclusiveMaximum', 'maximum']] as const) {
    if (typeof out[flag] !== 'boolean') continue;
    if (out[flag] === true && typeof out[bound] === 'number') {
      out[flag] = out[bound];
      delete out[bound];
    } else delete out[flag];
  }
  return out;
}

const IRI = /^[a-z][a-z0-9+.-]*:[^\s<>"{}|\\^`]*$/iu;
const IDN_LABEL = String.raw`(?!-)[\p{L}\p{M}\p{N}-]{1,63}(?<!-)`;
const IDN_HOSTNAME = new RegExp(`^(?=.{1,253}\\.?$)${IDN_LABEL}(?:\\.${IDN_LABEL})*\\.?$`, 'u');
const uuidOf = (version: number) => new RegExp(`^[0-9a-f]{8}-[0-9a-f]{4}-${version}[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, 'i');
const always = true as const;

/**
 * Formats Ajv's ajv-formats does not have that schemas in the wild name, so they are not refused
 * as unknown: the internationalised formats of draft-07 and 2020-12 (checked loosely: no
 * whitespace, a scheme, an @, labels of letters), and the extensions Pydantic's
 * `model_json_schema()` writes (paths, networks and colours are annotations: nothing says what
 * a valid one is).
 */
const MORE_FORMATS: Record<string, RegExp | true | ((s: string) => boolean)> = {
  'idn-email': /^[^\s@]+@[^\s@]+$/u,
  'idn-hostname': IDN_HOSTNAME,
  iri: IRI,
  'iri-reference': /^[^\s<>"{}|\\^`]*$/u,
  uuid1: uuidOf(1),
  uuid3: uuidOf(3),
  uuid4: uuidOf(4),
  uuid5: uuidOf(5),
  'json-string': (s) => {
    try {
      JSON.parse(s);
      return true;
    } catch {
      return false;
    }
  },
  ipvanyaddress: (s) => isIP(s) !== 0,
  path: always,
  'file-path': always,
  'directory-path': always,
  'name-email': always,
  color: always,
  'multi-host-uri': always,
  'time-delta': always,
  ipv4interface: always,
  ipv6interface: always,
  ipvanyinterface: always,
  ipv4network: always,
  ipv6network: always,
  ipvanynetwork: always,
};

/** Where Ajv's warnings go: an unknown format is a mistake to report, not a line on stderr. */
interface Warnings {
  formats: string[];
}

function ajvFor(draft: Draft, options: { strictSchema?: boolean; warnings?: Warnings } = {}): Ajv {
  const { Ajv, Ajv2019, Ajv2020, addFormats, draft06 } = loadAjv();
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
  const ajv = draft === '2020-12' ? new Ajv2020(settings) : draft === '2019-09' ? new Ajv2019(settings) : new Ajv(settings);
  if (draft === '04' || draft === '06') ajv.addMetaSchema(draft06);
  addFormats(ajv as Ajv);
  for (const [name, format] of Object.entries(MORE_FORMATS)) ajv.addFormat(name, format);
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
  const draft = draftOf(schema);
  const compiled = forAjv(schema, draft);
  ajvFor(draft, { warnings }).compile(compiled);
  const unknownKeywords: string[] = [];
  const strict = ajvFor(draft, { strictSchema: true });
  for (let i = 0; i < 50; i++) {
    try {
      strict.compile(compiled);
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
    const draft = draftOf(schema);
    validate = ajvFor(draft).compile(forAjv(schema, draft));
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
