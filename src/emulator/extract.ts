/**
 * The value of a structured-output answer. It walks the schema and, for each scalar field, reads
 * the request's `Label: value` line whose label matches the field's name or `title` (labels.ts),
 * converted to the field's type; a required field the text lacks gets null when the schema
 * allows it, else a deterministic filler of its type; an optional one is left out. Arrays of
 * objects get one item per repetition of their fields' labels (the k-th `Quantity:` line goes to
 * item k); arrays of scalars take every line of their label (or one comma-separated line).
 *
 * Every scalar field is recorded (read from the text, made up, altered) for the emulator's stats.
 */
import { alterValue, type Scalar, type ScalarKind } from './alter.ts';
import { normalizeLabel, toBoolean, toDate, toNumber, toTime, type LabelIndex } from './labels.ts';
import { itemSchema, MAX_DEPTH, resolveNode, type ResolvedNode, type Schema } from './schema.ts';

/** One scalar field of an answer. */
export interface FieldRecord {
  /** `total`, `address.city`, `items[1].quantity`, `tags[0]`. */
  path: string;
  /** What the answer says. */
  value: Scalar;
  /** `text`: read from a `Label: value` line of the request; `filler`: not in the text, made up (or null). */
  source: 'text' | 'filler';
  /** Read from the text, then deliberately changed (alterFields). */
  altered: boolean;
  /** What the text said, when altered. */
  read?: Scalar;
}

export interface ExtractContext {
  labels: LabelIndex;
  /** 32 deterministic bits for the filler of a field. */
  fillBits(path: string): number;
  /** For a field read from the text: bits choosing how it is altered, or undefined to keep it. */
  alterBits(path: string): number | undefined;
}

interface Where {
  path: string;
  /** Labels that name this field, best first. */
  names: string[];
  /** Which repetition of the label to read (the item index inside an array of objects). */
  occ: number;
}

type Built = { value: unknown; found: boolean } | undefined;

const FILLER_WORDS = ['north', 'unit', 'total', 'sample', 'record', 'value', 'order', 'account', 'summary', 'item', 'office', 'report'];
const MAX_ITEMS = 50;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

const join = (path: string, key: string): string => (path === '' ? key : `${path}.${key}`);

function singular(name: string): string | undefined {
  const n = normalizeLabel(name);
  if (n.endsWith('ies')) return `${n.slice(0, -3)}y`;
  if (n.endsWith('s') && !n.endsWith('ss')) return n.slice(0, -1);
  return undefined;
}

function fillerWords(bits: number, count: number): string {
  return Array.from({ length: count }, (_, i) => FILLER_WORDS[((bits >>> (i * 5)) + i) % FILLER_WORDS.length]).join(' ');
}

function fillerDate(bits: number): string {
  return new Date(Date.UTC(2000, 0, 1) + (bits % 9000) * 86_400_000).toISOString().slice(0, 10);
}

function fillerTime(bits: number): string {
  return [bits % 24, (bits >>> 5) % 60, (bits >>> 11) % 60].map((n) => String(n).padStart(2, '0')).join(':');
}

function kindOf(node: ResolvedNode): ScalarKind {
  const type = node.type === 'object' || node.type === 'array' ? 'any' : node.type;
  return { type, format: typeof node.s.format === 'string' ? node.s.format : undefined, enum: Array.isArray(node.s.enum) ? node.s.enum : undefined };
}

function clampNumber(node: ResolvedNode, n: number): number {
  const lo = num(node.s.minimum);
  const hi = num(node.s.maximum);
  if (lo !== undefined && n < lo) return lo;
  if (hi !== undefined && n > hi) return hi;
  return n;
}

function matchEnum(members: readonly unknown[], raw: string): Scalar | undefined {
  const want = normalizeLabel(raw);
  const scalars = members.filter((m): m is string | number | boolean => ['string', 'number', 'boolean'].includes(typeof m));
  const exact = scalars.find((m) => normalizeLabel(String(m)) === want);
  if (exact !== undefined) return exact;
  const n = toNumber(raw);
  const numeric = scalars.find((m) => typeof m === 'number' && m === n);
  if (numeric !== undefined) return numeric;
  const words = ` ${want} `;
  return scalars.find((m) => typeof m === 'string' && normalizeLabel(m) !== '' && words.includes(` ${normalizeLabel(m)} `));
}

