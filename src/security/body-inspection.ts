/**
 * Request bodies as input validation sees them: every format an upstream might parse is
 * turned into the values the upstream would read, and those values go through the same
 * detectors as JSON bodies (src/security/detect). Plain functions; the Fastify hook that
 * reads the body and calls them is validation-plugin.ts, the streaming multipart gate is
 * multipart.ts.
 *
 * Which body is inspected how (the `kind` of its Content-Type):
 * - json (application/json, application/*+json): must parse (400 otherwise); every value is
 *   inspected, every duplicate key's too (json-view.ts).
 * - typeless (no Content-Type, or one that is not a media type): FastAPI reads such a body as
 *   JSON. Its first bytes decide: bytes that cannot be text (NUL and other binary control
 *   bytes, after the encoding rules of a JSON parser: BOMs, UTF-16/32) stream on uninspected
 *   like any binary upload; otherwise the body is read whole (the JSON limit) and inspected as
 *   JSON when it parses as JSON, else as one text value.
 * - text (text/*, XML, YAML, JavaScript, GraphQL, SQL, CSV, NDJSON ...): decoded with its
 *   charset; inspected as JSON when it parses as JSON, else as one text value.
 * - form (application/x-www-form-urlencoded): every field name and value, split on `&` and
 *   also on `;` (python-multipart, behind FastAPI, splits on both); a value that is itself
 *   JSON is inspected as JSON.
 * - multipart (multipart/*): multipart.ts, streamed part by part.
 * - binary (everything else: images, audio, video, application/octet-stream, PDFs,
 *   archives ...): streams to the upstream uninspected, as before.
 * A Content-Encoding (gzip, deflate, br, zstd) is undone for inspection, never past the
 * limit; the upstream receives the bytes as sent.
 */
import type { IncomingMessage } from 'node:http';
import { TextDecoder } from 'node:util';
import { brotliDecompressSync, gunzipSync, inflateSync, zstdDecompressSync } from 'node:zlib';
import { GatewayError } from '../errors.js';
import { inspectRequest, type Finding, type InspectOptions } from './detect/index.js';
import { jsonView, TooComplex } from './json-view.js';
import { isJsonType, isTextLike, parseMediaType, type MediaType } from './media-type.js';

export type BodyKind = 'json' | 'form' | 'multipart' | 'text' | 'typeless' | 'binary';

export interface BodyType {
  readonly kind: BodyKind;
  /** The parsed Content-Type; null for typeless bodies. */
  readonly media: MediaType | null;
}

/** How a body with this Content-Type is inspected (see the file comment). */
export function bodyType(contentType: string | undefined): BodyType {
  if (contentType === undefined || contentType.trim() === '') return { kind: 'typeless', media: null };
  const media = parseMediaType(contentType);
  // Not a media type: frameworks fall back to a default for it, so it gets the typeless rules.
  if (media === null) return { kind: 'typeless', media: null };
  if (isJsonType(media.essence)) return { kind: 'json', media };
  if (media.essence === 'application/x-www-form-urlencoded') return { kind: 'form', media };
  if (media.type === 'multipart') return { kind: 'multipart', media };
  if (isTextLike(media.essence)) return { kind: 'text', media };
  return { kind: 'binary', media };
}

// --- bytes to text ---------------------------------------------------------------------

function unsupported(message: string): GatewayError {
  return new GatewayError('GW_REQUEST_UNSUPPORTED_MEDIA_TYPE', message);
}

/** At most this many stacked Content-Encodings are undone (`gzip, br`); more is refused. */
const MAX_CODINGS = 2;

/**
 * The body with its Content-Encoding undone, at most `limit` bytes (413 past it: a small
 * compressed body may expand a thousandfold). Unknown codings are refused (415).
 */
export function decodeContentEncoding(body: Buffer, header: string | undefined, limit: number): Buffer {
  if (header === undefined) return body;
  const codings = header
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '' && c !== 'identity');
  if (codings.length === 0) return body;
  if (codings.length > MAX_CODINGS) throw unsupported(`At most ${MAX_CODINGS} content codings are accepted on a body the gateway inspects`);
  let out = body;
  for (let i = codings.length - 1; i >= 0; i--) {
    const coding = codings[i]!;
    const options = { maxOutputLength: limit };
    try {
      if (coding === 'gzip' || coding === 'x-gzip') out = gunzipSync(out, options);
      else if (coding === 'deflate') out = inflateSync(out, options);
      else if (coding === 'br') out = brotliDecompressSync(out, options);
      else if (coding === 'zstd') out = zstdDecompressSync(out, options);
      else throw unsupported(`The gateway cannot inspect a body in the ${coding.slice(0, 32)} content coding`);
    } catch (err) {
      if (err instanceof GatewayError) throw err;
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError) {
        throw new GatewayError('GW_REQUEST_BODY_TOO_LARGE', `The decoded body may be at most ${limit} bytes`);
      }
      throw new GatewayError('GW_REQUEST_INVALID', `The body does not decode as ${coding}`);
    }
  }
  return out;
}

