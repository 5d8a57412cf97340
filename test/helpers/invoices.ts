/**
 * Generated invoices for tests, in two forms.
 *
 * - `makeInvoices(dir, n, seed)` writes `n` invoice PDFs (one or two pages; seven fields spread
 *   over the pages as `Label: value` lines among lines that are no field) with their truth, and
 *   `INVOICE_SCHEMA` is the JSON Schema of that truth. Stable API: the extraction tests and the
 *   models/eval helpers rely on it. Files: `dir/NAME.pdf`, `dir/truth/NAME.json`.
 * - `invoices()` / `rewritten()` / `withErrors()` for the evaluation tests: the truth, a model
 *   that gets every field right but writes it its own way (amounts as "$1,234.50", dates as
 *   "March 5, 2024", names in capitals), and a model with a known number of wrong fields.
 *
 * Seeded: the same seed gives the same invoices (and the same errors).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writePdf } from '../../scripts/lib/pdf-writer.ts';
import { leaves, type Segment } from '../../src/eval/fields.ts';

export interface Invoice {
  invoice_number: string;
  date: string;
  due_date: string;
  currency: string;
  vendor: { name: string; vat_id: string };
  customer: { name: string; city: string };
  items: Array<{ description: string; quantity: number; unit_price: number; amount: number }>;
  subtotal: number;
  tax: number;
  total: number;
}

export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const VENDORS = ['Acme Corp', 'Globex GmbH', 'Initech LLC', 'Umbrella plc', 'Hooli Inc', 'Stark Industries'];
const CUSTOMERS = ['Wayne Enterprises', 'Cyberdyne Systems', 'Soylent Co', 'Tyrell Corp', 'Wonka Ltd'];
const CITIES = ['Berlin', 'Lyon', 'Austin', 'Leeds', 'Porto'];
const GOODS = ['Widgets', 'Consulting hours', 'Server rental', 'Support plan', 'Cables', 'Licences'];
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

const pick = <T>(rand: () => number, list: T[]): T => list[Math.floor(rand() * list.length)]!;
const cents = (x: number) => Math.round(x * 100) / 100;

export function invoices(n: number, seed = 1): Invoice[] {
  const rand = rng(seed);
  return Array.from({ length: n }, (_, i) => {
    const items = Array.from({ length: 1 + Math.floor(rand() * 4) }, () => {
      const quantity = 1 + Math.floor(rand() * 20);
      const unit_price = cents(5 + rand() * 900);
      return { description: pick(rand, GOODS), quantity, unit_price, amount: cents(quantity * unit_price) };
    });
    const subtotal = cents(items.reduce((s, it) => s + it.amount, 0));
    const tax = cents(subtotal * 0.2);
    const day = new Date(Date.UTC(2024, Math.floor(rand() * 12), 1 + Math.floor(rand() * 28)));
    return {
      invoice_number: `INV-2024-${String(i + 1).padStart(4, '0')}`,
      date: iso(day),
      due_date: iso(new Date(day.getTime() + 30 * 86_400_000)),
      currency: 'EUR',
      vendor: { name: pick(rand, VENDORS), vat_id: `DE${100000000 + Math.floor(rand() * 899999999)}` },
      customer: { name: pick(rand, CUSTOMERS), city: pick(rand, CITIES) },
      items,
      subtotal,
      tax,
      total: cents(subtotal + tax),
    };
  });
}

function iso(d: Date): string {
  return d.toISOString().slice(0, 10);
}

/** A right answer written the way models write: every value still counts as the truth's. */
export function rewritten(inv: Invoice, rand: () => number): unknown {
  const money = (x: number) => {
    const s = x.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    return pick(rand, [x, s, `$${s}`, `${s} EUR`]);
  };
  const date = (s: string) => {
    const [y, m, d] = s.split('-').map(Number) as [number, number, number];
    return pick(rand, [s, `${MONTHS[m - 1]} ${d}, ${y}`, `${String(d).padStart(2, '0')}.${String(m).padStart(2, '0')}.${y}`, `${y}/${m}/${d}`]);
  };
  const name = (s: string) => pick(rand, [s, s.toUpperCase(), `  ${s.replace(' ', '  ')} `]);
  return {
    invoice_number: inv.invoice_number.toLowerCase(),
    date: date(inv.date),
    due_date: date(inv.due_date),
    currency: inv.currency,
    vendor: { name: name(inv.vendor.name), vat_id: inv.vendor.vat_id },
    customer: { name: name(inv.customer.name), city: inv.customer.city },
    items: inv.items.map((it) => ({ description: name(it.description), quantity: pick(rand, [it.quantity, String(it.quantity)]), unit_price: money(it.unit_price), amount: money(it.amount) })),
    subtotal: money(inv.subtotal),
    tax: money(inv.tax),
    total: money(inv.total),
  };
}

