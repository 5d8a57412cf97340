/**
 * A model's mistakes on extracted fields (alterFields): the value read from the text, changed the
 * way a reader gets one wrong while the answer still validates against its schema: one digit
 * changed, one word swapped, a date a day off, another member of an enum, a boolean flipped.
 * Deterministic: the same `h` (a hash of model, content and field) gives the same change.
 */

export type Scalar = string | number | boolean | null;

/** What the schema says about a scalar field, as far as changing it goes. */
export interface ScalarKind {
  type: 'string' | 'number' | 'integer' | 'boolean' | 'null' | 'any';
  format?: string;
  enum?: readonly unknown[];
}

// Replacement words for a swapped word: ordinary, so the answer still reads as an answer.
const SWAP_WORDS = ['north', 'river', 'silver', 'garden', 'market', 'harbor', 'summit', 'valley', 'copper', 'meadow', 'bridge', 'stone'];

/** The string with one digit (chosen by `h`) changed; unchanged if it has none. */
export function changeDigit(text: string, h: number, keepLeading = false): string {
  const positions = [...text.matchAll(/\d/g)].map((m) => m.index);
  if (positions.length === 0) return text;
  const at = positions[h % positions.length] as number;
  const d = Number(text[at]);
  let next = (d + 1 + ((h >>> 8) % 9)) % 10;
  // A number does not start with 0: a leading digit goes to another non-zero digit.
  const leading = keepLeading && at === positions[0] && /\d/.test(text[at + 1] ?? '');
  if (leading && next === 0) next = d === 9 ? 8 : d + 1;
  return text.slice(0, at) + String(next) + text.slice(at + 1);
}

function swapWord(text: string, h: number): string {
  const words = [...text.matchAll(/\p{L}{2,}/gu)];
  if (words.length === 0) {
    const letter = /\p{L}/u.exec(text);
    if (!letter) return `${text}x`;
    const c = letter[0];
    const next = c === 'a' ? 'e' : c === 'A' ? 'E' : c.toLowerCase() === c ? 'a' : 'A';
    return text.slice(0, letter.index) + next + text.slice(letter.index + 1);
  }
  const m = words[h % words.length] as RegExpExecArray;
  const old = m[0];
  let word = SWAP_WORDS[(h >>> 8) % SWAP_WORDS.length] as string;
  if (word === old.toLowerCase()) word = SWAP_WORDS[((h >>> 8) + 1) % SWAP_WORDS.length] as string;
  if (old === old.toUpperCase()) word = word.toUpperCase();
  else if (old[0] === old[0]?.toUpperCase()) word = (word[0]?.toUpperCase() ?? '') + word.slice(1);
  return text.slice(0, m.index) + word + text.slice(m.index + old.length);
}

function shiftDate(iso: string, h: number): string | undefined {
  const t = Date.parse(`${iso.slice(0, 10)}T00:00:00Z`);
  if (!Number.isFinite(t)) return undefined;
  const shifted = new Date(t + (h % 2 === 0 ? 1 : -1) * 86_400_000).toISOString().slice(0, 10);
  return shifted + iso.slice(10);
}

function changeNumber(value: number, integer: boolean, h: number): number {
  const text = integer ? String(Math.round(value)) : String(value);
  if (/e/i.test(text)) return integer ? value + 1 : value * 1.1;
  const changed = Number(changeDigit(text, h, true));
  return Number.isFinite(changed) && changed !== value ? changed : value + 1;
}

/**
 * A different value of the same kind, or undefined when the field cannot be changed and stay
 * valid (a one-member enum, a null).
 */
export function alterValue(value: Scalar, kind: ScalarKind, h: number): Scalar | undefined {
  if (kind.enum) {
    const others = kind.enum.filter((v) => v !== value && (typeof v !== 'object' || v === null)) as Scalar[];
    return others.length === 0 ? undefined : others[h % others.length];
  }
  if (typeof value === 'boolean') return !value;
  if (typeof value === 'number') return changeNumber(value, kind.type === 'integer', h);
  if (typeof value !== 'string' || value === '') return undefined;
  if (kind.format === 'date' || kind.format === 'date-time') return shiftDate(value, h);
  const changed = /\d/.test(value) ? changeDigit(value, h) : swapWord(value, h);
  return changed === value ? undefined : changed;
}
