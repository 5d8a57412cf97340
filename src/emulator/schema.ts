/**
 * JSON Schema as structured output uses it: checking a schema the way vLLM's grammar compiler
 * refuses one (the caller wraps the message in "Failed to transform json schema into a grammar"),
 * and resolving a node to one concrete shape: `$ref` (local pointers, `$defs`/`definitions`),
 * `allOf` merged, the first non-null branch of `anyOf`/`oneOf`, the first non-null of a type list
 * (a `null` in it makes the node nullable), and a type inferred from `properties`, `items`,
 * `enum` or `const` when none is given.
 */

export type Schema = boolean | Record<string, unknown>;
export type JsonType = 'object' | 'array' | 'string' | 'number' | 'integer' | 'boolean' | 'null';

const TYPES: readonly string[] = ['object', 'array', 'string', 'number', 'integer', 'boolean', 'null'];
const SCHEMA_LISTS = ['anyOf', 'oneOf', 'allOf', 'prefixItems'] as const;
const SCHEMA_MAPS = ['properties', '$defs', 'definitions', 'patternProperties'] as const;
const NUMBER_KEYWORDS = ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'minItems', 'maxItems', 'minLength', 'maxLength', 'multipleOf'] as const;
/** Deeper than this, a recursive schema stops (the generated value is cut there). */
export const MAX_DEPTH = 16;

/** A schema node resolved to one shape. `s` holds its keywords (merged, $ref followed). */
export interface ResolvedNode {
  type: JsonType | 'any';
  nullable: boolean;
  s: Record<string, unknown>;
}

export class SchemaError extends Error {}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Follows a local JSON pointer (`#`, `#/$defs/Item`, `#/properties/a~1b`). */
function pointer(root: Schema, ref: string): Schema | undefined {
  if (!ref.startsWith('#')) return undefined;
  let at: unknown = root;
  for (const raw of ref.slice(1).split('/').slice(1)) {
    const key = decodeURIComponent(raw).replaceAll('~1', '/').replaceAll('~0', '~');
    if (Array.isArray(at)) at = at[Number(key)];
    else if (isObject(at)) at = at[key];
    else return undefined;
  }
  return typeof at === 'boolean' || isObject(at) ? at : undefined;
}

/** Throws a SchemaError saying where and what, for what a grammar compiler would refuse. */
export function checkSchema(root: unknown): void {
  if (typeof root !== 'boolean' && !isObject(root)) throw new SchemaError('the schema must be a JSON object');
  const visited = new Set<object>();
  const walk = (s: unknown, at: string): void => {
    if (typeof s === 'boolean') return;
    if (!isObject(s)) throw new SchemaError(`${at}: a schema must be an object or a boolean`);
    if (visited.has(s)) return;
    visited.add(s);
    if (s.$ref !== undefined) {
      if (typeof s.$ref !== 'string') throw new SchemaError(`${at}: $ref must be a string`);
      const target = pointer(root as Schema, s.$ref);
      if (target === undefined) throw new SchemaError(`${at}: cannot resolve $ref ${JSON.stringify(s.$ref)}`);
      walk(target, s.$ref);
    }
    const type = s.type;
    if (type !== undefined) {
      const types = Array.isArray(type) ? type : [type];
      if (types.length === 0 || !types.every((t) => typeof t === 'string' && TYPES.includes(t))) {
        throw new SchemaError(`${at}: unsupported type ${JSON.stringify(type)}`);
      }
    }
    for (const key of SCHEMA_MAPS) {
      const map = s[key];
      if (map === undefined) continue;
      if (!isObject(map)) throw new SchemaError(`${at}/${key}: must be an object`);
      for (const [name, sub] of Object.entries(map)) walk(sub, `${at}/${key}/${name}`);
    }
    for (const key of SCHEMA_LISTS) {
      const list = s[key];
      if (list === undefined) continue;
      if (!Array.isArray(list) || list.length === 0) throw new SchemaError(`${at}/${key}: must be a non-empty array`);
      list.forEach((sub, i) => walk(sub, `${at}/${key}/${i}`));
    }
    if (s.items !== undefined) {
      if (Array.isArray(s.items)) s.items.forEach((sub, i) => walk(sub, `${at}/items/${i}`));
      else walk(s.items, `${at}/items`);
    }
    if (s.additionalProperties !== undefined && typeof s.additionalProperties !== 'boolean') walk(s.additionalProperties, `${at}/additionalProperties`);
    if (s.required !== undefined && (!Array.isArray(s.required) || !s.required.every((r) => typeof r === 'string'))) {
      throw new SchemaError(`${at}/required: must be an array of strings`);
    }
    if (s.enum !== undefined && (!Array.isArray(s.enum) || s.enum.length === 0)) throw new SchemaError(`${at}/enum: must be a non-empty array`);
    for (const key of NUMBER_KEYWORDS) {
      if (s[key] !== undefined && (typeof s[key] !== 'number' || !Number.isFinite(s[key]))) throw new SchemaError(`${at}/${key}: must be a number`);
    }
  };
  walk(root, '#');
}