/**
 * The invoice with `count` fields made wrong (distinct leaves; leaving out an item makes each of
 * its fields wrong). Returns the output and the exact paths that are wrong.
 */
export function withErrors(inv: Invoice, rand: () => number, count: number): { output: unknown; wrong: string[] } {
  const output = structuredClone(inv) as unknown as Record<string, unknown>;
  const wrong = new Set<string>();
  const all = leaves(inv);
  let guard = 0;
  while (wrong.size < count && guard++ < 100) {
    const leaf = pick(rand, all);
    if (wrong.has(leaf.path)) continue;
    const kind = rand();
    if (leaf.segments[0] === 'items' && kind < 0.15 && (inv.items.length > 1)) {
      // Leave out the last item: all its fields are wrong.
      const items = output.items as unknown[];
      if (items.length < inv.items.length) continue;
      items.pop();
      for (const l of all) if (l.segments[0] === 'items' && l.segments[1] === inv.items.length - 1) wrong.add(l.path);
      continue;
    }
    if (kind < 0.3) {
      if (!remove(output, leaf.segments)) continue;
    } else {
      set(output, leaf.segments, changed(leaf.value));
    }
    wrong.add(leaf.path);
  }
  return { output, wrong: [...wrong] };
}

function changed(v: unknown): unknown {
  if (typeof v === 'number') return cents(v + 1.5);
  const s = String(v);
  if (/^\d{4}-\d{2}-\d{2}$/.test(s)) return iso(new Date(Date.parse(`${s}T00:00:00Z`) + 86_400_000));
  return `${s.slice(0, -1)}${s.endsWith('x') ? 'y' : 'x'}`;
}

function parentOf(root: unknown, segments: Segment[]): Record<string | number, unknown> | undefined {
  let v = root as Record<string | number, unknown> | undefined;
  for (const s of segments.slice(0, -1)) v = v?.[s] as Record<string | number, unknown> | undefined;
  return v;
}

function set(root: unknown, segments: Segment[], value: unknown): void {
  const parent = parentOf(root, segments);
  if (parent) parent[segments.at(-1)!] = value;
}

function remove(root: unknown, segments: Segment[]): boolean {
  const parent = parentOf(root, segments);
  const key = segments.at(-1)!;
  if (!parent || Array.isArray(parent) || !(key in parent)) return false;
  delete parent[key];
  return true;
}

// ---- invoice PDFs with their truth (makeInvoices) ------------------------------------------

/** The seven fields of a generated invoice PDF. */
export interface InvoiceTruth {
  invoice_number: string;
  invoice_date: string;
  due_date: string;
  vendor: string;
  customer: string;
  currency: 'EUR' | 'USD' | 'GBP';
  total: number;
}

/** The JSON Schema of InvoiceTruth (draft 2020-12): every field required, nothing else allowed. */
export const INVOICE_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'Invoice',
  type: 'object',
  properties: {
    invoice_number: { type: 'string', description: 'The invoice number, as printed' },
    invoice_date: { type: 'string', format: 'date', description: 'Date of issue, YYYY-MM-DD' },
    due_date: { type: 'string', format: 'date', description: 'Payment due date, YYYY-MM-DD' },
    vendor: { type: 'string', description: 'Who issued the invoice' },
    customer: { type: 'string', description: 'Who is billed' },
    currency: { type: 'string', enum: ['EUR', 'USD', 'GBP'] },
    total: { type: 'number', description: 'Total amount due, tax included' },
  },
  required: ['invoice_number', 'invoice_date', 'due_date', 'vendor', 'customer', 'currency', 'total'],
  additionalProperties: false,
} as const;