type Encoding = 'utf-8' | 'utf-16le' | 'utf-16be' | 'utf-32le' | 'utf-32be';

/** The encoding a byte order mark at the start names, if there is one. */
function bomEncoding(b: Uint8Array): Encoding | undefined {
  const [b0, b1, b2, b3] = [b[0], b[1], b[2], b[3]];
  if (b.length >= 4 && b0 === 0 && b1 === 0 && b2 === 0xfe && b3 === 0xff) return 'utf-32be';
  if (b.length >= 4 && b0 === 0xff && b1 === 0xfe && b2 === 0 && b3 === 0) return 'utf-32le';
  if (b.length >= 2 && b0 === 0xfe && b1 === 0xff) return 'utf-16be';
  if (b.length >= 2 && b0 === 0xff && b1 === 0xfe) return 'utf-16le';
  if (b.length >= 3 && b0 === 0xef && b1 === 0xbb && b2 === 0xbf) return 'utf-8';
  return undefined;
}

/**
 * The encoding a JSON parser reading bytes takes (Python's json.detect_encoding, which
 * FastAPI uses): a BOM, else the pattern of NUL bytes in the first four, else UTF-8.
 */
export function jsonEncoding(b: Uint8Array): Encoding {
  const bom = bomEncoding(b);
  if (bom !== undefined) return bom;
  const [b0, b1, b2, b3] = [b[0], b[1], b[2], b[3]];
  if (b.length >= 4) {
    if (b0 === 0) return b1 !== 0 ? 'utf-16be' : 'utf-32be';
    if (b1 === 0) return b2 !== 0 || b3 !== 0 ? 'utf-16le' : 'utf-32le';
  } else if (b.length === 2) {
    if (b0 === 0) return 'utf-16be';
    if (b1 === 0) return 'utf-16le';
  }
  return 'utf-8';
}

function decodeUtf32(b: Uint8Array, bigEndian: boolean): string {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const parts: string[] = [];
  const codes: number[] = [];
  // A BOM is not part of the text.
  const start = b.length >= 4 && view.getUint32(0, !bigEndian) === 0xfeff ? 4 : 0;
  for (let i = start; i + 3 < b.length; i += 4) {
    const cp = view.getUint32(i, !bigEndian);
    codes.push(cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ? 0xfffd : cp);
    if (codes.length === 8192) parts.push(String.fromCodePoint(...codes.splice(0)));
  }
  if (b.length % 4 !== 0) codes.push(0xfffd);
  parts.push(String.fromCodePoint(...codes));
  return parts.join('');
}

/** Bytes decoded in `encoding` (any WHATWG label, or UTF-32); 415 for one the gateway does not know. */
function decodeAs(body: Uint8Array, encoding: string): string {
  let label = encoding.toLowerCase();
  const bom = bomEncoding(body);
  if (label === 'utf-32' || label === 'utf-32be' || label === 'utf-32le') {
    return decodeUtf32(body, label === 'utf-32be' || (label === 'utf-32' && bom !== 'utf-32le'));
  }
  if (label === 'utf-16') label = bom === 'utf-16be' ? 'utf-16be' : 'utf-16le';
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(label);
  } catch {
    throw unsupported(`The gateway cannot inspect a body in the ${label.slice(0, 40)} character set`);
  }
  return decoder.decode(body);
}

/**
 * A text body as text: in its declared charset (415 when unknown), else in the encoding its
 * BOM names, else UTF-8. Malformed bytes become U+FFFD: what is inspected is never less than
 * what a lenient decoder would read.
 */
export function decodeText(body: Uint8Array, charset: string | undefined): string {
  return decodeAs(body, charset ?? bomEncoding(body) ?? 'utf-8');
}

/** A JSON body as a JSON parser reading bytes decodes it (jsonEncoding; a declared charset plays no part, as in FastAPI). */
export function decodeJsonText(body: Uint8Array): string {
  return decodeAs(body, jsonEncoding(body));
}

/** The charsets in which an urlencoded form's `%XX` escapes mean what they mean in ASCII. */
function isAsciiCompatible(charset: string): boolean {
  try {
    const name = new TextDecoder(charset).encoding;
    return name !== 'utf-16le' && name !== 'utf-16be' && name !== 'iso-2022-jp' && name !== 'replacement';
  } catch {
    return false;
  }
}

/**
 * Control bytes that never occur in text (the WHATWG MIME-sniffing "binary data bytes"):
 * NUL, 0x01-0x08, VT, 0x0E-0x1A, 0x1C-0x1F. Tab, line feed, form feed, carriage return
 * and escape do.
 */
