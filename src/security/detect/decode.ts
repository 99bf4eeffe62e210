/**
 * Decoding shared by the detectors. Attackers hide payloads behind one or more layers of
 * encoding that an upstream (or a framework in front of it) may undo; the detectors look at
 * what the upstream would finally see. Every decoder here is total (never throws on malformed
 * input: a bad escape is kept literally) and runs in time linear in its input: percent-decoding
 * reaches its fixed point in one pass, the other layers take a fixed number of rounds, and no
 * decoder's output is longer than a small constant times its input.
 */

/** Rounds of markup decoding (percent, HTML entities, JS escapes, UTF-7 in any nesting). */
export const MAX_DECODE_ROUNDS = 3;

/**
 * Overlong / non-standard encodings of `.`, `/`, `\` and NUL that lenient decoders (old IIS,
 * Tomcat, some Java stacks) accept. Standard UTF-8 decoding rejects them, so they are mapped
 * explicitly before the ordinary UTF-8 decoding.
 */
const OVERLONG: Readonly<Record<string, string>> = {
  '%c0%ae': '.',
  '%c0%2e': '.',
  '%e0%80%ae': '.',
  '%f0%80%80%ae': '.',
  '%c0%af': '/',
  '%c0%2f': '/',
  '%e0%80%af': '/',
  '%c1%9c': '\\',
  '%c1%1c': '\\',
  '%c0%5c': '\\',
  '%c0%80': '\0',
};
const OVERLONG_RE = /%(?:c0%(?:ae|2e|af|2f|5c|80)|c1%(?:9c|1c)|e0%80%(?:ae|af)|f0%80%80%ae)/gi;
/** A run of `%XX` escapes of bytes >= 0x80 (what percentDecode leaves for UTF-8 decoding). */
const PERCENT_RUN_RE = /(?:%[0-9a-f]{2})+/gi;

/** Value of an ASCII hex digit, or -1. */
function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const lower = c | 0x20;
  return lower >= 97 && lower <= 102 ? lower - 87 : -1;
}

/**
 * A run of `%XX` escapes decoded as UTF-8; bytes that are not part of a valid sequence keep their
 * escape as written. By hand: `decodeURIComponent` throws on invalid UTF-8, and an exception per
 * run costs microseconds on a value with thousands of runs.
 */
function decodeUtf8Run(run: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < run.length; i += 3) bytes.push(hexValue(run.charCodeAt(i + 1)) * 16 + hexValue(run.charCodeAt(i + 2)));
  let out = '';
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i] as number;
    const extra = b >= 0xf0 && b <= 0xf4 ? 3 : b >= 0xe0 && b <= 0xef ? 2 : b >= 0xc2 && b <= 0xdf ? 1 : b < 0x80 ? 0 : -1;
    let cp = extra === 3 ? b & 0x07 : extra === 2 ? b & 0x0f : extra === 1 ? b & 0x1f : b;
    let ok = extra >= 0 && i + extra < bytes.length;
    for (let k = 1; ok && k <= extra; k++) {
      const c = bytes[i + k] as number;
      ok = (c & 0xc0) === 0x80;
      cp = (cp << 6) | (c & 0x3f);
    }
    // no overlong forms, no surrogates, nothing past U+10FFFF
    if (ok && extra >= 2) ok = cp >= (extra === 2 ? 0x800 : 0x10000) && cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff);
    if (ok) {
      out += String.fromCodePoint(cp);
      i += extra + 1;
    } else {
      out += run.slice(i * 3, i * 3 + 3);
      i++;
    }
  }
  return out;
}

/** `%c0` + these ASCII escapes: the overlong forms of `.`, `/`, `\` (`%c1%1c` is `\` too). */
const OVERLONG_C0: Readonly<Record<number, number>> = { 0x2e: 0x2e, 0x2f: 0x2f, 0x5c: 0x5c };

/** 0xc0 or 0xc1 when the two hex digits are `c0` / `c1`, else 0. */
function overlongLead(hi: number, lo: number): number {
  if ((hi | 0x20) !== 99) return 0;
  return lo === 48 ? 0xc0 : lo === 49 ? 0xc1 : 0;
}

/**
 * The decoding buffer, reused from call to call: allocating a fresh buffer of the value's size
 * per call costs more than the decoding itself on large values (zero-filling, and collections
 * triggered by external memory). Safe to share: JavaScript runs one call at a time, and the decoders that use it
 * (percentDecode, foldLookalikes) call nothing that could re-enter either while it is in use.
 * At most 64 Ki code units (128 KiB): longer outputs are flushed to strings as they grow.
 */
