/**
 * Text from outside (file names, export ids, JSON field names, error messages quoting an input)
 * made safe to print on a terminal. A file named `invoice\u202Efdp.exe` would otherwise print
 * reversed, one holding ESC sequences could move the cursor, clear the screen or set the window
 * title, and a newline in a name could forge a whole `docbatch:` line. Escaped: C0 and C1
 * controls (newline and tab included: each printed line is one line), DEL, the line and
 * paragraph separators, bidirectional controls, every other invisible format character
 * (Unicode category Cf: zero-width spaces and joiners, soft hyphen, BOM, tags ...), and lone
 * surrogates. A zero-width joiner between two emoji (👩‍💻) is left alone: it is how those are
 * written. Escapes read as in JavaScript: `\n`, `\x1b`, `\u202e`, `\u{e0041}`.
 *
 * `--json` lines use `jsonLine`: the same characters as JSON `\uXXXX` escapes, so a parser reads
 * exactly the same values and a terminal shows nothing hidden (JSON.stringify alone escapes C0
 * controls and lone surrogates, but not DEL, C1, U+2028/2029 or bidi controls).
 */

/** What gets escaped: controls, separators, format characters, lone surrogates. */
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;
const PICTO = /\p{Extended_Pictographic}/u;
const ZWJ = 0x200d;

/** True when the ZWJ at `i` joins two emoji (a keeper). */
function joinsEmoji(text: string, i: number): boolean {
  const before = text.codePointAt(i - 1) === undefined ? '' : String.fromCodePoint(codePointBefore(text, i));
  const after = i + 1 < text.length ? String.fromCodePoint(text.codePointAt(i + 1) as number) : '';
  return PICTO.test(before) && PICTO.test(after);
}

/** The code point ending just before index `i` (a surrogate pair read whole). */
function codePointBefore(text: string, i: number): number {
  const low = text.charCodeAt(i - 1);
  if (low >= 0xdc00 && low <= 0xdfff && i >= 2) {
    const high = text.charCodeAt(i - 2);
    if (high >= 0xd800 && high <= 0xdbff) return text.codePointAt(i - 2) as number;
  }
  return low;
}

const SHORT: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function escapeOne(ch: string): string {
  const short = SHORT[ch];
  if (short !== undefined) return short;
  const cp = ch.codePointAt(0) as number;
  if (cp <= 0xff) return `\\x${cp.toString(16).padStart(2, '0')}`;
  if (cp <= 0xffff) return `\\u${cp.toString(16).padStart(4, '0')}`;
  return `\\u{${cp.toString(16)}}`;
}

/** `text` with every control, separator, invisible format character and lone surrogate escaped. */
export function printable(text: string): string {
  return text.replace(UNSAFE, (ch, offset: number) => (ch.charCodeAt(0) === ZWJ && joinsEmoji(text, offset) ? ch : escapeOne(ch)));
}

/** A value as one JSON line whose strings carry no raw control, separator or invisible character. */
export function jsonLine(value: unknown): string {
  // Outside strings JSON has only ASCII punctuation, digits and letters: every match is inside a string.
  return JSON.stringify(value).replace(UNSAFE, (ch, offset: number, whole: string) => {
    if (ch.charCodeAt(0) === ZWJ && joinsEmoji(whole, offset)) return ch;
    let out = '';
    for (let k = 0; k < ch.length; k++) out += `\\u${ch.charCodeAt(k).toString(16).padStart(4, '0')}`;
    return out;
  });
}

/**
 * `text` cut to at most `max` UTF-16 units, ending in `…` when it was cut, and never between
 * the two halves of a surrogate pair (a lone surrogate is not valid Unicode: JSON parsers and
 * UTF-8 encoders replace or refuse it). Used where text from outside is kept (record fields,
 * report keys, titles).
 */
export function cutText(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = Math.max(0, max - 1);
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return `${text.slice(0, end)}…`;
}
