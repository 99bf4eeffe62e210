import { isUtf8 } from 'node:buffer';
import type { RouteConfig } from '../config/index.js';

/*
 * One canonical request target per request (docs/security.md, "Request paths"). Computed once, before
 * routing (Fastify's rewriteUrl, src/proxy/request-target.ts): route matching, auth policy,
 * input validation, the cache key and the path sent upstream all use the result, so the
 * gateway and the upstream can never read the same request as two different paths.
 *
 * Rules, per path segment:
 *  - percent-escapes of unreserved characters (ALPHA DIGIT - . _ ~) are decoded, every other
 *    escape is kept with uppercase hex; characters that are not allowed raw in a path
 *    (`"<>^`{|}` and bytes >= 0x80) are percent-encoded;
 *  - malformed escapes, escaped bytes that are not valid UTF-8 (overlong forms, surrogates),
 *    encoded control characters (%00-%1F, %7F), a raw backslash and a `#` are refused;
 *  - dot segments (`.`, `..`, in any encoding, also `..;x`) are refused, never resolved;
 *  - empty segments (`//`) are collapsed; a trailing slash is kept;
 *  - an encoded `/` or `\` (%2F, %5C, or one encoded several times such as %252F, or a
 *    Unicode form that NFKC folds to one) and a `;` (matrix parameters) are flagged: only a
 *    route that opts in (`allowEncodedSlashes`, `allowSemicolons`) accepts them, and they are
 *    never separators for matching;
 *  - absolute-form targets (`http://host/p`) are reduced to their path and query (the Host
 *    header stays what it was); `*` and anything else that is not a path is refused;
 *  - the `_method` query parameter (method override) is removed; the rest of the query is kept
 *    as sent.
 * Everything is one linear pass over the target (the decoding of multiply-encoded segments
 * is bounded to MAX_DECODE_ROUNDS).
 */

export interface RequestTarget {
  /** The canonical path and query: what Fastify routes on and what is forwarded. */
  readonly url: string;
  /** The canonical path, no query. */
  readonly path: string;
  /** The path holds an encoded `/` or `\` (never a separator here). */
  readonly encodedSlash: boolean;
  /** The path holds a `;` (matrix parameters). */
  readonly semicolon: boolean;
  /** Why the target is refused whatever the route; undefined when it is acceptable. */
  readonly problem?: string;
}

/** More rounds of %25-decoding than this in one segment is refused as an evasion. */
const MAX_DECODE_ROUNDS = 4;

const HEX_DIGITS = Buffer.from('0123456789ABCDEF', 'latin1');

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

function isUnreserved(b: number): boolean {
  return (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) || b === 0x2d || b === 0x2e || b === 0x5f || b === 0x7e;
}

/** Printable ASCII that may not appear raw in a path segment (RFC 3986 pchar) and is encoded: `"<>^`{|}`. */
function mustEncode(c: number): boolean {
  return c === 0x22 || c === 0x3c || c === 0x3e || c === 0x5e || c === 0x60 || c === 0x7b || c === 0x7c || c === 0x7d;
}

function isControl(b: number): boolean {
  return b < 0x20 || b === 0x7f;
}

function isDotSegment(text: string): boolean {
  return text === '.' || text === '..';
}

/** The part of a segment before its first `;` (what Tomcat, Jetty and Spring match on). */
function segmentBase(text: string): string {
  const semi = text.indexOf(';');
  return semi === -1 ? text : text.slice(0, semi);
}

/** bytes[start, end) is `.` or `..`, or is one followed by `;...` (Tomcat's `..;`). */
function isDotBytes(bytes: Uint8Array, start: number, end: number): boolean {
  let stop = start;
  while (stop < end && bytes[stop] !== 0x3b) stop++;
  const n = stop - start;
  return (n === 1 && bytes[start] === 0x2e) || (n === 2 && bytes[start] === 0x2e && bytes[start + 1] === 0x2e);
}

/**
 * The characters whose NFKC form holds a `/`, `\`, `.` or `;` (U+2025 "‥" -> "..", U+FF0F "／"
 * -> "/", ...): only text with one of them can hide a separator or dot segment from the
 * checks, so only such text is folded. test/routing/canonical-path.test.ts recomputes the list
 * from the running Unicode tables.
 */