let decodingBuffer = new Uint16Array(4096);
function scratch(length: number): Uint16Array {
  if (decodingBuffer.length < length) decodingBuffer = new Uint16Array(Math.max(length, decodingBuffer.length * 2));
  return decodingBuffer;
}

/** The first `top` code units of `buf` as a string, in chunks (apply has an argument limit). */
function codeUnits(buf: Uint16Array, top: number): string {
  let out = '';
  if (top <= 16) {
    for (let k = 0; k < top; k++) out += String.fromCharCode(buf[k] as number);
    return out;
  }
  for (let k = 0; k < top; k += 4096) out += String.fromCharCode.apply(null, buf.subarray(k, Math.min(top, k + 4096)) as unknown as number[]);
  return out;
}

/**
 * Lenient percent-decoding to a fixed point, in one linear pass: `%XX` (ASCII), `%uXXXX` (IIS),
 * overlong forms of `.`, `/`, `\`, NUL, then multi-byte UTF-8. However many times a value was
 * encoded (`%2525252e` is `.` encoded four times), the result holds no `%XX` escape of an ASCII
 * character any more. `+` is left alone.
 *
 * How: the output is a stack; after each character is pushed, an escape that now ends the stack
 * (`%2` + `5` -> `%25` -> `%`) is replaced by its character, which is checked again. Every input
 * character is pushed once and each replacement shrinks the stack, so the work is O(n) however
 * deep the nesting (decoding round after round would be O(n) rounds of O(n) on `%25252525...`).
 * Escapes of bytes >= 0x80 stay on the stack and are decoded as UTF-8 at the end
 * (their result is never `%` or a hex digit, so no new escape can appear).
 */
export function percentDecode(s: string): string {
  let next = s.indexOf('%');
  if (next === -1) return s;
  const n = s.length;
  const buf = scratch(Math.min(n, 1 << 16));
  const pieces: string[] = [];
  let top = 0;
  let wide = false;
  let i = 0;
  while (i < n) {
    if (top === 0) {
      // nothing pending: copy the text up to the next `%` as it is
      if (next < i) next = s.indexOf('%', i);
      if (next === -1) {
        pieces.push(s.slice(i));
        break;
      }
      if (next > i) pieces.push(s.slice(i, next));
      i = next;
    }
    if (top === buf.length) {
      pieces.push(codeUnits(buf, top - 8));
      buf.copyWithin(0, top - 8, top);
      top = 8;
    }
    buf[top++] = s.charCodeAt(i++);
    for (;;) {
      // `%XX` ending the stack
      if (top >= 3 && buf[top - 3] === 37) {
        const hi = hexValue(buf[top - 2] as number);
        const lo = hi < 0 ? -1 : hexValue(buf[top - 1] as number);
        if (lo >= 0) {
          const byte = hi * 16 + lo;
          if (byte < 0x80) {
            top -= 3;
            // overlong `%c0%2e`, `%c0%2f`, `%c0%5c`, `%c1%1c` (the escape before is still on the stack)
            const lead = top >= 3 && buf[top - 3] === 37 ? overlongLead(buf[top - 2] as number, buf[top - 1] as number) : 0;
            const folded = lead === 0xc0 ? OVERLONG_C0[byte] : lead === 0xc1 && byte === 0x1c ? 0x5c : undefined;
            if (folded !== undefined) top -= 3;
            buf[top++] = folded ?? byte;
            continue;
          }
          wide = true;
        }
      }
      // `%uXXXX` ending the stack
      if (top >= 6 && buf[top - 6] === 37 && ((buf[top - 5] as number) | 0x20) === 117) {
        let cp = 0;
        for (let k = top - 4; k < top && cp >= 0; k++) {
          const h = hexValue(buf[k] as number);
          cp = h < 0 ? -1 : cp * 16 + h;
        }
        if (cp >= 0) {
          top -= 6;
          buf[top++] = cp;
          if (cp < 0x80) continue;
        }
      }
      break;
    }
    // No `%` among the last 6 characters of the stack: no escape can ever reach back into it
    // (an escape, overlong lead included, starts with a `%` at most 6 characters before the
    // top), so it is final; when the next `%` is some way off, the copying goes back to slices.
    if (buf[top - 1] !== 37 && (top < 2 || buf[top - 2] !== 37)) {
      let k = top - 3;
      while (k >= 0 && k >= top - 6 && buf[k] !== 37) k--;
      if (k < 0 || k < top - 6) {
        if (next < i) next = s.indexOf('%', i);
        if (next === -1 || next - i >= 32) {
          pieces.push(codeUnits(buf, top));
          top = 0;
        }
      }
    }
  }
  if (top > 0) pieces.push(codeUnits(buf, top));
  const decoded = pieces.join('');
  if (!wide) return decoded;
  return decoded.replace(OVERLONG_RE, (m) => OVERLONG[m.toLowerCase()] ?? m).replace(PERCENT_RUN_RE, decodeUtf8Run);
}

