/**
 * Streaming inspection of multipart bodies (multipart/form-data and the other multipart/*
 * types), between the client and the upstream: a Transform whose output is the body exactly
 * as received, released only once what it carries has been inspected.
 *
 * Parsing: delimiters are found by @fastify/busboy's streaming Boyer-Moore-Horspool search
 * (the engine of its Dicer parser, linear in the body); the framing around them is strict.
 * Busboy/Dicer themselves are built to extract what they can and silently skip or cut what
 * they cannot read (a part header line with a bare LF and all lines after it, a header block
 * past its size limit, parts over a count limit, a part without Content-Disposition, transport
 * padding after a delimiter); a parser behind the gateway may read exactly those bytes, so a
 * gate refuses them instead (400 GW_REQUEST_INVALID). Refused as ambiguous:
 * - bytes other than whitespace before the first delimiter or after the closing one;
 * - anything but CRLF or `--` right after a delimiter;
 * - part headers that are not `name: value` lines ending in CRLF (bare CR/LF, NUL, folded
 *   lines), repeat Content-Disposition/Type/Transfer-Encoding, or pass 16 KiB;
 * - in multipart/form-data, a part without `Content-Disposition: form-data; name=...`;
 * - `--boundary` anywhere inside a part (RFC 2046 forbids it; PHP and others cut parts on
 *   `\n--boundary`), so no parser can see a part boundary the gate did not see;
 * - a Content-Transfer-Encoding other than 7bit/8bit/binary (415; RFC 7578 forbids them).
 *
 * Inspection: every part's name, filename (also `filename*`) and other header values; the
 * content of field parts (no filename) and of file parts whose type is text-like (text/*,
 * JSON, XML, ...; a file part without Content-Type is text when its first bytes are); binary
 * file parts are not inspected, as binary uploads never were. Text parts are decoded with
 * their charset and inspected as JSON when they parse as JSON (body-inspection.ts).
 *
 * Limits: text parts together at most `textBytes` (413 past it), at most MAX_PARTS parts
 * (403 input_too_complex, like a JSON body with too many values).
 *
 * Release: bytes are held while a part's headers or a text part are incomplete, and for a
 * small body until its end, so that a body of at most `holdBytes` is decided before any of it
 * reaches the upstream. Past that (large uploads), bytes are released whenever everything
 * before them is inspected (inside a binary file part, between parts) and a later finding
 * aborts the upstream request with the finding's error.
 */
import { createRequire } from 'node:module';
import { Transform, type TransformCallback } from 'node:stream';
import { GatewayError } from '../errors.js';
import { inspectValue, MAX_BODY_NODES, type Finding, type InspectOptions } from './detect/index.js';
import { decodeText, inspectView, looksBinary, SNIFF_BYTES, textView } from './body-inspection.js';
import { TooComplex } from './json-view.js';
import { decodeExtendedValue, isTextLike, parseDisposition, parseMediaType, type MediaType } from './media-type.js';

interface StreamSearch {
  push(chunk: Buffer): number;
  on(event: 'info', listener: (isMatch: boolean, data: Buffer | undefined, start: number, end: number) => void): this;
}
const StreamSearch = createRequire(import.meta.url)('@fastify/busboy/deps/streamsearch/sbmh.js') as new (needle: Buffer) => StreamSearch;

/** Most parts in one body: each is a name and a value, like two JSON nodes. */
export const MAX_PARTS = MAX_BODY_NODES / 2;
/** Largest header block of one part. */
export const MAX_PART_HEADER_BYTES = 16 * 1024;
/** Form fields remembered for the routing model (src/routing/upload-input.ts). */
const MAX_FACT_FIELDS = 64;
const MAX_FACT_FIELD_CHARS = 4096;

const BCHARS = /^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/;

/** The boundary of a multipart Content-Type, or null when it has none or an invalid one (RFC 2046 §5.1.1). */
export function multipartBoundary(media: MediaType): string | null {
  const boundary = media.params.get('boundary')?.value;
  return boundary !== undefined && BCHARS.test(boundary) ? boundary : null;
}

