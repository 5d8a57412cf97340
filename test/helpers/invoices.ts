/**
 * Generated invoices for the evaluation tests: the truth, a model that gets every field right but
 * writes it its own way (amounts as "$1,234.50", dates as "March 5, 2024", names in capitals), and
 * a model with a known number of wrong fields (changed numbers, dates a day off, altered names,
 * left-out fields and items). Seeded: the same seed gives the same invoices and the same errors.
 */
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
