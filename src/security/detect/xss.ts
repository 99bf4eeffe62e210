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
 * - template injection: `{{ ... }}` reaching `constructor` or calling functions, `${ ...( ) }`.
 *
 * What passes: `<` not followed by a letter ("I <3 this", "a < b and c > d"), harmless tags
 * ("<b>", "<br>", "<div>", "Promise<void>", "<https://...>"), "JavaScript: The Good Parts",
 * markdown, math.
 */
import { markupDecode } from './decode.js';

/** Elements that execute script or embed active content; `<` must be followed directly by the name. */
const DANGEROUS_TAG =
  /<(?:script|iframe|frame|frameset|object|embed|applet|base|link|meta|style|svg|math|form|isindex|template|portal|noscript|xml|bgsound|layer|ilayer|marquee|keygen)(?=[\s/>]|$)/i;
/** Closing a raw-text element: the way out of `<script>`, `<textarea>`, `<title>` and friends. */
const RAWTEXT_CLOSE = /<\/(?:script|title|textarea|style|noscript|xmp|iframe|noembed|noframes|plaintext|template)(?=[\s/>]|$)/i;
/** A tag with an `on...=` attribute. */
const TAG_WITH_HANDLER = /<[a-z][^<>]*?[\s/"'`]on[a-z]{3,}\s*=/i;
/** Breaking out of a quoted attribute into a new handler attribute: `" onfocus=`. */
const ATTRIBUTE_BREAKOUT = /["'`](?:[^"'`<>]*?[\s/])?on[a-z]{3,}\s*=/i;
/** Well-known handler names assigned anywhere (unquoted attribute context). */
const KNOWN_HANDLER =
  /\bon(?:error|load|click|dblclick|auxclick|contextmenu|mouse(?:over|out|enter|leave|down|up|move|wheel)|focus(?:in|out)?|blur|toggle|begin|pageshow|pagehide|hashchange|popstate|beforeunload|unload|animation(?:start|end|iteration)|transition(?:start|end|run|cancel)|pointer(?:over|enter|down|up|move|out|leave|rawupdate)|key(?:down|up|press)|input|change|submit|reset|resize|scroll(?:end)?|wheel|drag(?:start|end|enter|leave|over)?|drop|copy|paste|cut|invalid|readystatechange|touch(?:start|end|move)|play(?:ing)?|canplay(?:through)?|loadstart|loadeddata|loadedmetadata|timeupdate|volumechange|afterscriptexecute|beforescriptexecute|message)\s*=\s*[^\s=]/i;

/** Tabs, newlines and NULs are dropped from URL schemes by browsers: `java\tscript:` works. */
const SCHEME_GAP = '[\\t\\n\\r\\0]*';
function schemePattern(scheme: string): string {
  return scheme.split('').join(SCHEME_GAP) + SCHEME_GAP + ':';
}
/**
 * A script URL whose body is code: a call/template/assignment, a comment, a bracket or quote,
 * `void`, or a property access — not prose such as "JavaScript: The Good Parts".
 */
const SCRIPT_URL = new RegExp(
  `(?<![a-z0-9])(?:${schemePattern('javascript')}|${schemePattern('vbscript')}|${schemePattern('livescript')})` +
    String.raw`\s*(?:[a-z_$][\w$]*\s*(?:[(\x60=[]|\.[a-z_$])|\/[/*]|[([!+\-'"\x60~{;]|void\b)`,
  'i',
);
const DATA_URL = /\bdata:\s*(?:text\/html|text\/xml|image\/svg\+xml|application\/(?:xhtml\+xml|xml|x-shockwave-flash))/i;
const CSS_ACTIVE = /[:=]\s*["']?\s*expression\s*\(|\bbehavior\s*:\s*url\s*\(|-moz-binding\s*:/i;
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

/** Characters without which none of the rules can match (after decoding). */
const QUICK = /[<>:=&%\\{+]/;

export function detectXss(value: string): boolean {
  if (!QUICK.test(value)) return false;
  const s = markupDecode(value);
  if (s.includes('<')) {
    if (DANGEROUS_TAG.test(s) || RAWTEXT_CLOSE.test(s) || TAG_WITH_HANDLER.test(s)) return true;
  }
  if (s.includes('=')) {
    if (ATTRIBUTE_BREAKOUT.test(s) || KNOWN_HANDLER.test(s) || SRCDOC.test(s)) return true;
  }
  if (s.includes(':')) {
    if (SCRIPT_URL.test(s) || DATA_URL.test(s) || CSS_ACTIVE.test(s)) return true;
  }
  if (templateSpan(s, '{{', '}}', TEMPLATE_BODY) || templateSpan(s, '${', '}', TEMPLATE_LITERAL_BODY)) return true;
  return false;
}
