/**
 * Header injection (CRLF injection, HTTP response splitting): a line break followed by a header
 * line (`\r\nSet-Cookie: sid=...`, `%0d%0aLocation: https://evil`) or a status line
 * (`\r\n\r\nHTTP/1.1 200 OK`) in a value an upstream may copy into a header it writes: a
 * redirect target, a cookie, a download's file name. An upstream that writes it unchecked
 * splits its own answer and lets the attacker set headers, or a second answer, on the client.
 *
 * Line breaks are CR and LF, and the characters that become one when a server keeps only the
 * low byte of each character as it writes a header (`Ċ` U+010A, `č` U+010D, `嘊` U+560A, `嘍`
 * U+560D: the encoded forms `%C4%8A`, `%E5%98%8A` of the known bypasses), NEL and the Unicode
 * line and paragraph separators. Only a break followed by a header name from the list below
 * or with a prefix of a header family (`x-`, `content-`, `access-control-`, `proxy-`, `sec-`), or a
 * status line, counts: a multi-line value ("Notes:\nTodo: milk") is data.
 *
 * Why by hand: a regular expression anchored on every line break rescans a run of them from each
 * one (quadratic on `\n\n\n...`); this scan reads each character once plus a bounded name.
 */
import { isDigitCode as isDigit, isWordCode } from './scan.js';

/** Headers whose injection takes over a response: cookies, redirects, framing, CORS, caching, proxies. */
const HEADER_NAMES = new Set([
  'set-cookie',
  'set-cookie2',
  'cookie',
  'location',
  'refresh',
  'content-type',
  'content-length',
  'content-disposition',
  'content-encoding',
  'content-security-policy',
  'transfer-encoding',
  'connection',
  'upgrade',
  'host',
  'via',
  'link',
  'authorization',
  'proxy-authorization',
  'www-authenticate',
  'cache-control',
  'expires',
  'pragma',
  'vary',
  'strict-transport-security',
  'x-frame-options',
  'x-xss-protection',
  'x-content-type-options',
  'access-control-allow-origin',
  'access-control-allow-credentials',
  'access-control-allow-headers',
  'access-control-allow-methods',
  'access-control-expose-headers',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-forwarded-server',
  'x-real-ip',
  'x-original-url',
  'x-rewrite-url',
  'x-accel-redirect',
  'x-sendfile',
  'remote-addr',
  'remote-ip',
  'x-originating-ip',
]);

/** Families of headers: any name with one of these prefixes (`X-Custom-Header`, `Content-Location`). */
const HEADER_PREFIXES = ['x-', 'content-', 'access-control-', 'proxy-', 'sec-'];

/** Longest header name read after a line break (RFC 9110 sets none; real ones stay far below). */
const LONGEST_NAME = 64;

function isHeaderName(name: string): boolean {
  return HEADER_NAMES.has(name) || HEADER_PREFIXES.some((p) => name.length > p.length && name.startsWith(p));
}

function isLineBreak(c: number): boolean {
  return c === 0x0a || c === 0x0d || c === 0x85 || c === 0x2028 || c === 0x2029 || c === 0x010a || c === 0x010d || c === 0x560a || c === 0x560d;
}

/** Characters allowed between line breaks and before the name: spaces and tabs (header folding). */
function isBlank(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/** A header name's characters as read here: letters, digits, `_` and `-`. */
function isNameCode(c: number): boolean {
  return isWordCode(c) || c === 45;
}

/** `/1.1 200` (or `/2 200`) at `i`, right after `HTTP`: the start of a second answer. */
function isStatusLine(value: string, i: number): boolean {
  if (value.charCodeAt(i) !== 0x2f /* / */ || !isDigit(value.charCodeAt(i + 1))) return false;
  let k = i + 2;
  if (value.charCodeAt(k) === 0x2e /* . */ && isDigit(value.charCodeAt(k + 1))) k += 2;
  if (!isBlank(value.charCodeAt(k))) return false;
  while (isBlank(value.charCodeAt(k))) k++;
  return isDigit(value.charCodeAt(k)) && isDigit(value.charCodeAt(k + 1)) && isDigit(value.charCodeAt(k + 2));
}

/** True when `value` (percent-decoded) holds a line break followed by a header or status line. */
export function detectHeaderInjection(value: string): boolean {
  const n = value.length;
  let i = 0;
  while (i < n) {
    if (!isLineBreak(value.charCodeAt(i))) {
      i++;
      continue;
    }
    // The run of breaks and blanks, read once; what follows it is the candidate line.
    let j = i + 1;
    while (j < n && (isLineBreak(value.charCodeAt(j)) || isBlank(value.charCodeAt(j)))) j++;
    let end = j;
    while (end < n && end - j <= LONGEST_NAME && isNameCode(value.charCodeAt(end))) end++;
    const name = value.slice(j, end).toLowerCase();
    if (name === 'http' && isStatusLine(value, end)) return true;
    if (isHeaderName(name)) {
      let k = end;
      while (k < n && isBlank(value.charCodeAt(k))) k++;
      if (value.charCodeAt(k) === 0x3a /* : */) return true;
    }
    i = j;
  }
  return false;
}
