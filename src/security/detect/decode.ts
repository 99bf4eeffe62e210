/**
 * Decoding shared by the detectors. Attackers hide payloads behind one or more layers of
 * encoding that an upstream (or a framework in front of it) may undo; the detectors look at
 * what the upstream would finally see. Every decoder here is total (never throws on malformed
 * input: a bad escape is kept literally) and bounded (a fixed number of rounds).
 */

/** Rounds of percent-decoding: enough for double and triple encoding (`%25252e`). */
export const MAX_DECODE_ROUNDS = 3;

/**
 * Overlong / non-standard encodings of `.`, `/`, `\` and NUL that lenient decoders (old IIS,
 * Tomcat, some Java stacks) accept. Standard UTF-8 decoding rejects them, so they are mapped
 * explicitly before the ordinary percent-decoding.
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
/** IIS `%uXXXX` escapes. */
const UNICODE_ESCAPE_RE = /%u([0-9a-f]{4})/gi;
/** A run of `%XX` escapes, decoded together so multi-byte UTF-8 sequences come out whole. */
const PERCENT_RUN_RE = /(?:%[0-9a-f]{2})+/gi;

function decodePercentRun(run: string): string {
  try {
    return decodeURIComponent(run);
  } catch {
    // Invalid UTF-8 in the run: decode the ASCII bytes, keep the others as written.
    let out = '';
    for (let i = 0; i < run.length; i += 3) {
      const byte = Number.parseInt(run.slice(i + 1, i + 3), 16);
      out += byte < 0x80 ? String.fromCharCode(byte) : run.slice(i, i + 3);
    }
    return out;
  }
}

/** One round of lenient percent-decoding (`%XX`, `%uXXXX`, overlong forms). `+` is left alone. */
export function percentDecodeOnce(s: string): string {
  if (!s.includes('%')) return s;
  return s
    .replace(OVERLONG_RE, (m) => OVERLONG[m.toLowerCase()] ?? m)
    .replace(UNICODE_ESCAPE_RE, (_m, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)))
    .replace(PERCENT_RUN_RE, decodePercentRun);
}

/** Percent-decodes until nothing changes, at most `MAX_DECODE_ROUNDS` times. */
export function percentDecode(s: string): string {
  let current = s;
  for (let round = 0; round < MAX_DECODE_ROUNDS && current.includes('%'); round++) {
    const next = percentDecodeOnce(current);
    if (next === current) break;
    current = next;
  }
  return current;
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
const ENTITY_RE = /&(?:#x([0-9a-f]{1,6})|#(\d{1,8})|([a-z]{2,8}));?/gi;

function codePointOrKeep(cp: number, original: string): string {
  return cp > 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : original;
}

/** One round of HTML character-reference decoding; unknown names are kept. */
export function htmlEntityDecodeOnce(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(ENTITY_RE, (m, hex: string | undefined, dec: string | undefined, name: string | undefined) => {
    if (hex !== undefined) return codePointOrKeep(Number.parseInt(hex, 16), m);
    if (dec !== undefined) return codePointOrKeep(Number.parseInt(dec, 10), m);
    return NAMED_ENTITIES[(name ?? '').toLowerCase()] ?? m;
  });
}

/** JavaScript string escapes (`\u003c`, `\u{3c}`, `\x3c`) as seen when a payload is written for a JS sink. */
const JS_ESCAPE_RE = /\\(?:u\{([0-9a-f]{1,6})\}|u([0-9a-f]{4})|x([0-9a-f]{2}))/gi;
/** The UTF-7 forms of `<`, `>` and `"` used by old UTF-7 XSS. */
const UTF7_RE = /\+AD[w4I]-/g;
const UTF7: Readonly<Record<string, string>> = { '+ADw-': '<', '+AD4-': '>', '+ACI-': '"' };

/**
 * What a browser-side sink could end up with: percent, HTML-entity, JS-escape and UTF-7 layers
 * removed, in any nesting, for at most `MAX_DECODE_ROUNDS` rounds.
 */
export function markupDecode(s: string): string {
  let current = s;
  for (let round = 0; round < MAX_DECODE_ROUNDS; round++) {
    let next = percentDecodeOnce(current);
    next = htmlEntityDecodeOnce(next);
    if (next.includes('\\')) {
      next = next.replace(JS_ESCAPE_RE, (m, braced: string | undefined, u4: string | undefined, x2: string | undefined) =>
        codePointOrKeep(Number.parseInt(braced ?? u4 ?? x2 ?? '', 16), m),
      );
    }
    if (next.includes('+AD')) next = next.replace(UTF7_RE, (m) => UTF7[m] ?? m);
    if (next === current) break;
    current = next;
  }
  return current;
}

/** Look-alike dots and slashes that Unicode normalisation (NFKC) on some stacks folds to ASCII. */
const LOOKALIKE_RE = /[\u2024\uFE52\uFF0E\u2215\u2044\uFF0F\u2216\uFE68\uFF3C]/g;
const LOOKALIKE: Readonly<Record<string, string>> = {
  '\u2024': '.',
  '\uFE52': '.',
  '\uFF0E': '.',
  '\u2215': '/',
  '\u2044': '/',
  '\uFF0F': '/',
  '\u2216': '\\',
  '\uFE68': '\\',
  '\uFF3C': '\\',
};

export function foldLookalikes(s: string): string {
  return s.replace(LOOKALIKE_RE, (m) => LOOKALIKE[m] ?? m);
}