export const NFKC_SEPARATOR_OR_DOT = /[\u037E\u2024-\u2026\u2100\u2101\u2105\u2106\u2488-\u249B\u33C2\u33C7\u33D8\uFE14\uFE19\uFE30\uFE52\uFE54\uFE68\uFF0E\uFF0F\uFF1B\uFF3C]|\u{1F100}/u;

/** UTF-8 lead bytes of the characters of NFKC_SEPARATOR_OR_DOT (U+037E, U+2xxx, U+33xx, U+FExx/U+FFxx, U+1F100): without one, no folding is needed. */
function mayFoldToSeparatorOrDot(bytes: Uint8Array, length: number): boolean {
  for (let i = 0; i < length; i++) {
    const b = bytes[i]!;
    if (b === 0xcd || b === 0xe2 || b === 0xe3 || b === 0xef || b === 0xf0) return true;
  }
  return false;
}

const DOT_PROBLEM = 'a dot segment (. or ..) in the path';
const HIDDEN_DOT_PROBLEM = 'an encoded dot segment in the path';
const CONTROL_PROBLEM = 'an encoded control character in the path';
const UTF8_PROBLEM = 'percent-escapes in the path that are not valid UTF-8';

/**
 * One reading of a decoded segment: whether it holds a separator (`/`, `\`), and a problem
 * when it holds a control character or a piece between separators that is a dot segment.
 */
function checkReading(bytes: Uint8Array, length: number): { separator: boolean; problem?: string } {
  let separator = false;
  let pieceStart = 0;
  for (let i = 0; i <= length; i++) {
    const b = i === length ? 0x2f : bytes[i]!;
    if (b === 0x2f || b === 0x5c) {
      if (i < length) separator = true;
      if (isDotBytes(bytes, pieceStart, i)) return { separator, problem: HIDDEN_DOT_PROBLEM };
      pieceStart = i + 1;
    } else if (isControl(b)) {
      return { separator, problem: CONTROL_PROBLEM };
    }
  }
  return { separator };
}

/** Percent-decode bytes once (malformed escapes stay); the same buffer when nothing changed. */
function decodeBytes(bytes: Buffer, length: number): { bytes: Buffer; length: number } {
  let first = 0;
  while (first < length && bytes[first] !== 0x25) first++;
  if (first === length) return { bytes, length };
  const out = Buffer.allocUnsafe(length);
  let o = 0;
  for (let i = 0; i < length; i++) {
    const b = bytes[i]!;
    if (b === 0x25 && i + 2 < length) {
      const h = hexValue(bytes[i + 1]!);
      const l = hexValue(bytes[i + 2]!);
      if (h >= 0 && l >= 0) {
        out[o++] = (h << 4) | l;
        i += 2;
        continue;
      }
    }
    out[o++] = b;
  }
  return o === length ? { bytes, length } : { bytes: out, length: o };
}

/**
 * The hidden readings of one segment, given its once-decoded bytes: what an upstream that
 * decodes it (once, or again and again for %25), or folds Unicode with NFKC, would see.
 * Flags separators; refuses control characters and dot segments that only show up there
 * (`x%2F..%2Fy`, `%252e%252e`, U+2025).
 */
function hiddenReadings(decoded: Buffer, length: number, hasHighBytes: boolean): { separator: boolean; problem?: string } {
  let reading = checkReading(decoded, length);
  let separator = reading.separator;
  if (reading.problem !== undefined) return reading;
  let current = { bytes: decoded, length };
  for (let round = 1; ; round++) {
    const next = decodeBytes(current.bytes, current.length);
    if (next.bytes === current.bytes) break;
    if (round >= MAX_DECODE_ROUNDS) return { separator, problem: 'a path segment encoded too many times' };
    current = next;
    reading = checkReading(current.bytes, current.length);
    separator ||= reading.separator;
    if (reading.problem !== undefined) return { separator, problem: reading.problem };
  }
  if (hasHighBytes && mayFoldToSeparatorOrDot(decoded, length)) {
    const text = decoded.toString('utf8', 0, length);
    const folded = NFKC_SEPARATOR_OR_DOT.test(text) ? text.normalize('NFKC') : text;
    if (folded !== text) {
      const pieces = folded.split(/[/\\]/);
      separator ||= pieces.length > 1;
      // eslint-disable-next-line no-control-regex
      if (/[\u0000-\u001f\u007f]/.test(folded)) return { separator, problem: CONTROL_PROBLEM };
      for (const piece of pieces) if (isDotSegment(segmentBase(piece))) return { separator, problem: HIDDEN_DOT_PROBLEM };
    }
  }
  return { separator };
}

