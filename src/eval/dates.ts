/**
 * Dates in the forms people and models write them, read as calendar dates (no time, no zone).
 * Pure. A string is a date only when the whole string is one (after a leading weekday and a
 * trailing time of day are set aside); anything else is not a date and is compared otherwise.
 *
 * Forms (English month names, full or three letters, `Sept` too; ordinals `5th` allowed):
 *   2024-03-05, 2024/3/5, 2024.03.05, 2024-03-05T10:00:00Z, 2024-03-05 10:00   → year first
 *   05.03.2024, 5.3.24                                                         → day first (dots)
 *   03/05/2024, 03-05-24                                                       → ambiguous unless a part is > 12
 *   March 5, 2024 · Mar 5 2024 · 5 March 2024 · 5-Mar-2024 · 2024 Mar 5 · Tuesday, March 5, 2024
 * Two-digit years follow POSIX strptime: 69–99 → 1969–1999, 00–68 → 2000–2068.
 *
 * An ambiguous slash or dash date has two readings, month first (`mdy`) and day first (`dmy`).
 * Two dates are the same when they share a reading under one convention: `03/05/2024` matches
 * `2024-03-05` (month first) and `2024-05-03` (day first); two ambiguous dates match only when
 * read the same way.
 */

/** One reading of a date: the calendar date as `YYYY-MM-DD` and the convention it assumes. */
export interface DateReading {
  iso: string;
  order: 'any' | 'mdy' | 'dmy';
}

const MONTHS: Record<string, number> = {
  jan: 1, january: 1, feb: 2, february: 2, mar: 3, march: 3, apr: 4, april: 4, may: 5, jun: 6, june: 6,
  jul: 7, july: 7, aug: 8, august: 8, sep: 9, sept: 9, september: 9, oct: 10, october: 10, nov: 11, november: 11,
  dec: 12, december: 12,
};

const WEEKDAY = /^(?:mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)(?:day|sday|nesday|rsday|urday)?\.?,?\s+/;
const TIME = /(?:t|\s+)\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:am|pm)?\s*(?:z|utc|gmt|[+-]\d{2}:?\d{2})?$/;
const ORD = '(?:st|nd|rd|th)?';

/** The readings of `value` as a date, or null when it is not one. */
export function parseDate(value: string): DateReading[] | null {
  let s = value.normalize('NFKC').trim().toLowerCase().replace(/\s+/g, ' ');
  if (s.length < 6 || s.length > 64) return null;
  s = s.replace(WEEKDAY, '').replace(TIME, '').trim();
  let m: RegExpExecArray | null;
  if ((m = /^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$/.exec(s))) return one(+m[1]!, +m[2]!, +m[3]!);
  if ((m = /^(\d{1,2})\.(\d{1,2})\.(\d{2}|\d{4})$/.exec(s))) return one(year(m[3]!), +m[2]!, +m[1]!);
  if ((m = /^(\d{1,2})([/-])(\d{1,2})\2(\d{2}|\d{4})$/.exec(s))) {
    const a = +m[1]!;
    const b = +m[3]!;
    const y = year(m[4]!);
    if (a > 12) return one(y, b, a);
    if (b > 12) return one(y, a, b);
    const readings: DateReading[] = [];
    const mdy = isoOf(y, a, b);
    const dmy = isoOf(y, b, a);
    if (mdy) readings.push({ iso: mdy, order: 'mdy' });
    if (dmy) readings.push({ iso: dmy, order: 'dmy' });
    return readings.length > 0 ? readings : null;
  }
  if ((m = new RegExp(`^(\\d{1,2})${ORD}[ -]([a-z]+)\\.?,?[ -](\\d{2}|\\d{4})$`).exec(s))) return named(m[3]!, m[2]!, m[1]!);
  if ((m = new RegExp(`^([a-z]+)\\.?[ -](\\d{1,2})${ORD},?[ -](\\d{4})$`).exec(s))) return named(m[3]!, m[1]!, m[2]!);
  if ((m = /^(\d{4})[ -]([a-z]+)\.?[ -](\d{1,2})$/.exec(s))) return named(m[1]!, m[2]!, m[3]!);
  return null;
}

/** Whether two parsed dates are the same calendar date under one convention. */
export function sameDate(a: DateReading[], b: DateReading[]): boolean {
  return a.some((x) => b.some((y) => x.iso === y.iso && (x.order === 'any' || y.order === 'any' || x.order === y.order)));
}

function named(y: string, month: string, d: string): DateReading[] | null {
  const mo = MONTHS[month];
  return mo === undefined ? null : one(year(y), mo, +d);
}

function one(y: number, mo: number, d: number): DateReading[] | null {
  const iso = isoOf(y, mo, d);
  return iso ? [{ iso, order: 'any' }] : null;
}

function year(text: string): number {
  const y = Number(text);
  if (text.length > 2) return y;
  return y >= 69 ? 1900 + y : 2000 + y;
}

function isoOf(y: number, mo: number, d: number): string | null {
  if (mo < 1 || mo > 12 || d < 1 || d > daysIn(y, mo) || y < 1 || y > 9999) return null;
  return `${String(y).padStart(4, '0')}-${String(mo).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
}

function daysIn(y: number, mo: number): number {
  if (mo === 2) return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(mo) ? 30 : 31;
}
