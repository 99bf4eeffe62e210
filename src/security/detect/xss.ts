/**
 * Cross-site scripting, detected from HTML/URL syntax rather than from words.
 *
 * Written by hand: there is no maintained JavaScript port of libinjection's HTML5 tokenizer on
 * npm (and native bindings would tie the gateway to a compiler toolchain), so this module checks
 * the handful of syntactic shapes script injection needs, after undoing the encodings a
 * browser-side sink would undo (percent, HTML entities, JS escapes, UTF-7; see decode.ts):
 *
 * - an opening tag of an element that runs script or loads active content (`<script`, `<iframe`,
 *   `<svg`, `<object`, `<style`, ...), or a closing tag that ends a raw-text context
 *   (`</script>`, `</textarea>`, `</title>`) — the classic breakouts;
 * - any tag carrying an event-handler attribute (`<img src=x onerror=...>`), an attribute
 *   breakout (`" onmouseover="...`), or a well-known handler assignment anywhere;
 * - `javascript:` / `vbscript:` URLs (also with tabs/newlines/entities inside the scheme) whose
 *   body is code, `data:` URLs with HTML or SVG, CSS `expression(` / `behavior:` / `-moz-binding`,
 *   `srcdoc=`;
 * - template injection: `{{ ... }}` reaching `constructor` or calling functions, `${ ...( ) }`;
 * - a breakout from a JavaScript string into a call that runs or leaks script: `';alert(1)//`.
 *
 * What passes: `<` not followed by a letter ("I <3 this", "a < b and c > d"), harmless tags
 * ("<b>", "<br>", "<div>", "Promise<void>", "<https://...>"), "JavaScript: The Good Parts",
 * markdown, math.
 *
 * Linear time: every pattern here either starts on a rare anchor (`<`, a quote, `on...`,
 * `expression`, a scheme name) and scans a region that ends at the next anchor, or is replaced
 * by a hand check around the anchor (no two unbounded quantifiers that can share characters).
 */
import { markupDecode } from './decode.js';
import { isSpaceCode, skipSpaces, skipSpacesBack } from './scan.js';

/** Elements that execute script or embed active content; `<` must be followed directly by the name. */
const DANGEROUS_TAG =
  /<(?:script|iframe|frame|frameset|object|embed|applet|base|link|meta|style|svg|math|form|isindex|template|portal|noscript|xml|bgsound|layer|ilayer|marquee|keygen)(?=[\s/>]|$)/i;
