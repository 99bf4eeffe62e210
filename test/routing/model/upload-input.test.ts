import { createHash } from 'node:crypto';
import { createServer, request, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { dispositionFileName, isMultipartFormData, parseMultipartPrefix, peekBody, rawUploadFacts } from '../../../src/routing/upload-input.js';

const FIELDS = new Set(['message', 'service', 'query', 'prompt']);

function multipart(boundary: string, parts: Array<{ name: string; filename?: string; type?: string; body: string | Buffer }>): Buffer {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"${p.filename !== undefined ? `; filename="${p.filename}"` : ''}\r\n${p.type ? `Content-Type: ${p.type}\r\n` : ''}\r\n`));
    chunks.push(Buffer.isBuffer(p.body) ? p.body : Buffer.from(p.body));
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

describe('upload facts', () => {
  it('reads file names from Content-Disposition: quoted, unquoted, RFC 5987 extended (which wins), UTF-8 bytes', () => {
    expect(dispositionFileName('form-data; name="file"; filename="a \\"b\\".pdf"')).toBe('a "b".pdf');
    expect(dispositionFileName("attachment; filename=plain.txt; filename*=UTF-8''na%C3%AFve.pdf")).toBe('naïve.pdf');
    // A header value as Node hands it over: the UTF-8 bytes of "résumé.pdf" read as latin1.
    expect(dispositionFileName(`attachment; filename="${Buffer.from('résumé.pdf').toString('latin1')}"`)).toBe('résumé.pdf');
    expect(dispositionFileName('attachment')).toBeUndefined();
    expect(dispositionFileName('attachment; filename')).toBeUndefined(); // does not parse
    expect(isMultipartFormData('multipart/form-data; boundary=----abc')).toBe(true);
    expect(isMultipartFormData('application/json')).toBe(false);
  });

  it('finds the file part and the small text fields in a multipart prefix', async () => {
    const body = multipart('XyZ', [
      { name: 'message', body: 'add to the knowledge base, s’il vous plaît' },
      { name: 'ignored', body: 'not a text field' },
      { name: 'file', filename: 'Q3 report – final.pdf', type: 'application/pdf', body: Buffer.alloc(1000, 1) },
    ]);
    const type = 'multipart/form-data; boundary=XyZ';
    expect(await parseMultipartPrefix(body, type, FIELDS)).toEqual({
      file: { name: 'Q3 report – final.pdf', type: 'application/pdf' },
      fields: { message: 'add to the knowledge base, s’il vous plaît' },
    });
    // A prefix cut inside the file still has its headers; a cut inside a field drops that field.
    const fileHeadersEnd = body.indexOf('\r\n\r\n', body.indexOf('filename')) + 4;
    expect(await parseMultipartPrefix(body.subarray(0, fileHeadersEnd + 10), type, FIELDS)).toEqual({
      file: { name: 'Q3 report – final.pdf', type: 'application/pdf' },
      fields: { message: 'add to the knowledge base, s’il vous plaît' },
    });
    expect(await parseMultipartPrefix(body.subarray(0, 60), type, FIELDS)).toEqual({ fields: {} });
    // The quoted boundary form, and a Content-Type without a boundary.
    expect((await parseMultipartPrefix(multipart('quoted b', [{ name: 'query', body: 'hi' }]), 'multipart/form-data; boundary="quoted b"', FIELDS)).fields).toEqual({ query: 'hi' });
    expect(await parseMultipartPrefix(body, 'multipart/form-data', FIELDS)).toEqual({ fields: {} });
  });

  it('reads raw uploads from Content-Disposition, X-File-Name or ?filename=', () => {
    expect(rawUploadFacts({ 'content-disposition': 'attachment; filename="notes.txt"', 'content-type': 'text/plain' }, '/v1/upload')).toEqual({
      file: { name: 'notes.txt', type: 'text/plain' },
      fields: {},
    });
    expect(rawUploadFacts({ 'x-file-name': 'job%20spec.yaml' }, '/v1/upload').file).toEqual({ name: 'job spec.yaml' });
    expect(rawUploadFacts({}, '/v1/upload?filename=frames.tar').file).toEqual({ name: 'frames.tar' });
    expect(rawUploadFacts({}, '/v1/upload')).toEqual({ fields: {} });
  });

  it('peeks at the start of a request body and puts it back: the consumer still reads every byte', async () => {
    const sizes = [10, 16 * 1024 + 5, 300_000];
    const seen: Array<{ peeked: number; hash: string; bytes: number }> = [];
    const server = createServer(async (req: IncomingMessage, res) => {
      const peeked = await peekBody(req, 16 * 1024, 2000);
      const hash = createHash('sha256');
      let bytes = 0;
      for await (const chunk of req) {
        hash.update(chunk as Buffer);
        bytes += (chunk as Buffer).length;
      }
      seen.push({ peeked: peeked.length, hash: hash.digest('hex'), bytes });
      res.end('ok');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    try {
      for (const [i, size] of sizes.entries()) {
        const body = Buffer.alloc(size, i + 1);
        await new Promise<void>((resolve, reject) => {
          const chunked = i === 1; // one without Content-Length
          const req = request({ port, method: 'POST', path: '/', headers: chunked ? {} : { 'content-length': size } }, (res) => {
            res.resume();
            res.on('end', resolve);
          });
          req.on('error', reject);
          if (chunked) {
            req.write(body.subarray(0, 100));
            setTimeout(() => req.end(body.subarray(100)), 30);
          } else req.end(body);
        });
        const expected = createHash('sha256').update(body).digest('hex');
        expect(seen[i]).toEqual({ peeked: Math.min(size, seen[i]!.peeked), hash: expected, bytes: size });
        expect(seen[i]!.peeked).toBeGreaterThan(0);
      }
    } finally {
      server.close();
    }
  });
});