// eslint-disable-next-line no-control-regex
const BINARY_CHAR = /[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f]/;

/** How many first bytes of a typeless body decide whether it is text (WHATWG sniffs 1445). */
export const SNIFF_BYTES = 1445;

/** `prefix` decoded in `encoding`, whole code units only (the last one may be cut). */
function decodePrefix(prefix: Uint8Array, encoding: Encoding): string {
  const unit = encoding.startsWith('utf-32') ? 4 : encoding.startsWith('utf-16') ? 2 : 1;
  return decodeAs(prefix.subarray(0, prefix.length - (prefix.length % unit)), encoding);
}

/**
 * Whether a typeless body is binary (not inspected, as binary uploads): its first
 * SNIFF_BYTES hold a binary control byte read as text (BOM, else UTF-8) and also read as
 * a JSON parser would (UTF-16/32 JSON without a BOM has NULs in UTF-8). Later bytes do not
 * matter: a text start is inspected whole.
 */
export function looksBinary(body: Uint8Array): boolean {
  const prefix = body.subarray(0, SNIFF_BYTES);
  const asText = bomEncoding(prefix) ?? 'utf-8';
  if (!BINARY_CHAR.test(decodePrefix(prefix, asText))) return false;
  const asJson = jsonEncoding(prefix);
  return asJson === asText || BINARY_CHAR.test(decodePrefix(prefix, asJson));
}

// --- what is inspected -----------------------------------------------------------------

function firstNonSpace(text: string): string | undefined {
  const m = /\S/.exec(text.length > 64 ? text.slice(0, 64) : text);
  return m?.[0];
}

/**
 * The inspection view and JSON value of `text` when it is a JSON object, array or string,
 * else undefined. The view is built first: it stops at MAX_BODY_DEPTH (TooComplex) in
 * linear time, where JSON.parse of a megabyte of `[[[[` takes half a second.
 */
function jsonDocument(text: string): { view: unknown; value: unknown } | undefined {
  const first = firstNonSpace(text);
  if (first !== '{' && first !== '[' && first !== '"') return undefined;
  let view: unknown;
  try {
    view = jsonView(text);
  } catch (err) {
    if (err instanceof TooComplex) throw err;
    return undefined; // an unterminated string or a bad escape: not JSON
  }
  try {
    return { view, value: JSON.parse(text) as unknown };
  } catch {
    return undefined;
  }
}

/**
 * What is inspected of a text value (a text body, a form or multipart field): its JSON when
 * it is a JSON object, array or string, else the text itself. A JSON string is inspected both
 * decoded and as written (`"\u0027 OR 1=1"` hides the quote from a text reader only). Text
 * that starts like JSON and nests deeper than MAX_BODY_DEPTH is refused as a JSON body
 * would be (TooComplex).
 */
export function textView(text: string): { view: unknown; json?: { value: unknown } } {
  const json = jsonDocument(text);
  if (json === undefined) return { view: text };
  return { view: typeof json.view === 'string' ? [json.view, text] : json.view, json: { value: json.value } };
}

/** Adds a field to a form view, gathering repeated names in an array (every value inspected). */
function addField(view: Record<string, unknown>, gathered: Set<string>, name: string, value: unknown): void {
  if (!Object.hasOwn(view, name)) view[name] = value;
  else if (gathered.has(name)) (view[name] as unknown[]).push(value);
  else {
    view[name] = [view[name], value];
    gathered.add(name);
  }
}

/**
 * The fields of an urlencoded form as an object (repeated names gathered). Split on `&` as
 * WHATWG does, and each `&`-piece holding a `;` also split on `;` as python-multipart does,
 * so a field is inspected under the name either parser gives it.
 */
export function formView(text: string): Record<string, unknown> {
  const view = Object.create(null) as Record<string, unknown>;
  const gathered = new Set<string>();
  for (const [name, value] of new URLSearchParams(text)) addField(view, gathered, name, textView(value).view);
  if (text.includes(';')) {
    for (const piece of text.split('&')) {
      if (!piece.includes(';')) continue;
      for (const [name, value] of new URLSearchParams(piece.replaceAll(';', '&'))) addField(view, gathered, name, textView(value).view);
    }
  }
  return view;
}

/** The detectors over one body view (a JSON tree, a form object, or a string). */
export function inspectView(view: unknown, options: InspectOptions): Finding | null {
  return inspectRequest({ path: '/', query: '', headers: {}, body: view }, options);
}

const TOO_COMPLEX: Finding = { rule: 'input_too_complex', location: 'body' };

export interface BodyResult {
  /** The first attack found, or null. */
  readonly finding: Finding | null;
  /** The body's JSON value (JSON.parse semantics: the last duplicate key wins), when it has one. */
  readonly json?: { value: unknown };
}