/**
 * Whether a path needs the full pass: anything but plain pchars in plain segments. Plain
 * paths (the vast majority) are returned as they are, without allocating.
 */
function needsWork(path: string): boolean {
  let prev = 0;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 0x25 || c === 0x5c || c === 0x3b || c <= 0x20 || c >= 0x7f || mustEncode(c)) return true;
    // `//` and any segment starting with a dot (`.`, `..`, but also `.well-known`: cheap to check)
    if (prev === 0x2f && (c === 0x2f || c === 0x2e)) return true;
    prev = c;
  }
  return false;
}

interface PathResult {
  readonly path: string;
  readonly encodedSlash: boolean;
  readonly semicolon: boolean;
  readonly problem?: string;
}

/** Work buffers of canonicalPath (synchronous, so one pair serves every call); grown on demand. */
let scratchOut = Buffer.alloc(4096);
let scratchDecoded = Buffer.alloc(4096);

/**
 * The canonical form of a path (starting with `/`), one pass over its bytes: each segment
 * written to `out` in canonical form while its once-decoded bytes go to `decoded` for the
 * checks at the segment's end.
 */
function canonicalPath(path: string): PathResult {
  const semicolon = path.includes(';');
  if (!needsWork(path)) return { path, encodedSlash: false, semicolon };
  const n = path.length;
  if (scratchOut.length < n * 3 + 1) {
    scratchOut = Buffer.alloc(n * 3 + 1);
    scratchDecoded = Buffer.alloc(n);
  }
  const out = scratchOut;
  const decoded = scratchDecoded;
  const refuse = (problem: string, encodedSlash: boolean): PathResult => ({ path, encodedSlash, semicolon, problem });
  let o = 0;
  let encodedSlash = false;
  // The current segment: where its `/` was written in `out`, its decoded length, what it holds.
  let mark = 0;
  let d = 0;
  let separator = false;
  let high = false;
  let percent = false;
  out[o++] = 0x2f;
  for (let i = 1; i <= n; i++) {
    const c = i === n ? 0x2f : path.charCodeAt(i);
    if (c === 0x2f) {
      if (o === mark + 1) {
        // An empty segment collapses (`//`); a trailing slash is added back at the end.
        o = mark;
      } else {
        if (isDotBytes(out, mark + 1, o)) return refuse(DOT_PROBLEM, encodedSlash);
        if (high && !isUtf8(decoded.subarray(0, d))) return refuse(UTF8_PROBLEM, encodedSlash);
        if (separator || high || percent) {
          const hidden = hiddenReadings(decoded, d, high);
          encodedSlash ||= separator || hidden.separator;
          if (hidden.problem !== undefined) return refuse(hidden.problem, encodedSlash);
        }
      }
      mark = o;
      out[o++] = 0x2f;
      d = 0;
      separator = high = percent = false;
      continue;
    }
    let byte: number;
    if (c === 0x25) {
      const h = hexValue(path.charCodeAt(i + 1));
      const l = hexValue(path.charCodeAt(i + 2));
      if (h < 0 || l < 0) return refuse('a malformed percent-escape in the path', encodedSlash);
      byte = (h << 4) | l;
      i += 2;
      decoded[d++] = byte;
      if (isUnreserved(byte)) {
        out[o++] = byte;
        continue;
      }
    } else if (c === 0x5c) {
      return refuse('a backslash in the path', encodedSlash);
    } else if (c <= 0x20 || c === 0x7f) {
      return refuse('a control character in the path', encodedSlash);
    } else if (c >= 0x80 || mustEncode(c)) {
      if (c > 0xff) return refuse('a character outside Latin-1 in the request line', encodedSlash);
      byte = c;
      decoded[d++] = byte;
    } else {
      out[o++] = c;
      decoded[d++] = c;
      continue;
    }
    // A byte that stays percent-encoded, uppercase hex.
    if (byte === 0x2f || byte === 0x5c) separator = true;
    else if (isControl(byte)) return refuse(CONTROL_PROBLEM, encodedSlash);
    else if (byte === 0x25) percent = true;
    else if (byte >= 0x80) high = true;
    out[o++] = 0x25;
    out[o++] = HEX_DIGITS[byte >> 4]!;
    out[o++] = HEX_DIGITS[byte & 15]!;
  }
  // The loop's last step wrote a `/` for the (absent) segment after the end: keep it only
  // when the path ended with one, and never leave the path empty.
  o -= 1;
  if (path.charCodeAt(n - 1) === 0x2f || o === 0) out[o++] = 0x2f;
  return { path: out.toString('latin1', 0, o), encodedSlash, semicolon };
}