/** Closing a raw-text element: the way out of `<script>`, `<textarea>`, `<title>` and friends. */
const RAWTEXT_CLOSE = /<\/(?:script|title|textarea|style|noscript|xmp|iframe|noembed|noframes|plaintext|template)(?=[\s/>]|$)/i;
/** A tag with an `on...=` attribute (the lazy scan stops at the next `<` or `>`). */
const TAG_WITH_HANDLER = /<[a-z][^<>]*?[\s/"'`]on[a-z]{3,}\s*=/i;
/** Breaking out of a quoted attribute into a new handler attribute: `" onfocus=` (the scan stops at the next quote). */
const ATTRIBUTE_BREAKOUT = /["'`](?:[^"'`<>]*?[\s/])?on[a-z]{3,}\s*=/i;
/**
 * Well-known handler names assigned anywhere (unquoted attribute context): `onerror=` followed by
 * something other than `=`. The regex stops at the `=`; handlerValue() checks what follows.
 */
const KNOWN_HANDLER =
  /\bon(?:error|load|click|dblclick|auxclick|contextmenu|mouse(?:over|out|enter|leave|down|up|move|wheel)|focus(?:in|out)?|blur|toggle|begin|pageshow|pagehide|hashchange|popstate|beforeunload|unload|animation(?:start|end|iteration)|transition(?:start|end|run|cancel)|pointer(?:over|enter|down|up|move|out|leave|rawupdate)|key(?:down|up|press)|input|change|submit|reset|resize|scroll(?:end)?|wheel|drag(?:start|end|enter|leave|over)?|drop|copy|paste|cut|invalid|readystatechange|touch(?:start|end|move)|play(?:ing)?|canplay(?:through)?|loadstart|loadeddata|loadedmetadata|timeupdate|volumechange|afterscriptexecute|beforescriptexecute|message)\s*=/gi;

/** Tabs, newlines and NULs are dropped from URL schemes by browsers: `java\tscript:` works. */
const SCHEME_GAP = '[\\t\\n\\r\\0]*';
function schemePattern(scheme: string): string {
  return scheme.split('').join(SCHEME_GAP) + SCHEME_GAP + ':';
}
/** A script URL scheme; scriptBody() decides whether what follows is code. */
const SCRIPT_SCHEME = new RegExp(
  `(?<![a-z0-9])(?:${schemePattern('javascript')}|${schemePattern('vbscript')}|${schemePattern('livescript')})`,
  'gi',
);
const DATA_URL = /\bdata:\s*(?:text\/html|text\/xml|image\/svg\+xml|application\/(?:xhtml\+xml|xml|x-shockwave-flash))/i;
/** CSS `expression(`: the regex finds the call, cssExpression() checks for the `:` or `=` before it. */
const CSS_EXPRESSION = /expression\s*\(/gi;
/** IE `behavior: url(`: the regex finds `behavior:`, cssBehavior() checks for the `url(` after it. */
const CSS_BEHAVIOR = /\bbehavior\s*:/gi;
const MOZ_BINDING = /-moz-binding\s*:/i;
const SRCDOC = /\bsrcdoc\s*=/i;
/** Inside `{{ }}` (AngularJS/Vue templates): reaching the Function constructor, or calling something. */
const TEMPLATE_BODY = /constructor|\$eval|\$on\b|[a-z_$)\]]\s*\(/i;
/** Inside `${ }` (template literals, server-side templates): a call. */
const TEMPLATE_LITERAL_BODY = /[a-z_$]\s*\(/i;

/** Each `open ... close` span checked with `body`; linear (indexOf), whatever the input. */
function templateSpan(s: string, open: string, close: string, body: RegExp): boolean {
  for (let i = s.indexOf(open); i !== -1; ) {
    const end = s.indexOf(close, i + open.length);
    if (end === -1) return false;
    if (body.test(s.slice(i + open.length, end))) return true;
    i = s.indexOf(open, end + close.length);
  }
  return false;
}

/** `re` (global) matches somewhere and `accept(s, index, end)` holds for one of its matches. */
function anyMatch(re: RegExp, s: string, accept: (s: string, index: number, end: number) => boolean): boolean {
  re.lastIndex = 0;
  for (let m = re.exec(s); m !== null; m = re.exec(s)) {
    if (accept(s, m.index, m.index + m[0].length)) return true;
  }
  return false;
}

/** After `onerror=`: optional whitespace, then anything but another `=` (`onerror == x` is a comparison). */
function handlerValue(s: string, _index: number, end: number): boolean {
  const j = skipSpaces(s, end);
  return j < s.length && s.charCodeAt(j) !== 61;
}

const IDENT_START = /[a-z_$]/i;
const IDENT_PART = /[\w$]/;
/**
 * The body of a script URL is code: a call, template, assignment, index or property access on an
 * identifier, a comment, a bracket, quote or operator, or `void` — not prose such as
 * "JavaScript: The Good Parts". Looks at one identifier after the scheme, nothing more.
 */
function scriptBody(s: string, _index: number, end: number): boolean {
  const j = skipSpaces(s, end);
  if (j >= s.length) return false;
  const c = s.charAt(j);
  if ('([!+-\'"`~{;'.includes(c)) return true;
  if (c === '/') return s.charAt(j + 1) === '/' || s.charAt(j + 1) === '*';
  if (!IDENT_START.test(c)) return false;
  let k = j + 1;
  while (k < s.length && IDENT_PART.test(s.charAt(k))) k++;
  if (k - j === 4 && s.slice(j, k).toLowerCase() === 'void') return true;
  const after = skipSpaces(s, k);
  const next = s.charAt(after);
  if (next !== '' && '(`=['.includes(next)) return true;
  return next === '.' && IDENT_START.test(s.charAt(after + 1));
}

/** Before `expression(`: optional whitespace, an optional quote and whitespace, then `:` or `=`. */
function cssExpression(s: string, index: number): boolean {
  let k = skipSpacesBack(s, index);
  const quote = s.charAt(k - 1);
  if (quote === '"' || quote === "'") k = skipSpacesBack(s, k - 1);
  const c = s.charAt(k - 1);
  return c === ':' || c === '=';
}

/** After `behavior:`: optional whitespace, `url`, optional whitespace, `(`. */
function cssBehavior(s: string, _index: number, end: number): boolean {
  const j = skipSpaces(s, end);
  if (s.slice(j, j + 3).toLowerCase() !== 'url') return false;
  return s.charAt(skipSpaces(s, j + 3)) === '(';
}

/**
 * A call that runs or leaks script, written to break out of a JavaScript string: a quote, then
 * operators or `;` (`';alert(1)//`, `'-alert(1)-'`, `"+eval(x)+"`, `');top.fetch(u)//`).
 * The regex finds the call; jsStringBreakout() checks what comes before it.
 */
const JS_SINK_CALL =
  /\b(?:(?:window|top|self|parent|this|globalThis|document)\.)?(?:alert|prompt|confirm|eval|print|fetch|setTimeout|setInterval|Function|atob|import|open|write|writeln|String\.fromCharCode)\(/g;
/** Between the quote and the call: whitespace and operators, at least one operator. */
const BREAKOUT_OPERATORS = ';+-*/|&,)}{!~^%<>=?:';

function jsStringBreakout(s: string, index: number): boolean {
  let k = index;
  let operators = 0;
  for (; k > 0; k--) {
    const c = s.charAt(k - 1);
    if (BREAKOUT_OPERATORS.includes(c)) operators++;
    else if (!isSpaceCode(c.charCodeAt(0))) break;
  }
  const quote = s.charAt(k - 1);
  return operators > 0 && (quote === "'" || quote === '"' || quote === '`');
}

/** Characters without which none of the rules can match (after decoding). */
const QUICK = /[<>:=&%\\{+'"`]/;

/** `decoded`, when given, is `percentDecode(value)` (see decode.ts), not computed again. */
export function detectXss(value: string, decoded?: string): boolean {
  if (!QUICK.test(value)) return false;
  const s = markupDecode(value, decoded);
  if (s.includes('<')) {
    if (DANGEROUS_TAG.test(s) || RAWTEXT_CLOSE.test(s) || TAG_WITH_HANDLER.test(s)) return true;
  }
  const colon = s.includes(':');
  if (s.includes('=')) {
    if (ATTRIBUTE_BREAKOUT.test(s) || anyMatch(KNOWN_HANDLER, s, handlerValue) || SRCDOC.test(s)) return true;
  }
  if (colon || s.includes('=')) {
    if (anyMatch(CSS_EXPRESSION, s, cssExpression)) return true;
  }
  if (colon) {
    if (anyMatch(SCRIPT_SCHEME, s, scriptBody) || DATA_URL.test(s)) return true;
    if (anyMatch(CSS_BEHAVIOR, s, cssBehavior) || MOZ_BINDING.test(s)) return true;
  }
  if (templateSpan(s, '{{', '}}', TEMPLATE_BODY) || templateSpan(s, '${', '}', TEMPLATE_LITERAL_BODY)) return true;
  if (s.includes('(') && anyMatch(JS_SINK_CALL, s, jsStringBreakout)) return true;
  return false;
}
