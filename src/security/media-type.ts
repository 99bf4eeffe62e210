/**
 * Strict parsing of `Content-Type` and `Content-Disposition` values (RFC 9110 §5.6.6
 * parameters, RFC 6266 dispositions). A gate must read these the way every parser behind it
 * would, so anything a lenient parser could read two ways (a repeated parameter, text after
 * a closing quote, an unterminated quote, control characters) is refused (null) rather than
 * guessed at.
 */

const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
/** `; name=value` with the value a token or a quoted-string (obs-text allowed, no CTLs but HTAB). */
const PARAMETER = new RegExp(`[ \\t]*;[ \\t]*(${TOKEN})=(?:(${TOKEN})|"((?:[^"\\\\\\x00-\\x08\\x0a-\\x1f\\x7f]|\\\\[\\t\\x20-\\x7e\\x80-\\xff])*)")`, 'y');
const TRAILER = /[ \t]*;?[ \t]*$/y;
const MEDIA_TYPE = new RegExp(`^[ \\t]*(${TOKEN})/(${TOKEN})`);
const DISPOSITION_TYPE = new RegExp(`^[ \\t]*(${TOKEN})`);

export interface Parameter {
  /** The value with quoted-pair escapes undone. */
  readonly value: string;
  /** The value exactly as written between the quotes (differs from `value` only when it has `\` escapes). */
  readonly raw: string;
}

/** Parameters by lower-case name; null when the list is malformed or names one parameter twice. */
export function parseParameters(text: string, from: number): Map<string, Parameter> | null {
  const params = new Map<string, Parameter>();
  let at = from;
  for (;;) {
    PARAMETER.lastIndex = at;
    const m = PARAMETER.exec(text);
    if (m === null) break;
    const name = m[1]!.toLowerCase();
    if (params.has(name)) return null;
    const raw = m[2] ?? m[3]!;
    params.set(name, { raw, value: m[3] === undefined ? raw : raw.replace(/\\(.)/g, '$1') });
    at = PARAMETER.lastIndex;
  }
  TRAILER.lastIndex = at;
  return TRAILER.test(text) ? params : null;
}

export interface MediaType {
  /** `type/subtype`, lower case. */
  readonly essence: string;
  readonly type: string;
  readonly subtype: string;
  readonly params: ReadonlyMap<string, Parameter>;
}

/** A Content-Type value, or null when it is not one (missing `/`, bad parameters). */
export function parseMediaType(value: string): MediaType | null {
  const parsed = headAndParameters(MEDIA_TYPE, value);
  if (parsed === null) return null;
  const type = parsed.head[1]!.toLowerCase();
  const subtype = parsed.head[2]!.toLowerCase();
  return { essence: `${type}/${subtype}`, type, subtype, params: parsed.params };
}

/** The leading part `pattern` matches, then a strict parameter list to the end; null when either fails. */
function headAndParameters(pattern: RegExp, value: string): { head: RegExpExecArray; params: Map<string, Parameter> } | null {
  const head = pattern.exec(value);
  if (head === null) return null;
  const params = parseParameters(value, head[0].length);
  return params === null ? null : { head, params };
}

export interface Disposition {
  /** `form-data`, `attachment`, ... lower case. */
  readonly type: string;
  readonly params: ReadonlyMap<string, Parameter>;
}

/** A Content-Disposition value, or null when it is malformed. */
export function parseDisposition(value: string): Disposition | null {
  const parsed = headAndParameters(DISPOSITION_TYPE, value);
  return parsed === null ? null : { type: parsed.head[1]!.toLowerCase(), params: parsed.params };
}

/** An RFC 8187 extended value (`UTF-8''na%C3%AFve.txt`) decoded; null when malformed or in another charset than UTF-8 / ISO-8859-1. */
export function decodeExtendedValue(value: string): string | null {
  const m = /^([A-Za-z0-9!#$%&+^_`{}~-]+)'[A-Za-z0-9-]*'(.*)$/.exec(value);
  if (m === null) return null;
  const charset = m[1]!.toLowerCase();
  const bytes: number[] = [];
  const text = m[2]!;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x25) {
      const hex = text.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return null;
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else if (c > 0x7e || c < 0x21) return null;
    else bytes.push(c);
  }
  const buf = Buffer.from(bytes);
  if (charset === 'utf-8') return buf.toString('utf8');
  if (charset === 'iso-8859-1') return buf.toString('latin1');
  return null;
}

/** application/json and application/<anything>+json (the types FastAPI reads as JSON). */
export function isJsonType(essence: string): boolean {
  return essence === 'application/json' || (essence.startsWith('application/') && essence.endsWith('+json'));
}

/** Non-text application types whose bodies are nevertheless text an upstream may parse. */
const TEXT_APPLICATION = new Set([
  'application/xml',
  'application/x-www-form-urlencoded',
  'application/javascript',
  'application/ecmascript',
  'application/x-javascript',
  'application/yaml',
  'application/x-yaml',
  'application/toml',
  'application/graphql',
  'application/sql',
  'application/x-sh',
  'application/x-httpd-php',
  'application/x-ndjson',
  'application/ndjson',
  'application/jsonl',
  'application/x-jsonlines',
  'application/json-seq',
  'application/csv',
  'application/x-csv',
  'application/soap+xml',
  'message/http',
  'application/http',
]);

/**
 * Media types whose bodies are text an upstream may parse: text/*, JSON, XML and the
 * scripting, query and data formats above. Everything else (images, audio, video, fonts,
 * application/octet-stream, PDFs, archives, office documents, protobuf, ...) is binary.
 */
export function isTextLike(essence: string): boolean {
  return essence.startsWith('text/') || isJsonType(essence) || essence.endsWith('+xml') || TEXT_APPLICATION.has(essence);
}