/** The text's value as the field's type, or undefined when it does not convert. */
function convert(node: ResolvedNode, raw: string): Scalar | undefined {
  if (Array.isArray(node.s.enum)) return matchEnum(node.s.enum, raw);
  switch (node.type) {
    case 'number': {
      const n = toNumber(raw);
      return n === undefined ? undefined : clampNumber(node, n);
    }
    case 'integer': {
      const n = toNumber(raw);
      return n === undefined ? undefined : clampNumber(node, Math.round(n));
    }
    case 'boolean':
      return toBoolean(raw);
    case 'null':
      return null;
    case 'string': {
      const format = node.s.format;
      if (format === 'date') return toDate(raw);
      if (format === 'date-time') {
        const d = toDate(raw);
        return d === undefined ? undefined : `${d}T${toTime(raw) ?? '00:00:00'}Z`;
      }
      if (format === 'time') return toTime(raw);
      const max = num(node.s.maxLength);
      return max === undefined ? raw : raw.slice(0, max);
    }
    default:
      return raw;
  }
}

function filler(node: ResolvedNode, bits: number): Scalar {
  const members = node.s.enum;
  if (Array.isArray(members) && members.length > 0) return members[bits % members.length] as Scalar;
  switch (node.type) {
    case 'integer': {
      const lo = Math.ceil(num(node.s.minimum) ?? 0);
      const hi = Math.floor(num(node.s.maximum) ?? lo + 999);
      return lo + (bits % (Math.max(hi, lo) - lo + 1));
    }
    case 'number': {
      const lo = num(node.s.minimum) ?? 0;
      const hi = num(node.s.maximum) ?? lo + 1000;
      return Math.min(hi, Math.round((lo + (bits % 100_000) / 100) * 100) / 100);
    }
    case 'boolean':
      return bits % 2 === 1;
    case 'null':
      return null;
    default: {
      switch (node.s.format) {
        case 'date':
          return fillerDate(bits);
        case 'date-time':
          return `${fillerDate(bits)}T${fillerTime(bits >>> 3)}Z`;
        case 'time':
          return fillerTime(bits);
        case 'email':
          return `${fillerWords(bits, 1)}.${fillerWords(bits >>> 7, 1)}@example.com`;
        case 'uri':
        case 'url':
          return `https://example.com/${fillerWords(bits, 1)}`;
        case 'uuid': {
          const hex = Array.from({ length: 4 }, (_, i) => ((bits * (i + 1) * 2654435761) >>> 0).toString(16).padStart(8, '0')).join('');
          return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
        }
      }
      let text = fillerWords(bits, 2);
      const min = num(node.s.minLength) ?? 0;
      while (text.length < min) text += ` ${fillerWords(bits >>> 3, 1)}`;
      const max = num(node.s.maxLength);
      return max === undefined ? text : text.slice(0, max);
    }
  }
}

class Builder {
  readonly fields: FieldRecord[] = [];
  private readonly root: Schema;
  private readonly ctx: ExtractContext;

  constructor(root: Schema, ctx: ExtractContext) {
    this.root = root;
    this.ctx = ctx;
  }

  build(schema: unknown, at: Where, required: boolean, depth: number): Built {
    if (depth > MAX_DEPTH) return required ? { value: null, found: false } : undefined;
    const node = resolveNode(schema, this.root);
    if (node.s.const !== undefined) return { value: node.s.const, found: false };
    if (node.type === 'object') return this.object(node, at, required, depth);
    if (node.type === 'array') return this.array(node, at, required, depth);
    return this.scalar(node, at, required);
  }

