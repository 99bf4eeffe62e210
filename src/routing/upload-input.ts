import type { IncomingMessage } from 'node:http';

/*
 * What the routing model can know about an upload without holding its body: the file's name
 * and media type and the short text fields of the form. For multipart/form-data the first
 * bytes of the body (at most `maxBytes`, waiting at most `timeoutMs`) are read, parsed for
 * part headers and small fields, and put back in front of the stream (`unshift`), so the body
 * still streams to the upstream unchanged. Raw uploads give the name in Content-Disposition,
 * X-File-Name or ?filename=, and the type in Content-Type.
 */

export interface UploadFacts {
  readonly file?: { readonly name?: string; readonly type?: string };
  /** Small form fields (e.g. message, service), UTF-8. */
  readonly fields: Readonly<Record<string, string>>;
}

const MAX_FIELD_CHARS = 4096;

/** Parameters of a header value like `form-data; name="a"; filename="b.pdf"` (RFC 6266 / 7578). */
export function headerParams(value: string): Record<string, string> {
  const params: Record<string, string> = {};
  const re = /;\s*([A-Za-z0-9!#$&+.^_`|~-]+)\*?=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(value)) !== null) {
    const key = m[1]!.toLowerCase();
    let v = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : (m[3] ?? '');
    if (m[0].includes('*=')) {
      // filename*=UTF-8''na%C3%AFve.pdf
      const ext = /^[A-Za-z0-9-]+'[A-Za-z-]*'(.*)$/.exec(v);
      if (ext) {
        try {
          v = decodeURIComponent(ext[1]!);
        } catch {
          // keep the raw value
        }
      }
      params[key] = v; // the extended form wins
    } else if (!(key in params)) params[key] = v;
  }
  return params;
}

/** The file and fields found in the first bytes of a multipart/form-data body. */
export function parseMultipartPrefix(prefix: Buffer, boundary: string, fieldNames: ReadonlySet<string>): UploadFacts {
  const text = prefix.toString('latin1');
  const delimiter = `--${boundary}`;
  const fields: Record<string, string> = {};
  let file: UploadFacts['file'];
  let at = text.indexOf(delimiter);
  while (at >= 0) {
    const headersStart = text.indexOf('\r\n', at + delimiter.length);
    if (headersStart < 0) break;
    if (text.startsWith('--', at + delimiter.length)) break; // closing delimiter
    const headersEnd = text.indexOf('\r\n\r\n', headersStart);
    if (headersEnd < 0) break;
    const headers: Record<string, string> = {};
    for (const line of text.slice(headersStart + 2, headersEnd).split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const disposition = headerParams(headers['content-disposition'] ?? '');
    const next = text.indexOf(`\r\n${delimiter}`, headersEnd + 4);
    if (disposition.filename !== undefined) {
      // latin1 -> the original bytes -> UTF-8 (browsers send UTF-8 file names)
      const name = Buffer.from(disposition.filename, 'latin1').toString('utf8');
      if (file === undefined) file = { name, ...(headers['content-type'] ? { type: headers['content-type'] } : {}) };
    } else if (disposition.name !== undefined && fieldNames.has(disposition.name) && next >= 0) {
      const value = Buffer.from(text.slice(headersEnd + 4, next), 'latin1').toString('utf8');
      if (value.length <= MAX_FIELD_CHARS) fields[disposition.name] = value;
    }
    if (next < 0) break;
    at = next + 2;
  }
  return { ...(file !== undefined ? { file } : {}), fields };
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

/** The boundary of a multipart/form-data Content-Type, or null. */
export function multipartBoundary(contentType: string | undefined): string | null {
  if (contentType === undefined || !/^\s*multipart\/form-data\b/i.test(contentType)) return null;
  const boundary = headerParams(contentType).boundary;
  return boundary !== undefined && boundary.length > 0 && boundary.length <= 200 ? boundary : null;
}

/** File facts of a raw (non-multipart) upload from its headers and query string. */
export function rawUploadFacts(headers: IncomingMessage['headers'], url: string): UploadFacts {
  const disposition = headers['content-disposition'];
  let name = disposition ? headerParams(`x; ${disposition.replace(/^[^;]*;?/, '')}`).filename : undefined;
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