/** Named character references worth decoding: the ones used to smuggle markup and URLs. */
const NAMED_ENTITIES: Readonly<Record<string, string>> = {
  lt: '<',
  gt: '>',
  amp: '&',
  quot: '"',
  apos: "'",
  colon: ':',
  tab: '\t',
  newline: '\n',
  nbsp: '\u00a0',
  lpar: '(',
  rpar: ')',
  sol: '/',
  bsol: '\\',
  num: '#',
  semi: ';',
  equals: '=',
  excl: '!',
  quest: '?',
  period: '.',
  comma: ',',
  grave: '`',
  percnt: '%',
  plus: '+',
  lsqb: '[',
  rsqb: ']',
  lcub: '{',
  rcub: '}',
  lowbar: '_',
  dollar: '$',
  verbar: '|',
  ast: '*',
};
/** `&#60;`, `&#x3c;`, `&lt;` — the semicolon is optional, as browsers accept it without one. */

function codePointOrKeep(cp: number, original: string): string {
  return cp > 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : original;
}

/**
 * One round of HTML character-reference decoding (`&#60;`, `&#x3c;`, `&lt;`, the `;` optional as
 * browsers accept it without one); unknown names are kept. By hand, from `&` to `&`: a value
 * of 200,000 entities costs one pass, not 200,000 replace callbacks.
 */
export function htmlEntityDecodeOnce(s: string): string {
  let amp = s.indexOf('&');
  if (amp === -1) return s;
  const n = s.length;
  let out = '';
  let from = 0;
  for (; amp !== -1; amp = s.indexOf('&', amp + 1)) {
    let j = amp + 1;
    let decoded: string | undefined;
    if (s.charCodeAt(j) === 35) {
      // &#x3c; or &#60;
      const hex = (s.charCodeAt(j + 1) | 0x20) === 120;
      j += hex ? 2 : 1;
      const digitsStart = j;
      let value = 0;
      for (let d = hex ? hexValue(s.charCodeAt(j)) : decimal(s.charCodeAt(j)); d >= 0 && j - digitsStart < (hex ? 6 : 8); ) {
        value = value * (hex ? 16 : 10) + d;
        j++;
        d = hex ? hexValue(s.charCodeAt(j)) : decimal(s.charCodeAt(j));
      }
      if (j > digitsStart && value > 0 && value <= 0x10ffff) decoded = String.fromCodePoint(value);
    } else {
      // &lt; (2 to 8 letters, the longest run read, as the browser's longest match)
      while (j < n && j - amp <= 8 && isAsciiLetter(s.charCodeAt(j))) j++;
      if (j - amp - 1 >= 2) {
        const name = s.slice(amp + 1, j);
        decoded = NAMED_ENTITY_MAP.get(name) ?? NAMED_ENTITY_MAP.get(name.toLowerCase());
      }
    }
    if (decoded === undefined) continue;
    if (s.charCodeAt(j) === 59) j++;
    out += s.slice(from, amp) + decoded;
    from = j;
    amp = j - 1;
  }
  return from === 0 ? s : out + s.slice(from);
}

const NAMED_ENTITY_MAP: ReadonlyMap<string, string> = new Map(Object.entries(NAMED_ENTITIES));

function decimal(c: number): number {
  return c >= 48 && c <= 57 ? c - 48 : -1;
}

function isAsciiLetter(c: number): boolean {
  return ((c | 0x20) >= 97 && (c | 0x20) <= 122);
}

/** JavaScript string escapes (`\u003c`, `\u{3c}`, `\x3c`) as seen when a payload is written for a JS sink. */
const JS_ESCAPE_RE = /\\(?:u\{([0-9a-f]{1,6})\}|u([0-9a-f]{4})|x([0-9a-f]{2}))/gi;
/** The UTF-7 forms of `<`, `>` and `"` used by old UTF-7 XSS. */
const UTF7_RE = /\+AD[w4I]-/g;
const UTF7: Readonly<Record<string, string>> = { '+ADw-': '<', '+AD4-': '>', '+ACI-': '"' };

/**
 * What a browser-side sink could end up with: percent, HTML-entity, JS-escape and UTF-7 layers
 * removed, in any nesting, for at most `MAX_DECODE_ROUNDS` rounds. `percentDecoded`, when given,
 * is `percentDecode(s)`, not computed again.
 */