/** Decode every %XX of a string into the byte it names (one char per byte), leaving malformed ones. */
function decodeOnce(text: string): string {
  return text.replace(/%([0-9A-Fa-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
}

/** `_method` (and `_method[...]`) query parameters, in any case or encoding: method overrides. */
function isMethodOverrideParam(part: string): boolean {
  const eq = part.indexOf('=');
  let name = eq === -1 ? part : part.slice(0, eq);
  if (name.length < 7) return false;
  if (name.includes('%') || name.includes('+')) {
    try {
      name = decodeURIComponent(name.replace(/\+/g, ' '));
    } catch {
      name = decodeOnce(name);
    }
  }
  name = name.trim().toLowerCase();
  return name === '_method' || name.startsWith('_method[');
}

function canonicalQuery(query: string): string {
  if (!/method/i.test(query) && !/%6d|%4d|%5f/i.test(query)) return query;
  const parts = query.split('&');
  const kept = parts.filter((p) => !isMethodOverrideParam(p));
  return kept.length === parts.length ? query : kept.join('&');
}

const ABSOLUTE_FORM = /^https?:\/\/[^/?#]*/i;

/** The canonical form of a request target as Node received it (`req.url`). */
export function canonicalTarget(raw: string): RequestTarget {
  let target = raw;
  if (target.charCodeAt(0) !== 0x2f) {
    const absolute = ABSOLUTE_FORM.exec(target);
    if (absolute === null) return { url: raw, path: raw, encodedSlash: false, semicolon: false, problem: 'the request target is not a path (origin-form) or an http(s) URL' };
    target = target.slice(absolute[0].length);
    if (target.charCodeAt(0) !== 0x2f) target = `/${target}`;
  }
  if (target.includes('#')) return { url: raw, path: raw, encodedSlash: false, semicolon: false, problem: 'a fragment (#) in the request target' };
  const q = target.indexOf('?');
  const rawPath = q === -1 ? target : target.slice(0, q);
  const path = canonicalPath(rawPath);
  if (path.problem !== undefined) return { url: raw, path: rawPath, encodedSlash: path.encodedSlash, semicolon: path.semicolon, problem: path.problem };
  const query = q === -1 ? '' : canonicalQuery(target.slice(q + 1));
  const url = query === '' ? path.path : `${path.path}?${query}`;
  return { url, path: path.path, encodedSlash: path.encodedSlash, semicolon: path.semicolon };
}

/** Whether `prefix` covers `path`: equal, or followed by a `/` (whole segments only). */
export function prefixMatches(prefix: string, path: string): boolean {
  if (prefix === '/') return true;
  return path.startsWith(prefix) && (path.length === prefix.length || path[prefix.length] === '/');
}

/**
 * Characters that normalisers drop (default-ignorable: soft hyphen, zero-width space and joiners,
 * word joiner, BOM): `admin\u200b` is `admin` to a server that cleans names as IDNA does.
 */
const IGNORABLE = /[\u00ad\u200b-\u200f\u2060-\u2064\ufeff]/g;

/**
 * A segment as a lenient server reads it: `;` parameters dropped (Tomcat, Spring), an NTFS
 * stream suffix dropped (`admin::$DATA` is the file `admin` on Windows), and trailing dots and
 * spaces trimmed (Windows and IIS open `admin.` and `admin%20` as `admin`; after NFKC this also
 * covers no-break and ideographic spaces). By hand, from the end: a pattern such as `[. ]+$`
 * rescans a long run of dots from each of its characters.
 */
function looseSegment(text: string): string {
  let segment = segmentBase(text);
  const stream = segment.search(/::?\$/);
  if (stream !== -1) segment = segment.slice(0, stream);
  return trimDotsAndSpaces(segment);
}

/** `text` without its trailing dots and spaces. */
function trimDotsAndSpaces(text: string): string {
  let end = text.length;
  while (end > 0 && (text.charCodeAt(end - 1) === 0x2e || text.charCodeAt(end - 1) === 0x20)) end--;
  return end === text.length ? text : text.slice(0, end);
}

/**
 * What an upstream that normalises aggressively could read in a canonical path: every
 * escape decoded (several rounds), ended at a decoded `?` or `#` (a server that decodes the
 * path and then parses it again), `\` as `/`, default-ignorable characters dropped, Unicode
 * folded (NFKC), each segment read leniently (looseSegment), empty segments collapsed,
 * lowercase. Used only to find paths whose other reading falls under a different route.
 */
export function loosestReading(path: string): string {
  // Nothing to decode, fold, drop or trim: the reading is the path, lowercase.
  if (!/[%;\\.:]/.test(path)) return path.toLowerCase().replace(/\/{2,}/g, '/');
  let value = path;
  for (let round = 0; round <= MAX_DECODE_ROUNDS && value.includes('%'); round++) {
    const next = decodeOnce(value);
    if (next === value) break;
    value = next;
  }
  // decodeOnce gives one char per byte; reassemble UTF-8 before folding.
  value = Buffer.from(value, 'latin1').toString('utf8');
  const end = value.search(/[?#]/);
  if (end !== -1) value = value.slice(0, end);
  value = value.replace(IGNORABLE, '').normalize('NFKC').replace(/\\/g, '/');
  const segments = value.split('/').map(looseSegment);
  const trailing = segments.length > 1 && segments[segments.length - 1] === '';
  const kept = segments.filter((s) => s !== '');
  return `/${kept.join('/')}${trailing && kept.length > 0 ? '/' : ''}`.toLowerCase();
}

/**
 * The same reading without the last segment's extension: Rails routes take `admin.json` as
 * `admin` with format json, and Spring's suffix pattern matching did the same.
 */
function withoutExtension(reading: string): string {
  const slash = reading.lastIndexOf('/');
  const dot = reading.lastIndexOf('.');
  return dot > slash + 1 ? trimDotsAndSpaces(reading.slice(0, dot)) : reading;
}

/**
 * Route-dependent checks of a canonical target, once the route is known: encoded slashes and
 * `;` only where the route opts in, and never a path that an upstream normalising case,
 * encodings, parameters, trailing dots or spaces, or an extension would read as one of a more
 * specific route (e.g. `/v1/legacyapp/ADMIN`, `/v1/legacyapp/admin;x=1`, `/v1/legacyapp/admin.`
 * or `/v1/legacyapp/admin.json` when `/v1/legacyapp/admin` is a route of its own). Built once from every gateway route.
 */
export class PathGuard {
  /** Per route, the routes whose prefix lies below it (compared case-insensitively). */
  readonly #nested = new Map<RouteConfig, readonly { readonly route: RouteConfig; readonly prefix: string }[]>();

  constructor(routes: readonly RouteConfig[]) {
    for (const route of routes) {
      const own = route.prefix.toLowerCase();
      // Routes below this one; a prefix differing only in case is not "below" (it would make both unusable).
      const below = routes
        .filter((other) => {
          const lower = other.prefix.toLowerCase();
          if (other === route || lower === own) return false;
          return own === '/' || lower.startsWith(`${own}/`);
        })
        .map((other) => ({ route: other, prefix: other.prefix.toLowerCase() }));
      this.#nested.set(route, below);
    }
  }

  /** Whether some route lies below `route` (only then can a path be read as another route's). */
  hasRoutesBelow(route: RouteConfig): boolean {
    return (this.#nested.get(route)?.length ?? 0) > 0;
  }

  /** Why this target may not go to `route` (undefined: it may); `route` undefined for the gateway's own endpoints. */
  refusal(target: RequestTarget, route: RouteConfig | undefined): string | undefined {
    if (target.problem !== undefined) return target.problem;
    if (target.encodedSlash && route?.allowEncodedSlashes !== true) return 'an encoded / or \\ in a path segment';
    if (target.semicolon && route?.allowSemicolons !== true) return 'a ; (path parameter) in the path';
    if (route === undefined) return undefined;
    const nested = this.#nested.get(route);
    if (nested === undefined || nested.length === 0) return undefined;
    const reading = loosestReading(target.path);
    const bare = withoutExtension(reading);
    for (const other of nested) {
      if (prefixMatches(other.prefix, reading) || prefixMatches(other.prefix, bare)) {
        return `a path that also reads as one of route ${other.route.id} (case, encoding, ; parameters, trailing dots or an extension)`;
      }
    }
    return undefined;
  }
}