function deref(schema: unknown, root: Schema): Schema {
  let s = schema;
  for (let hops = 0; isObject(s) && typeof s.$ref === 'string'; hops++) {
    if (hops > 32) return true;
    const { $ref, ...rest } = s;
    const target = pointer(root, $ref as string);
    // Keywords beside a $ref (a title, a description) stay; the target's fill in the rest.
    s = isObject(target) ? { ...target, ...rest } : (target ?? true);
  }
  return typeof s === 'boolean' || isObject(s) ? s : true;
}

function typeOf(value: unknown): JsonType {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  if (typeof value === 'boolean') return 'boolean';
  if (typeof value === 'string') return 'string';
  return 'object';
}

function mergeAllOf(s: Record<string, unknown>, root: Schema): Record<string, unknown> {
  const parts = s.allOf as unknown[];
  const { allOf: _, ...merged } = s;
  for (const part of parts) {
    const p = deref(part, root);
    if (!isObject(p)) continue;
    // Properties in allOf order (a later part's schema wins for a name both give).
    const props = { ...(merged.properties as object | undefined), ...(p.properties as object | undefined) };
    const required = [...((p.required as string[] | undefined) ?? []), ...((merged.required as string[] | undefined) ?? [])];
    Object.assign(merged, { ...p, ...merged });
    if (Object.keys(props).length > 0) merged.properties = props;
    if (required.length > 0) merged.required = [...new Set(required)];
  }
  return merged;
}

/** One concrete shape for a schema node (see the file comment). */
export function resolveNode(schema: unknown, root: Schema): ResolvedNode {
  let s = deref(schema, root);
  if (typeof s === 'boolean') return { type: 'any', nullable: false, s: {} };
  if (Array.isArray(s.allOf)) s = mergeAllOf(s, root);
  let nullable = false;
  for (const key of ['anyOf', 'oneOf'] as const) {
    const branches: unknown = s[key];
    if (!Array.isArray(branches)) continue;
    const resolved: Schema[] = branches.map((b: unknown) => deref(b, root));
    nullable ||= resolved.some((b) => isObject(b) && b.type === 'null');
    const chosen: Schema | undefined = resolved.find((b) => !(isObject(b) && b.type === 'null'));
    const { [key]: _, ...rest } = s;
    s = isObject(chosen) ? { ...rest, ...chosen, title: rest.title ?? chosen.title } : rest;
    if (isObject(chosen) && (Array.isArray(chosen.anyOf) || Array.isArray(chosen.oneOf) || chosen.$ref !== undefined)) {
      const inner = resolveNode(s, root);
      return { ...inner, nullable: inner.nullable || nullable };
    }
  }
  let type: JsonType | 'any' = 'any';
  const declared = s.type;
  if (typeof declared === 'string') type = declared as JsonType;
  else if (Array.isArray(declared)) {
    nullable ||= declared.includes('null');
    type = (declared.find((t) => t !== 'null') ?? 'null') as JsonType;
  } else if (s.const !== undefined) type = typeOf(s.const);
  else if (Array.isArray(s.enum)) type = typeOf(s.enum.find((v) => v !== null) ?? null);
  else if (isObject(s.properties)) type = 'object';
  else if (s.items !== undefined) type = 'array';
  if (Array.isArray(s.enum) && s.enum.includes(null)) nullable = true;
  return { type, nullable, s };
}

/** The item schema of an array node (the first of a tuple). */
export function itemSchema(node: ResolvedNode): unknown {
  const { items, prefixItems } = node.s;
  if (Array.isArray(prefixItems) && prefixItems.length > 0) return prefixItems[0];
  if (Array.isArray(items)) return items[0] ?? true;
  return items ?? true;
}
