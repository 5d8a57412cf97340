/**
 * Where text stops being valid: the first byte that breaks UTF-8, and the position (with a
 * reason) where JSON stops parsing. V8's JSON.parse does not always say where; these run only on
 * the failure path. Used by the chat-export reader and by eval's truth files; and where the
 * object or array a text starts with ends (an engine's body, a JSON answer followed by a note),
 * and the Markdown fences a JSON answer comes in (the task checks and the engine's
 * structured-output ladder judge a fenced answer by the same fences).
 */

/**
 * Markdown code fences (``` or ~~~, tagged json, jsonc, json5 or not) on lines of their own, the
 * inside in group 2. The closing fence: indented as it likes on a line of its own, or after at most
 * three blanks at the end of the inside's last line; an unbounded run of blanks tried at every
 * position of the inside was quadratic in a run of spaces (a model degenerating into
 * whitespace). With `cutOff`, a fence still open at the end of the text counts too (an answer cut
 * off at max_tokens inside it).
 */
export function jsonFences(cutOff = false): RegExp {
  const open = String.raw`(?:^|\n)[ \t]*(${'`'}{3,}|~{3,})[ \t]*(?:json[c5]?)?[ \t]*\n([\s\S]*?)`;
  const close = String.raw`(?:\n[ \t]*|[ \t]{0,3})\1[ \t]*(?=\n|$)`;
  return new RegExp(`${open}(?:${close}${cutOff ? '|$' : ''})`, 'gi');
}

/** Index of the first byte that is not part of a well-formed UTF-8 sequence (bytes.length if none). */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  const n = bytes.length;
  while (i < n) {
    const b = bytes[i] as number;
    if (b < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let min: number;
    if (b >= 0xc2 && b <= 0xdf) {
      need = 1;
      min = 0x80;
    } else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      min = 0x800;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      min = 0x10000;
    } else return i;
    let cp = b & (0x3f >> need);
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if (c === undefined || (c & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (c & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += need + 1;
  }
  return n;
}

/** The first syntax error in `text` as a UTF-16 index and a message, or undefined if it is valid JSON. */
export function locateJsonError(text: string): { pos: number; message: string } | undefined {
  let i = 0;
  const fail = (message: string): never => {
    throw new LocatedError(i, message);
  };
  const ws = (): void => {
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      i++;
    }
  };
  const show = (): string => (i >= text.length ? 'end of input' : JSON.stringify(text[i]));
  const str = (): void => {
    i++; // opening quote
    for (;;) {
      if (i >= text.length) fail('unterminated string');
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return;
      }
      if (c < 0x20) fail('control character in a string (must be escaped)');
      if (c === 0x5c) {
        const e = text[i + 1];
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) fail('bad \\u escape in a string');
          i += 6;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) i += 2;
        else fail('bad escape in a string');
      } else i++;
    }
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail(`expected a property name in double quotes, found ${show()}`);
        str();
        ws();
        if (text[i] !== ':') fail(`expected ':' after a property name, found ${show()}`);
        i++;
        value();
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return;
        }
        fail(`expected ',' or '}' after a property value, found ${show()}`);
      }
    }
    if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        value();
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return;
        }
        fail(`expected ',' or ']' after an array element, found ${show()}`);
      }
    }
    if (c === '"') return str();
    const m = /^(?:-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(text.slice(i, i + 400));
    if (!m) fail(`unexpected ${show()}`);
    else i += m[0].length;
  };
  try {
    value();
    ws();
    if (i < text.length) fail(`unexpected ${show()} after the end of the value`);
    return undefined;
  } catch (err) {
    if (err instanceof LocatedError) return { pos: err.pos, message: err.message };
    throw err;
  }
}

class LocatedError extends Error {
  readonly pos: number;
  constructor(pos: number, message: string) {
    super(message);
    this.pos = pos;
  }
}

/** The index just past the object or array the text starts with (after blanks); null if it has none, or it is not closed. */
export function endOfFirstValue(text: string): number | null {
  let i = 0;
  while (i < text.length && /\s/.test(text[i]!)) i++;
  if (text[i] !== '{' && text[i] !== '[') return null;
  let depth = 0;
  let inString = false;
  for (; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  return null;
}