export interface GeneratedInvoice {
  /** Output base name (the PDF is `NAME.pdf`). */
  name: string;
  /** Absolute path of the PDF. */
  pdf: string;
  /** What a perfect extraction gives. */
  truth: InvoiceTruth;
  /** `dir/truth/NAME.json`: the truth as `docbatch eval --truth` reads it. */
  truthFile: string;
  pages: 1 | 2;
}

const LABELS: Record<keyof InvoiceTruth, string> = {
  invoice_number: 'Invoice number',
  invoice_date: 'Invoice date',
  due_date: 'Due date',
  vendor: 'Vendor',
  customer: 'Customer',
  currency: 'Currency',
  total: 'Total',
};

/** A date written the way invoices write it (every spelling means the same ISO date). */
function spellDate(iso: string, rand: () => number): string {
  const [y, m, d] = iso.split('-').map(Number) as [number, number, number];
  return pick(rand, [iso, `${MONTHS[m - 1]} ${d}, ${y}`, `${String(d).padStart(2, '0')}.${String(m).padStart(2, '0')}.${y}`]);
}

function spellMoney(x: number, rand: () => number): string {
  const s = x.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  return pick(rand, [s, `$${s}`, s.replace(/,/g, '')]);
}

/**
 * Writes `n` invoices to `dir` and returns them in order. About half have two pages; on those the
 * seven fields are split between the pages at a random point of a shuffled order, so no page alone
 * holds them all. Each page also has lines that are no field (items, a greeting).
 */
export function makeInvoices(dir: string, n: number, seed: number): GeneratedInvoice[] {
  const rand = rng(seed);
  mkdirSync(join(dir, 'truth'), { recursive: true });
  return Array.from({ length: n }, (_, i) => {
    const issued = new Date(Date.UTC(2024, Math.floor(rand() * 12), 1 + Math.floor(rand() * 28)));
    const items = Array.from({ length: 1 + Math.floor(rand() * 3) }, () => ({ what: pick(rand, GOODS), qty: 1 + Math.floor(rand() * 9), price: cents(5 + rand() * 500) }));
    const truth: InvoiceTruth = {
      invoice_number: `INV-${seed}-${String(i + 1).padStart(4, '0')}`,
      invoice_date: iso(issued),
      due_date: iso(new Date(issued.getTime() + (14 + Math.floor(rand() * 3) * 15) * 86_400_000)),
      vendor: pick(rand, VENDORS),
      customer: pick(rand, CUSTOMERS),
      currency: pick(rand, ['EUR', 'USD', 'GBP'] as InvoiceTruth['currency'][]),
      total: cents(items.reduce((s, it) => s + it.qty * it.price, 0) * 1.2),
    };
    const fieldLine = (k: keyof InvoiceTruth): string => {
      const v = truth[k];
      const text = k === 'total' ? spellMoney(v as number, rand) : k === 'invoice_date' || k === 'due_date' ? spellDate(v as string, rand) : String(v);
      return `${LABELS[k]}: ${text}`;
    };
    const keys = (Object.keys(LABELS) as Array<keyof InvoiceTruth>).map((k) => ({ k, r: rand() })).sort((a, b) => a.r - b.r).map((x) => x.k);
    const pages: 1 | 2 = rand() < 0.5 ? 1 : 2;
    const cut = pages === 1 ? keys.length : 2 + Math.floor(rand() * (keys.length - 3)); // 2..5 fields on page 1
    const itemLines = items.map((it) => `${it.qty} x ${it.what} at ${it.price.toFixed(2)} each`);
    const page1 = [`INVOICE`, '', ...keys.slice(0, cut).map(fieldLine), '', ...itemLines];
    const page2 = [`(continued)`, '', ...keys.slice(cut).map(fieldLine), '', 'Thank you for your business.'];
    if (pages === 1) page1.push('', 'Thank you for your business.');
    const name = `invoice-${String(i + 1).padStart(3, '0')}`;
    const pdf = join(dir, `${name}.pdf`);
    writeFileSync(pdf, writePdf({ title: name, pages: (pages === 1 ? [page1] : [page1, page2]).map((lines) => ({ lines })) }));
    const truthFile = join(dir, 'truth', `${name}.json`);
    writeFileSync(truthFile, `${JSON.stringify(truth, null, 2)}\n`);
    return { name, pdf, truth, truthFile, pages };
  });
}
