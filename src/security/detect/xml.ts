/**
 * XML entities (XXE, entity expansion): an XML document whose document type declaration loads an
 * external DTD (`<!DOCTYPE r SYSTEM "http://evil.example/x.dtd">`) or declares entities
 * (`<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>`, the nested entities of a "billion
 * laughs"), or XInclude (`<xi:include href="...">`). A backend's XML parser that resolves them reads local files, calls URLs from inside
 * the network, or expands a few hundred bytes into gigabytes. API payloads have no use for a DTD
 * (SOAP forbids one), so any of these in a document is refused.
 *
 * Only values that are XML documents count (their first non-blank character is `<`): an XML
 * body, or a field or parameter holding one. A sentence that mentions `<!ENTITY` is prose.
 * Matching is ASCII case-insensitive: some parsers accept `<!doctype`.
 *
 * Why by hand: a lower-cased copy searched once for each marker, linear; a pattern spanning from
 * `<!DOCTYPE` to its `>` would backtrack on unclosed declarations.
 */
import { skipSpaces } from './scan.js';

/** External identifiers of a DTD or an entity: `SYSTEM "uri"`, `PUBLIC "id" "uri"`. */
const EXTERNAL_ID = /\b(?:system|public)\s*["']/;
/**
 * The quoted literals of a declaration. Linear: a literal ends at the first quote of its kind,
 * so at most one opening quote of each kind is left unmatched, and only it is scanned to the end.
 */
const LITERAL = /"[^"]*"|'[^']*'/g;
/** The W3C's own DTDs (XHTML, SVG 1.1, MathML): a document that names one is a web page, not an attack. */
const W3C_DTD = /^https?:\/\/www\.w3\.org\//;
/** XInclude pulls a file or URL into the document as entities do (`<xi:include href="file:///etc/passwd"/>`). */
const XINCLUDE_NAMESPACE = 'www.w3.org/2001/xinclude';

/** True when the XML document `value` has a DTD that declares entities or loads an external DTD. */
export function detectXmlEntities(value: string): boolean {
  const start = skipSpaces(value, value.charCodeAt(0) === 0xfeff ? 1 : 0);
  if (value.charCodeAt(start) !== 0x3c /* < */) return false;
  const lower = value.toLowerCase();
  // An entity declaration anywhere: in the internal subset, or out of place (a parser may still read it).
  if (lower.includes('<!entity', start) || lower.includes(XINCLUDE_NAMESPACE, start)) return true;
  const doctype = lower.indexOf('<!doctype', start);
  if (doctype === -1) return false;
  // The declaration's head, up to its internal subset or its end: an external ID there loads a DTD
  // from its URI (`SYSTEM "uri"`, `PUBLIC "id" "uri"`; a public ID alone loads nothing), unless
  // the DTD is one of the W3C's.
  let headEnd = doctype;
  while (headEnd < lower.length && lower[headEnd] !== '[' && lower[headEnd] !== '>') headEnd++;
  const head = lower.slice(doctype, headEnd);
  const external = EXTERNAL_ID.exec(head);
  if (external === null) return false;
  const literals = head.slice(external.index).match(LITERAL) ?? [];
  const uri = external[0].startsWith('system') ? literals[0] : literals[1];
  return uri !== undefined && !W3C_DTD.test(uri.slice(1, -1));
}
