/**
 * What input validation inspects of a JSON text: the same tree as JSON.parse, except that a
 * key repeated in one object keeps ALL its values, gathered in an array under that key.
 *
 * JSON.parse keeps the last of duplicate keys, while the raw text goes to the upstream, whose
 * parser may keep the first (or all). Inspecting this view checks every value whichever one
 * the upstream takes, and a legitimate body with duplicate keys still passes. The gathered
 * array inherits the key's field mode (textFields / freeTextFields), so the duplicates are
 * judged exactly like the value JSON.parse kept. (It is one level deeper than the values it
 * gathers, so a repeated key at the very last level MAX_BODY_DEPTH allows counts as too deep.)
 *
 * One pass over the text, iterative (an explicit stack, no recursion), linear in its length;
 * `__proto__` is an ordinary key (an own property). Nesting deeper than MAX_BODY_DEPTH stops
 * the scan (`TooComplex`) instead of building a tree nobody may inspect.
 */
import { MAX_BODY_DEPTH } from './detect/index.js';

/** Thrown when the text nests deeper than validation inspects (answered as `input_too_complex`). */
export class TooComplex extends Error {
  constructor() {
    super('nested deeper than input validation inspects');
  }
}

interface Container {
  readonly object: Record<string, unknown> | null;
  readonly array: unknown[] | null;
  /** In an object: the key read, waiting for its value. */
  key: string | undefined;
  /** Keys of `object` whose values are already gathered in an array. */
  gathered: Set<string> | undefined;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** Characters that end a number or a literal (`true`, `false`, `null`). */
function isDelimiter(c: number): boolean {
  return c === 0x2c || c === 0x5d || c === 0x7d || c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09 || c === 0x3a;
}

/**
 * The inspection view of `text`, which must be valid JSON (call JSON.parse first: this scan
 * trusts the syntax and only tracks structure). Numbers, booleans and null come out as null:
 * input validation looks at strings only.
 */
export function jsonView(text: string): unknown {
  const stack: Container[] = [];
  let root: unknown = null;
  const put = (value: unknown): void => {
    const top = stack[stack.length - 1];
    if (top === undefined) {
      root = value;
      return;
    }
    if (top.array !== null) {
      top.array.push(value);
      return;
    }
    const object = top.object!;
    const key = top.key!;
    top.key = undefined;
    if (!Object.hasOwn(object, key)) {
      // `__proto__` as an own data property, not the prototype setter.
      if (key === '__proto__') Object.defineProperty(object, key, { value, writable: true, enumerable: true, configurable: true });
      else object[key] = value;
    } else if (top.gathered?.has(key)) {
      (object[key] as unknown[]).push(value);
    } else {
      object[key] = [object[key], value];
      (top.gathered ??= new Set()).add(key);
    }
  };
  const open = (container: Container): void => {
    if (stack.length >= MAX_BODY_DEPTH) throw new TooComplex();
    put(container.object ?? container.array);
    stack.push(container);
  };

  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      // The closing quote is the first one not escaped by an odd run of backslashes.
      let end = text.indexOf('"', i + 1);
      for (;;) {
        if (end < 0) throw new SyntaxError('unterminated JSON string');
        let slashes = 0;
        while (text.charCodeAt(end - 1 - slashes) === BACKSLASH) slashes++;
        if (slashes % 2 === 0) break;
        end = text.indexOf('"', end + 1);
      }
      const raw = text.slice(i + 1, end);
      const value = raw.includes('\\') ? (JSON.parse(text.slice(i, end + 1)) as string) : raw;
      const top = stack[stack.length - 1];
      if (top !== undefined && top.object !== null && top.key === undefined) top.key = value;
      else put(value);
      i = end + 1;
    } else if (c === 0x7b) {
      open({ object: {}, array: null, key: undefined, gathered: undefined });
      i++;
    } else if (c === 0x5b) {
      open({ object: null, array: [], key: undefined, gathered: undefined });
      i++;
    } else if (c === 0x7d || c === 0x5d) {
      stack.pop();
      i++;
    } else if (c === 0x2c || c === 0x3a || c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
      i++;
    } else {
      // a number or a literal
      while (i < n && !isDelimiter(text.charCodeAt(i))) i++;
      put(null);
    }
  }
  return root;
}