  /** The top level of a json_object request, or an object schema without properties: every label of the text. */
  freeObject(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [label, raw] of this.ctx.labels.entries()) {
      const key = label.replaceAll(' ', '_');
      out[key] = this.read({ type: 'string', nullable: false, s: {} }, key, raw).value;
    }
    if (Object.keys(out).length === 0) {
      const value = fillerWords(this.ctx.fillBits('summary'), 3);
      this.fields.push({ path: 'summary', value, source: 'filler', altered: false });
      out.summary = value;
    }
    return out;
  }

  private object(node: ResolvedNode, at: Where, required: boolean, depth: number): Built {
    const props = isObject(node.s.properties) ? node.s.properties : {};
    if (Object.keys(props).length === 0) {
      if (depth === 0 && node.s.additionalProperties !== false) return { value: this.freeObject(), found: true };
      return required ? { value: {}, found: false } : undefined;
    }
    const need = new Set(Array.isArray(node.s.required) ? (node.s.required as string[]) : []);
    const mark = this.fields.length;
    const out: Record<string, unknown> = {};
    let found = false;
    for (const [key, sub] of Object.entries(props)) {
      const r = this.build(sub, { path: join(at.path, key), names: this.namesOf(key, sub, at), occ: at.occ }, need.has(key), depth + 1);
      if (r === undefined) continue;
      out[key] = r.value;
      found ||= r.found;
    }
    if (!found && !required) {
      this.fields.length = mark;
      return undefined;
    }
    return { value: out, found };
  }

  private array(node: ResolvedNode, at: Where, required: boolean, depth: number): Built {
    const itemRaw = itemSchema(node);
    const item = resolveNode(itemRaw, this.root);
    const min = Math.min(num(node.s.minItems) ?? 0, MAX_ITEMS);
    const max = Math.min(num(node.s.maxItems) ?? MAX_ITEMS, MAX_ITEMS);
    const mark = this.fields.length;
    const items: unknown[] = [];
    let found = false;
    if (item.type === 'object' || item.type === 'array') {
      const count = Math.max(min, Math.min(max, this.repetitions(item, depth)));
      for (let i = 0; i < count; i++) {
        const r = this.build(itemRaw, { path: `${at.path}[${i}]`, names: at.names, occ: i }, true, depth + 1);
        items.push(r?.value ?? {});
        found ||= r?.found ?? false;
      }
    } else {
      const names = [...at.names, ...at.names.map(singular).filter((n): n is string => n !== undefined)];
      let raws = this.ctx.labels.all(names);
      if (raws.length === 1) raws = (raws[0] as string).split(/\s*[,;]\s*/).filter((r) => r !== '');
      for (const raw of raws) {
        if (items.length >= max) break;
        const v = convert(item, raw);
        if (v === undefined) continue;
        items.push(this.read(item, `${at.path}[${items.length}]`, v).value);
        found = true;
      }
      while (items.length < min) items.push(this.scalar(item, { path: `${at.path}[${items.length}]`, names: [], occ: 0 }, true)?.value ?? null);
    }
    if (!found && !required) {
      this.fields.length = mark;
      return undefined;
    }
    return { value: items, found };
  }

  private scalar(node: ResolvedNode, at: Where, required: boolean): Built {
    const raw = at.names.length > 0 ? this.ctx.labels.get(at.names, at.occ) : undefined;
    const v = raw === undefined ? undefined : convert(node, raw);
    if (v !== undefined) return this.read(node, at.path, v);
    if (!required) return undefined;
    const value = node.nullable ? null : filler(node, this.ctx.fillBits(at.path));
    this.fields.push({ path: at.path, value, source: 'filler', altered: false });
    return { value, found: false };
  }

  /** A value read from the text, altered when the model gets this field wrong. */
  private read(node: ResolvedNode, path: string, v: Scalar): { value: Scalar; found: true } {
    const bits = this.ctx.alterBits(path);
    const changed = bits === undefined ? undefined : alterValue(v, kindOf(node), bits);
    if (changed === undefined) this.fields.push({ path, value: v, source: 'text', altered: false });
    else this.fields.push({ path, value: changed, source: 'text', altered: true, read: v });
    return { value: changed ?? v, found: true };
  }

  private namesOf(key: string, sub: unknown, parent: Where): string[] {
    const names = [key];
    const title = isObject(sub) ? sub.title : undefined;
    const resolvedTitle = resolveNode(sub, this.root).s.title;
    for (const t of [title, resolvedTitle]) if (typeof t === 'string' && t !== '') names.push(t);
    const prefix = parent.names[0];
    if (prefix !== undefined) names.push(`${prefix} ${key}`);
    return names;
  }

  /** How many items an array of objects gets: the most repetitions of any of its fields' labels. */
  private repetitions(item: ResolvedNode, depth: number): number {
    if (depth > MAX_DEPTH) return 0;
    let most = 0;
    const props = isObject(item.s.properties) ? item.s.properties : {};
    for (const [key, sub] of Object.entries(props)) {
      const node = resolveNode(sub, this.root);
      const count = node.type === 'object' ? this.repetitions(node, depth + 1) : this.ctx.labels.all(this.namesOf(key, sub, { path: '', names: [], occ: 0 })).length;
      most = Math.max(most, count);
    }
    return most;
  }
}

/** The answer's value for a schema (`null`: any JSON object, as `json_object` asks). */
export function buildValue(schema: Schema | null, ctx: ExtractContext): { value: unknown; fields: FieldRecord[] } {
  const builder = new Builder(schema ?? true, ctx);
  if (schema === null) return { value: builder.freeObject(), fields: builder.fields };
  const value = builder.build(schema, { path: '', names: [], occ: 0 }, true, 0)?.value ?? null;
  return { value, fields: builder.fields };
}