function malformed(message: string): GatewayError {
  return new GatewayError('GW_REQUEST_INVALID', `Malformed multipart body: ${message}`);
}

const CR = 0x0d;
const LF = 0x0a;
const HEADER_END = Buffer.from('\r\n\r\n');
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Whitespace the RFCs allow around and between multipart framing (preamble, epilogue). */
const FRAMING_SPACE = /^[ \t\r\n]*$/;

export interface UploadFacts {
  readonly file?: { readonly name?: string; readonly type?: string };
  readonly fields: Readonly<Record<string, string>>;
}

export interface MultipartOptions {
  readonly boundary: string;
  /** multipart/form-data: every part is a named form field. */
  readonly formData: boolean;
  /** The route's validation options (mode strict or text, field modes). */
  readonly inspection: InspectOptions & { readonly mode: 'strict' | 'text' };
  /** Most bytes of text parts together (413 past it). */
  readonly textBytes: number;
  /** A body up to this size is held whole and decided before anything is released. */
  readonly holdBytes: number;
  /** Turns a finding into the error to fail with (and counts it). */
  readonly reject: (finding: Finding) => GatewayError;
}

type State = 'preamble' | 'delimiter' | 'headers' | 'body' | 'epilogue';

interface Part {
  readonly name: string;
  readonly filename: boolean;
  readonly charset: string | undefined;
  kind: 'text' | 'binary' | 'sniff';
  chunks: Buffer[];
  size: number;
  /** Last bytes of a binary part, to find `--boundary` across segments. */
  tail: Buffer;
}

/** Header lines of one part as `name -> value`; null when any line is not a plain `name: value`. */
function parseHeaderBlock(block: string): Map<string, string> | null {
  const headers = new Map<string, string>();
  if (block === '') return headers;
  for (const line of block.split('\r\n')) {
    // eslint-disable-next-line no-control-regex
    if (/[\r\n\0]/.test(line) || line.startsWith(' ') || line.startsWith('\t')) return null;
    const colon = line.indexOf(':');
    if (colon <= 0) return null;
    const name = line.slice(0, colon);
    if (!HEADER_NAME.test(name)) return null;
    let start = colon + 1;
    let end = line.length;
    while (start < end && (line[start] === ' ' || line[start] === '\t')) start++;
    while (end > start && (line[end - 1] === ' ' || line[end - 1] === '\t')) end--;
    const lower = name.toLowerCase();
    if (headers.has(lower)) {
      if (lower.startsWith('content-')) return null;
      headers.set(lower, `${headers.get(lower)!}, ${line.slice(start, end)}`);
    } else headers.set(lower, line.slice(start, end));
  }
  return headers;
}

/** Header text is read as bytes (latin1); names and file names are UTF-8 in practice. */
function utf8(latin1: string): string {
  // eslint-disable-next-line no-control-regex
  return /[^\x00-\x7f]/.test(latin1) ? Buffer.from(latin1, 'latin1').toString('utf8') : latin1;
}

export class MultipartInspector extends Transform {
  /** Resolves when bytes start flowing out (or the body ended, all inspected); rejects with the first error before that. */
  readonly ready: Promise<void>;
  /** The file and small fields seen so far, for the routing model. */
  readonly facts: { file?: { name?: string; type?: string }; fields: Record<string, string> } = { fields: Object.create(null) as Record<string, string> };

  readonly #options: MultipartOptions;
  readonly #search: StreamSearch;
  readonly #dashBoundary: Buffer;
  #state: State = 'preamble';
  /** Bytes after a delimiter, until CRLF or `--` is seen. */
  #after: Buffer = Buffer.alloc(0);
  #head: Buffer = Buffer.alloc(0);
  #part: Part | undefined;
  #parts = 0;
  #textBytes = 0;
  #held: Buffer[] = [];
  #heldBytes = 0;
  #streaming = false;
  #resolveReady!: () => void;