/**
 * Inspect a declared JSON body (bytes as received). Throws 400 when it does not parse,
 * 413/415 when its Content-Encoding cannot be undone within the limit.
 */
export function inspectJsonBody(raw: Buffer, contentEncoding: string | undefined, limit: number, options: InspectOptions | undefined): BodyResult {
  const text = decodeJsonText(decodeContentEncoding(raw, contentEncoding, limit));
  const invalid = () => new GatewayError('GW_REQUEST_INVALID', 'The body is declared as JSON but does not parse');
  // The view first: it refuses deep nesting in linear time, before JSON.parse would build it.
  let view: unknown;
  if (options !== undefined) {
    try {
      view = jsonView(text);
    } catch (err) {
      if (err instanceof TooComplex) return { finding: TOO_COMPLEX };
      throw invalid();
    }
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw invalid();
  }
  return { finding: options === undefined ? null : inspectView(view, options), json: { value } };
}

/**
 * Inspect a buffered body of kind typeless, text or form (bytes as received). The JSON value
 * is returned for typeless bodies that parse (FastAPI reads them as JSON); binary typeless
 * bodies are not inspected.
 */
export function inspectBufferedBody(raw: Buffer, type: BodyType, contentEncoding: string | undefined, limit: number, options: InspectOptions): BodyResult {
  const body = decodeContentEncoding(raw, contentEncoding, limit);
  try {
    if (type.kind === 'form') {
      const charset = type.media?.params.get('charset')?.value;
      if (charset !== undefined && !isAsciiCompatible(charset)) throw unsupported(`The gateway cannot inspect a form in the ${charset.slice(0, 40)} character set`);
      return { finding: inspectView(formView(body.toString('utf8')), options) };
    }
    if (type.kind === 'text') {
      const { view } = textView(decodeText(body, type.media?.params.get('charset')?.value));
      return { finding: inspectView(view, options) };
    }
    // typeless: JSON as FastAPI would decode and parse it; else text, unless it is binary
    const asJson = textView(decodeJsonText(body));
    if (asJson.json !== undefined) return { finding: inspectView(asJson.view, options), json: asJson.json };
    if (looksBinary(body)) return { finding: null };
    return { finding: inspectView(textView(decodeText(body, undefined)).view, options) };
  } catch (err) {
    if (err instanceof TooComplex) return { finding: TOO_COMPLEX };
    throw err;
  }
}

// --- reading the body ------------------------------------------------------------------

/**
 * Read a request body nobody has consumed yet, at most `limit` bytes (413 past it). With
 * `sniff`, the first SNIFF_BYTES decide: when sniff says the body is binary, the bytes read
 * are put back in front of the stream (it then streams on as it came) and the result is null.
 */
export function readBody(raw: IncomingMessage, limit: number, sniff?: (prefix: Buffer) => boolean): Promise<{ body: Buffer; binary: boolean } | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let decided = sniff === undefined;
    let settled = false;
    const finish = (err: Error | null, value?: { body: Buffer; binary: boolean } | null) => {
      if (settled) return;
      settled = true;
      raw.off('readable', onReadable);
      raw.off('end', onEnd);
      raw.off('error', onError);
      raw.off('close', onClose);
      if (err !== null) reject(err);
      else resolve(value ?? null);
    };
    const onReadable = () => {
      let chunk: Buffer | null;
      while (!settled && (chunk = raw.read() as Buffer | null) !== null) {
        size += chunk.length;
        chunks.push(chunk);
        // The sniff comes before the limit: a binary body streams on, whatever its size.
        if (!decided && size >= SNIFF_BYTES) {
          decided = true;
          const prefix = Buffer.concat(chunks, size);
          if (sniff!(prefix)) {
            // Back in front, in the same tick as the read: nothing of the body was lost.
            raw.unshift(prefix);
            finish(null, null);
            return;
          }
          chunks.length = 0;
          chunks.push(prefix);
        }
        if (size > limit) {
          finish(new GatewayError('GW_REQUEST_BODY_TOO_LARGE', `A body the gateway inspects may be at most ${limit} bytes`));
          // Let the rest drain (and be dropped) so the 413 can be answered on this connection.
          raw.resume();
          return;
        }
      }
    };
    const onEnd = () => {
      const body = Buffer.concat(chunks, size);
      finish(null, { body, binary: !decided && sniff!(body) });
    };
    const onError = () => finish(new GatewayError('GW_REQUEST_ABORTED'));
    const onClose = () => {
      if (!raw.complete) finish(new GatewayError('GW_REQUEST_ABORTED'));
    };
    if (raw.readableEnded) {
      resolve({ body: Buffer.alloc(0), binary: false });
      return;
    }
    raw.on('readable', onReadable);
    raw.on('end', onEnd);
    raw.on('error', onError);
    raw.on('close', onClose);
  });
}
