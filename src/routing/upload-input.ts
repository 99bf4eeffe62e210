import type { IncomingMessage } from 'node:http';
import { setImmediate as nextMacrotask } from 'node:timers/promises';
import { Busboy } from '@fastify/busboy';
import contentDisposition from 'content-disposition';

/*
 * What the routing model can know about an upload without holding its body: the file's name
 * and media type and the short text fields of the form. When input validation inspects a
 * multipart body it hands over what it parsed (request.multipartFacts, src/security/
 * multipart.ts); otherwise the first bytes of the body (at most `maxBytes`, waiting at most
 * `timeoutMs`) are read, parsed with @fastify/busboy, and put back in front of the stream
 * (`unshift`), so the body still streams to the upstream unchanged. Raw uploads give the name
 * in Content-Disposition (parsed with `content-disposition`), X-File-Name or ?filename=, and
 * the type in Content-Type.
 */

export interface UploadFacts {
  readonly file?: { readonly name?: string; readonly type?: string };
  /** Small form fields (e.g. message, service), UTF-8. */
  readonly fields: Readonly<Record<string, string>>;
}

const MAX_FIELD_CHARS = 4096;
/** Bounds on what busboy parses of a prefix (it holds at most a few KiB anyway). */
const PREFIX_LIMITS = { fieldSize: 4 * MAX_FIELD_CHARS, parts: 64, headerPairs: 32 };

/** A multipart/form-data Content-Type (its boundary is busboy's to read). */
export function isMultipartFormData(contentType: string): boolean {
  return /^\s*multipart\/form-data\b/i.test(contentType);
}

/**
 * The file and fields found in the first bytes of a multipart/form-data body: the first file
 * part's name and type (its headers are enough), and the fields named in `fieldNames` whose
 * part ended within the prefix (a field cut by the prefix's end is left out).
 */
export async function parseMultipartPrefix(prefix: Buffer, contentType: string, fieldNames: ReadonlySet<string>): Promise<UploadFacts> {
  const fields: Record<string, string> = {};
  let file: UploadFacts['file'];
  let parser;
  try {
    parser = Busboy({ headers: { 'content-type': contentType }, limits: PREFIX_LIMITS });
  } catch {
    return { fields }; // no usable boundary
  }
  let cut = false;
  parser.on('file', (_name, stream, filename, _encoding, mimeType) => {
    stream.on('error', ignore); // the prefix ends inside it
    stream.resume();
    if (file === undefined) file = { ...(filename ? { name: filename } : {}), ...(mimeType ? { type: mimeType } : {}) };
  });
  parser.on('field', (name, value, _nameTruncated, valueTruncated) => {
    // Busboy ends the part the prefix cuts, after saying the body ended early: not a whole value.
    if (cut || valueTruncated || !fieldNames.has(name) || value.length > MAX_FIELD_CHARS) return;
    fields[name] = value;
  });
  const done = new Promise<void>((resolve) => {
    parser.on('finish', resolve);
    parser.on('error', () => {
      cut = true;
      resolve();
    });
  });
  parser.write(prefix);
  // Let the parts that ended within the prefix report before the end of input is declared.
  await nextMacrotask();
  parser.end();
  await done;
  // The parts cut by the end report on the next ticks, and are ignored.
  return { ...(file !== undefined ? { file } : {}), fields };
}

function ignore(): void {}

/** The file name of a Content-Disposition value (RFC 6266; `filename*` wins); undefined when there is none or it does not parse. */
export function dispositionFileName(value: string): string | undefined {
  let name: string | undefined;
  try {
    name = contentDisposition.parse(value).parameters.filename;
  } catch {
    return undefined;
  }
  if (name === undefined) return undefined;
  // Header values reach Node as latin1: a plain filename sent as UTF-8 bytes is decoded as such.
  const bytes = Buffer.from(name, 'latin1');
  try {
    return /[\x80-\xff]/.test(name) ? new TextDecoder('utf-8', { fatal: true }).decode(bytes) : name;
  } catch {
    return name;
  }
}

/**
 * Read up to `maxBytes` of a request body that nobody has consumed yet, then put them back.
 * Resolves with what was read (possibly less: the body ended, or `timeoutMs` passed).
 */
export function peekBody(raw: IncomingMessage, maxBytes: number, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      raw.off('readable', pull);
      raw.off('error', finish);
      raw.off('close', finish);
      const buf = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      // Back in front of the stream, in the same tick as the last read: 'end' has not been
      // emitted (read(n) with an explicit n never schedules it), so the consumer sees it all.
      if (buf.length > 0 && !raw.destroyed) raw.unshift(buf);
      resolve(buf);
    };
    const pull = () => {
      if (done) return;
      while (size < maxBytes && raw.readableLength > 0) {
        const chunk = raw.read(raw.readableLength) as Buffer | null;
        if (chunk === null) break;
        chunks.push(chunk);
        size += chunk.length;
      }
      if (size >= maxBytes || (raw.complete && raw.readableLength === 0)) finish();
    };
    const timer = setTimeout(finish, timeoutMs);
    raw.on('error', finish);
    raw.on('close', finish);
    if (raw.readableEnded || raw.destroyed) {
      finish();
      return;
    }
    raw.on('readable', pull);
    pull();
  });
}

/** File facts of a raw (non-multipart) upload from its headers and query string. */
export function rawUploadFacts(headers: IncomingMessage['headers'], url: string): UploadFacts {
  const disposition = headers['content-disposition'];
  let name = disposition ? dispositionFileName(disposition) : undefined;
  const xName = headers['x-file-name'];
  if (name === undefined && typeof xName === 'string' && xName.length > 0) {
    try {
      name = decodeURIComponent(xName);
    } catch {
      name = xName;
    }
  }
  if (name === undefined) {
    const q = url.indexOf('?');
    if (q >= 0) {
      const params = new URLSearchParams(url.slice(q + 1));
      name = params.get('filename') ?? params.get('name') ?? undefined;
    }
  }
  const type = headers['content-type'];
  if (name === undefined && type === undefined) return { fields: {} };
  return { file: { ...(name !== undefined ? { name } : {}), ...(type !== undefined ? { type } : {}) }, fields: {} };
}