  constructor(options: MultipartOptions) {
    super();
    this.#options = options;
    this.#dashBoundary = Buffer.from(`--${options.boundary}`, 'latin1');
    this.#search = new StreamSearch(Buffer.from(`\r\n--${options.boundary}`, 'latin1'));
    this.#search.on('info', (isMatch, data, start, end) => {
      if (data !== undefined && start < end) this.#onData(data.subarray(start, end));
      if (isMatch) this.#onDelimiter();
    });
    // As the body starts: a delimiter at offset 0 then matches like every later one.
    this.#search.push(Buffer.from('\r\n'));
    let rejectReady!: (err: Error) => void;
    this.ready = new Promise<void>((resolve, reject) => {
      this.#resolveReady = resolve;
      rejectReady = reject;
    });
    // Before `ready` the error goes to whoever awaits it; after, to the upstream request
    // reading this stream. Listening here keeps an unread error from crashing the process.
    this.on('error', (err) => rejectReady(err));
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#held.push(chunk);
    this.#heldBytes += chunk.length;
    try {
      this.#search.push(chunk);
    } catch (err) {
      callback(err as Error);
      return;
    }
    if (this.#releasable() && (this.#streaming || this.#heldBytes >= this.#options.holdBytes)) this.#release();
    callback();
  }

  override _flush(callback: TransformCallback): void {
    if (this.#state !== 'epilogue') {
      callback(malformed('it ends before its closing delimiter'));
      return;
    }
    this.#release();
    callback();
  }

  /** Everything before the held bytes' end is inspected, or is framing or binary content. */
  #releasable(): boolean {
    return this.#state === 'epilogue' || this.#state === 'delimiter' || (this.#state === 'body' && this.#part?.kind === 'binary');
  }

  #release(): void {
    for (const chunk of this.#held) this.push(chunk);
    this.#held = [];
    this.#heldBytes = 0;
    if (!this.#streaming) {
      this.#streaming = true;
      this.#resolveReady();
    }
  }

  #onData(data: Buffer): void {
    switch (this.#state) {
      case 'preamble':
        if (!FRAMING_SPACE.test(data.toString('latin1'))) throw malformed('text before the first delimiter');
        return;
      case 'epilogue':
        if (!FRAMING_SPACE.test(data.toString('latin1'))) throw malformed('text after the closing delimiter');
        return;
      case 'delimiter': {
        const after = this.#after.length === 0 ? data : Buffer.concat([this.#after, data]);
        if (after.length < 2) {
          this.#after = Buffer.from(after);
          return;
        }
        this.#after = Buffer.alloc(0);
        const rest = after.subarray(2);
        if (after[0] === 0x2d && after[1] === 0x2d) {
          this.#state = 'epilogue';
          if (rest.length > 0) this.#onData(rest);
        } else if (after[0] === CR && after[1] === LF) {
          this.#state = 'headers';
          this.#head = Buffer.alloc(0);
          if (rest.length > 0) this.#onData(rest);
        } else {
          throw malformed('a delimiter is not followed by CRLF');
        }
        return;
      }
      case 'headers': {
        const from = Math.max(0, this.#head.length - 3);
        const head = Buffer.concat([this.#head, data]);
        let bodyAt: number;
        let block: Buffer;
        if (head.length >= 2 && head[0] === CR && head[1] === LF) {
          block = head.subarray(0, 0);
          bodyAt = 2;
        } else {
          const end = head.indexOf(HEADER_END, from);
          if (end < 0) {
            if (head.length > MAX_PART_HEADER_BYTES) throw new GatewayError('GW_REQUEST_HEADERS_TOO_LARGE', `A multipart part's headers may be at most ${MAX_PART_HEADER_BYTES} bytes`);
            this.#head = head;
            return;
          }
          block = head.subarray(0, end);
          bodyAt = end + 4;
        }
        if (bodyAt > MAX_PART_HEADER_BYTES) throw new GatewayError('GW_REQUEST_HEADERS_TOO_LARGE', `A multipart part's headers may be at most ${MAX_PART_HEADER_BYTES} bytes`);
        this.#head = Buffer.alloc(0);
        this.#startPart(block.toString('latin1'));
        this.#state = 'body';
        const rest = head.subarray(bodyAt);
        if (rest.length > 0) this.#onPartData(rest);
        return;
      }
      case 'body':
        this.#onPartData(data);
        return;
    }
  }

  #onDelimiter(): void {
    switch (this.#state) {
      case 'preamble':
        this.#state = 'delimiter';
        return;
      case 'body':
        this.#endPart();
        this.#state = 'delimiter';
        return;
      case 'delimiter':
        throw malformed('a part without headers');
      case 'headers':
        throw malformed("a delimiter inside a part's headers");
      case 'epilogue':
        throw malformed('a delimiter after the closing delimiter');
    }
  }

  #fail(finding: Finding): never {
    throw this.#options.reject(finding);
  }

  #inspectText(value: string, position: 'path' | 'header'): void {
    // Part headers count against the request's inspection budget like every other text.
    const budget = this.#options.inspection.budget;
    if (budget !== undefined && !budget.take(value.length)) this.#fail({ rule: 'input_too_large', location: 'body' });
    const rule = inspectValue(value, this.#options.inspection.mode, position);
    if (rule !== null) this.#fail({ rule, location: 'body' });
  }

  #startPart(block: string): void {
    if (++this.#parts > MAX_PARTS) this.#fail({ rule: 'input_too_complex', location: 'body' });
    const headers = parseHeaderBlock(block);
    if (headers === null) throw malformed('a part header line is not `name: value` ending in CRLF');

    const cte = headers.get('content-transfer-encoding');
    if (cte !== undefined && !/^(?:7bit|8bit|binary)$/i.test(cte)) {
      throw new GatewayError('GW_REQUEST_UNSUPPORTED_MEDIA_TYPE', 'A multipart part may not declare a Content-Transfer-Encoding other than 7bit, 8bit or binary');
    }
    const typeHeader = headers.get('content-type');
    const media = typeHeader === undefined ? null : parseMediaType(typeHeader);
    if (typeHeader !== undefined && media === null) throw malformed("a part's Content-Type is not a media type");

    const dispositionHeader = headers.get('content-disposition');
    const disposition = dispositionHeader === undefined ? null : parseDisposition(dispositionHeader);
    if (dispositionHeader !== undefined && disposition === null) throw malformed("a part's Content-Disposition is malformed");
    if (this.#options.formData && (disposition === null || disposition.type !== 'form-data' || !disposition.params.has('name'))) {
      throw malformed('a form-data part without `Content-Disposition: form-data; name=...`');
    }

    // Every header value but the framing ones, and every disposition parameter, as written and decoded.
    for (const [name, value] of headers) {
      if (name !== 'content-disposition' && name !== 'content-type' && name !== 'content-transfer-encoding') this.#inspectText(utf8(value), 'header');
    }
    let filename: string | undefined;
    let extendedFilename: string | undefined;
    for (const [name, param] of disposition?.params ?? []) {
      if (name === 'name') continue; // inspected as the field's key below
      const decoded = name.endsWith('*') ? (decodeExtendedValue(param.value) ?? '') : utf8(param.value);
      this.#inspectText(utf8(param.raw), name.startsWith('filename') ? 'path' : 'header');
      this.#inspectText(decoded, name.startsWith('filename') ? 'path' : 'header');
      if (name === 'filename') filename = decoded;
      else if (name === 'filename*') extendedFilename = decoded;
    }
    // RFC 6266: filename* wins where both are given.
    filename = extendedFilename ?? filename;
    const nameParam = disposition?.params.get('name');
    const name = nameParam === undefined ? '' : utf8(nameParam.value);
    if (nameParam !== undefined && nameParam.raw !== nameParam.value) this.#inspectName(utf8(nameParam.raw));
    this.#inspectName(name);

    const isFile = disposition?.params.has('filename') === true || disposition?.params.has('filename*') === true;
    let kind: Part['kind'];
    if (media !== null) kind = isTextLike(media.essence) || (!isFile && this.#options.formData) ? 'text' : 'binary';
    else kind = isFile ? 'sniff' : 'text';
    if (isFile && this.facts.file === undefined) {
      this.facts.file = { ...(filename !== undefined ? { name: filename } : {}), ...(typeHeader !== undefined ? { type: typeHeader } : {}) };
    }
    this.#part = { name, filename: isFile, charset: media?.params.get('charset')?.value, kind, chunks: [], size: 0, tail: Buffer.alloc(0) };
  }

  /** A field name is inspected as a JSON key is (the route's mode, whatever the field's own mode). */
  #inspectName(name: string): void {
    const finding = inspectView({ [name]: null }, this.#options.inspection);
    if (finding !== null) this.#fail(finding);
  }

  #onPartData(data: Buffer): void {
    const part = this.#part!;
    if (part.kind === 'binary') {
      this.#scanBinary(part, data);
      return;
    }
    if (part.kind === 'text') {
      this.#textBytes += data.length;
      if (this.#textBytes > this.#options.textBytes) {
        throw new GatewayError('GW_REQUEST_BODY_TOO_LARGE', `The text parts of a multipart body may be at most ${this.#options.textBytes} bytes together`);
      }
    }
    // Copied: the search reuses its lookbehind buffer.
    part.chunks.push(Buffer.from(data));
    part.size += data.length;
    if (part.kind === 'sniff' && part.size >= SNIFF_BYTES) this.#decide(part);
  }

  /** A file part without Content-Type: text when its first bytes are, else binary. */
  #decide(part: Part): void {
    const held = Buffer.concat(part.chunks, part.size);
    if (looksBinary(held)) {
      part.kind = 'binary';
      part.chunks = [];
      part.size = 0;
      this.#scanBinary(part, held);
    } else {
      part.kind = 'text';
      part.chunks = [held];
      this.#textBytes += held.length;
      if (this.#textBytes > this.#options.textBytes) {
        throw new GatewayError('GW_REQUEST_BODY_TOO_LARGE', `The text parts of a multipart body may be at most ${this.#options.textBytes} bytes together`);
      }
    }
  }

  /** Binary content is not inspected, but may not hide a `--boundary` another parser would cut on. */
  #scanBinary(part: Part, data: Buffer): void {
    const needle = this.#dashBoundary;
    const keep = needle.length - 1;
    // An occurrence across the previous segments and this one, then one inside this one.
    if (part.tail.length > 0 && Buffer.concat([part.tail, data.subarray(0, keep)]).indexOf(needle) >= 0) throw malformed('the boundary appears inside a part');
    if (data.indexOf(needle) >= 0) throw malformed('the boundary appears inside a part');
    part.tail = Buffer.from(data.length >= keep ? data.subarray(data.length - keep) : Buffer.concat([part.tail, data]).subarray(-keep));
  }

  #endPart(): void {
    const part = this.#part!;
    this.#part = undefined;
    if (part.kind === 'sniff') this.#decide(part);
    if (part.kind !== 'text') return;
    const bytes = Buffer.concat(part.chunks, part.size);
    if (bytes.indexOf(this.#dashBoundary) >= 0) throw malformed('the boundary appears inside a part');
    const text = decodeText(bytes, part.charset);
    let finding: Finding | null;
    try {
      finding = inspectView({ [part.name]: textView(text).view }, this.#options.inspection);
    } catch (err) {
      if (!(err instanceof TooComplex)) throw err;
      finding = { rule: 'input_too_complex', location: 'body' };
    }
    if (finding !== null) this.#fail(finding);
    if (!part.filename && text.length <= MAX_FACT_FIELD_CHARS && (part.name in this.facts.fields || Object.keys(this.facts.fields).length < MAX_FACT_FIELDS)) {
      this.facts.fields[part.name] = text;
    }
  }
}