export function markupDecode(s: string, percentDecoded?: string): string {
  // Percent-decoding reaches its fixed point in one call, so it is redone only after another
  // layer changed something (the caller may have done the first one: inspectValue has).
  let current = percentDecoded ?? percentDecode(s);
  for (let round = 0; round < MAX_DECODE_ROUNDS; round++) {
    let next = htmlEntityDecodeOnce(current);
    if (next.includes('\\')) {
      next = next.replace(JS_ESCAPE_RE, (m, braced: string | undefined, u4: string | undefined, x2: string | undefined) =>
        codePointOrKeep(Number.parseInt(braced ?? u4 ?? x2 ?? '', 16), m),
      );
    }
    if (next.includes('+AD')) next = next.replace(UTF7_RE, (m) => UTF7[m] ?? m);
    if (next === current) break;
    current = percentDecode(next);
  }
  return current;
}

/**
 * Characters that Unicode compatibility normalisation (NFKC, applied by some stacks to paths and
 * file names) turns into `.`, `/` or `\`, mapped to what NFKC makes of them: `\u2025` (two dot
 * leader) is `..`. The table is the complete list for the whole code space, checked against
 * `String.prototype.normalize` in test/security/detect.test.ts. Also the look-alikes that have no
 * NFKC mapping but that "best fit" code-page conversions (Windows) fold the same way: division
 * slash, fraction slash, set minus.
 */
const LOOKALIKE: Readonly<Record<string, string>> = {
  '\u2024': '.',
  '\u2025': '..',
  '\u2026': '...',
  '\u2100': 'a/c',
  '\u2101': 'a/s',
  '\u2105': 'c/o',
  '\u2106': 'c/u',
  '\u2488': '1.',
  '\u2489': '2.',
  '\u248a': '3.',
  '\u248b': '4.',
  '\u248c': '5.',
  '\u248d': '6.',
  '\u248e': '7.',
  '\u248f': '8.',
  '\u2490': '9.',
  '\u2491': '10.',
  '\u2492': '11.',
  '\u2493': '12.',
  '\u2494': '13.',
  '\u2495': '14.',
  '\u2496': '15.',
  '\u2497': '16.',
  '\u2498': '17.',
  '\u2499': '18.',
  '\u249a': '19.',
  '\u249b': '20.',
  '\u33c2': 'a.m.',
  '\u33c7': 'Co.',
  '\u33d8': 'p.m.',
  '\ufe19': '...',
  '\ufe30': '..',
  '\ufe52': '.',
  '\ufe68': '\\',
  '\uff0e': '.',
  '\uff0f': '/',
  '\uff3c': '\\',
  '\u{1f100}': '0.',
  // no NFKC mapping; folded by best-fit conversions
  '\u2215': '/',
  '\u2044': '/',
  '\u2216': '\\',
};
export const LOOKALIKE_CHARS: readonly string[] = Object.keys(LOOKALIKE);
const LOOKALIKE_RE = new RegExp(`[${LOOKALIKE_CHARS.join('')}]`, 'u');

/** The ASCII form of each look-alike as code units, by the look-alike's last code unit. */
const LOOKALIKE_UNITS = new Map<number, { readonly lead: number; readonly units: readonly number[] }>(
  Object.entries(LOOKALIKE).map(([ch, ascii]) => [
    ch.charCodeAt(ch.length - 1),
    { lead: ch.length === 2 ? ch.charCodeAt(0) : 0, units: [...ascii].map((c) => c.charCodeAt(0)) },
  ]),
);

/**
 * `s` with the characters above replaced by their ASCII form (at most 4 characters each), in one
 * pass into a buffer: a replace callback, or string concatenation, per look-alike would cost far
 * more on a value made of nothing but look-alikes.
 */
export function foldLookalikes(s: string): string {
  if (!LOOKALIKE_RE.test(s)) return s;
  const out = scratch(Math.min(4 * s.length, 1 << 16));
  const pieces: string[] = [];
  let top = 0;
  for (let i = 0; i < s.length; i++) {
    // full enough: flush, but never between the two halves of a surrogate pair
    if (top > out.length - 8 && ((out[top - 1] as number) < 0xd800 || (out[top - 1] as number) > 0xdbff)) {
      pieces.push(codeUnits(out, top));
      top = 0;
    }
    const c = s.charCodeAt(i);
    const fold = c >= 0x2024 ? LOOKALIKE_UNITS.get(c) : undefined;
    if (fold === undefined || (fold.lead !== 0 && (top === 0 || out[top - 1] !== fold.lead))) {
      out[top++] = c;
      continue;
    }
    if (fold.lead !== 0) top--; // the high surrogate already copied
    for (const u of fold.units) out[top++] = u;
  }
  pieces.push(codeUnits(out, top));
  return pieces.join('');
}
