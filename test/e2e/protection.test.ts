import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, E2E_API_KEY, startGateway, type GatewayProcess } from '../helpers/gateway.js';
import { call } from '../helpers/http.js';
import { standIns, testServer, type StandIn } from '../helpers/upstreams.js';

/* CORS, security headers and request limits through the running gateway. */

let gw: GatewayProcess;
let twin: StandIn;

beforeAll(async () => {
  const ups = await standIns(['twin']);
  twin = ups.byName.twin;
  const chatty = await testServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'x-powered-by': 'Express', server: 'gunicorn/21.2' }).end('{"ok":true}');
  });
  gw = await startGateway({
    env: { ...ups.env, KNOWLEDGE_SYSTEM_URL: chatty.url },
    yaml: `
cors:
  origins: [https://app.example.org]
  credentials: true
  maxAgeSeconds: 900
limits:
  bodyBytes: 1048576
  jsonBodyBytes: 65536
  headerCount: 40
routes:
  - id: twin-small
    prefix: /v1/twin/small
    service: twin
    bodyLimitBytes: 1000
`,
  });
});
afterAll(cleanup);

/** Write raw bytes on a fresh connection and return what comes back. */
function raw(text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(gw.port, '127.0.0.1', () => socket.write(text));
    let out = '';
    socket.setEncoding('utf8').on('data', (d: string) => (out += d));
    socket.on('close', () => resolve(out));
    socket.on('error', reject);
    setTimeout(() => socket.destroy(), 3000);
  });
}

describe('CORS', () => {
  const preflight = (origin: string) => ({
    method: 'OPTIONS',
    anonymous: true,
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
  });

  it('answers a preflight from an allowed origin, before authentication, with a cached max-age', async () => {
    const before = twin.requestCount;
    const res = await call(`${gw.url}/v1/twin/notes`, preflight('https://app.example.org'));
    expect(res.status).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBe('https://app.example.org');
    expect(res.headers['access-control-allow-credentials']).toBe('true');
    expect(res.headers['access-control-max-age']).toBe('900');
    expect(res.headers['access-control-allow-methods']).toContain('POST');
    expect(twin.requestCount).toBe(before);
  });

  it('gives a refused origin no CORS grant, even one that only starts like an allowed one', async () => {
    for (const origin of ['https://evil.example', 'https://app.example.org.evil.com', 'http://app.example.org']) {
      const res = await call(`${gw.url}/v1/twin/notes`, preflight(origin));
      expect(res.headers['access-control-allow-origin'], origin).toBeUndefined();
      expect(res.headers['access-control-allow-credentials'], origin).toBeUndefined();
    }
  });

  it('adds the grant and exposed headers to actual responses for allowed origins', async () => {
    const res = await call(`${gw.url}/v1/twin/notes`, { headers: { origin: 'https://app.example.org' } });
    expect(res.status).toBe(200);
    expect(res.headers['access-control-allow-origin']).toBe('https://app.example.org');
    expect(res.headers['access-control-expose-headers']).toContain('x-request-id');
    expect(res.headers.vary).toContain('Origin');
  });
});

describe('security headers', () => {
  it('sets them on proxied responses and the gateway’s own, and strips what reveals the stack', async () => {
    for (const path of ['/v1/knowledge/x', '/healthz', '/nope']) {
      const res = await call(`${gw.url}${path}`);
      expect(res.headers['x-content-type-options'], path).toBe('nosniff');
      expect(res.headers['x-frame-options'], path).toBe('DENY');
      expect(res.headers['content-security-policy'], path).toContain("frame-ancestors 'none'");
      expect(res.headers['referrer-policy'], path).toBe('no-referrer');
      expect(res.headers['x-powered-by'], path).toBeUndefined();
      // HSTS only in production (this gateway runs with ENVIRONMENT=test).
      expect(res.headers['strict-transport-security'], path).toBeUndefined();
    }
    const proxied = await call(`${gw.url}/v1/knowledge/x`);
    expect(proxied.json()).toEqual({ ok: true });
    expect(proxied.headers.server).toBeUndefined();
  });
});

describe('limits', () => {
  it('413 for a declared Content-Length over the limit, before anything reaches the upstream', async () => {
    const before = twin.requestCount;
    const res = await call(`${gw.url}/v1/twin/upload`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(2 * 1024 * 1024) },
      body: Buffer.alloc(2 * 1024 * 1024),
    }).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
    // The gateway may answer and close before the client finished writing.
    if (!(res instanceof Error)) {
      expect(res.status).toBe(413);
      expect(res.json().error.code).toBe('GW_REQUEST_BODY_TOO_LARGE');
    }
    expect(twin.requestCount).toBe(before);
  });

  it('413 for a chunked body that grows past the limit', async () => {
    const res = await raw(
      `POST /v1/twin/upload HTTP/1.1\r\nHost: x\r\nX-API-Key: ${E2E_API_KEY}\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n` +
        `${(600 * 1024).toString(16)}\r\n${'a'.repeat(600 * 1024)}\r\n${(600 * 1024).toString(16)}\r\n${'b'.repeat(600 * 1024)}\r\n0\r\n\r\n`,
    );
    expect(res).toMatch(/^HTTP\/1\.1 413 /);
    expect(res).toContain('GW_REQUEST_BODY_TOO_LARGE');
  });

  it('applies a route’s own smaller limit, and the JSON limit', async () => {
    const small = await call(`${gw.url}/v1/twin/small/x`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x'.repeat(1001) });
    expect(small.status).toBe(413);
    const json = await call(`${gw.url}/v1/twin/j`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ t: 'x'.repeat(70_000) }) });
    expect(json.status).toBe(413);
    expect(json.json().error.code).toBe('GW_REQUEST_BODY_TOO_LARGE');
    const fine = await call(`${gw.url}/v1/twin/j`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"t":"hello"}' });
    expect(fine.status).toBe(200);
    expect(fine.json().body).toBe('{"t":"hello"}');
  });

  it('holds a chunked JSON body to the route’s own limit too', async () => {
    const body = JSON.stringify({ t: 'x'.repeat(2000) });
    const res = await raw(
      `POST /v1/twin/small/j HTTP/1.1\r\nHost: x\r\nX-API-Key: ${E2E_API_KEY}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n` +
        `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`,
    );
    expect(res).toMatch(/^HTTP\/1\.1 413 /);
    expect(res).toContain('GW_REQUEST_BODY_TOO_LARGE');
  });

  it('431 for too many headers', async () => {
    const headers: Record<string, string> = {};
    for (let i = 0; i < 50; i++) headers[`x-filler-${i}`] = 'v';
    const res = await call(`${gw.url}/v1/twin/h`, { headers });
    expect(res.status).toBe(431);
    expect(res.json().error.code).toBe('GW_REQUEST_HEADERS_TOO_LARGE');
  });

  it('400 GW_SECURITY_REQUEST_SMUGGLING for conflicting Content-Length and Transfer-Encoding, never forwarded', async () => {
    const before = twin.requestCount;
    const res = await raw(
      `POST /v1/twin/x HTTP/1.1\r\nHost: x\r\nX-API-Key: ${E2E_API_KEY}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /v1/twin/smuggled HTTP/1.1\r\nHost: x\r\n\r\n`,
    );
    expect(res).toMatch(/^HTTP\/1\.1 400 /);
    expect(res).toContain('GW_SECURITY_REQUEST_SMUGGLING');
    expect(res).toContain('Connection: close');
    expect(twin.requestCount).toBe(before);
  });

  it('400 for duplicate Content-Length headers', async () => {
    const res = await raw(`POST /v1/twin/x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd`);
    expect(res).toMatch(/^HTTP\/1\.1 400 /);
    expect(res).toContain('GW_SECURITY_REQUEST_SMUGGLING');
  });

  it('400 for Transfer-Encoding in an HTTP/1.0 request, closed before a pipelined request is read, never forwarded', async () => {
    const before = twin.requestCount;
    const res = await raw(
      `POST /v1/twin/x HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nX-API-Key: ${E2E_API_KEY}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /v1/twin/smuggled HTTP/1.1\r\nHost: x\r\n\r\n`,
    );
    expect(res).toMatch(/^HTTP\/1\.1 400 /);
    expect(res).toContain('GW_SECURITY_REQUEST_SMUGGLING');
    expect(res.match(/HTTP\/1\.1 /g)).toHaveLength(1);
    expect(res.toLowerCase()).toContain('connection: close');
    expect(twin.requestCount).toBe(before);
  });

  it('400 for more than one Host header or a Host that is not a host and port; an IP literal with a port passes', async () => {
    const before = twin.requestCount;
    const twoHosts = await raw(`GET /v1/twin/x HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nX-API-Key: ${E2E_API_KEY}\r\n\r\n`);
    expect(twoHosts).toMatch(/^HTTP\/1\.1 400 /);
    expect(twoHosts).toContain('GW_SECURITY_REQUEST_SMUGGLING');
    for (const host of ['a.example/evil', 'user@a.example', 'a.example:80:90', 'a example']) {
      const res = await raw(`GET /v1/twin/x HTTP/1.1\r\nHost: ${host}\r\nX-API-Key: ${E2E_API_KEY}\r\n\r\n`);
      expect(res, host).toMatch(/^HTTP\/1\.1 400 /);
      expect(res, host).toContain('GW_REQUEST_INVALID');
    }
    expect(twin.requestCount).toBe(before);
    const ipv6 = await raw(`GET /v1/twin/x HTTP/1.1\r\nHost: [::1]:8443\r\nX-API-Key: ${E2E_API_KEY}\r\nConnection: close\r\n\r\n`);
    expect(ipv6).toMatch(/^HTTP\/1\.1 200 /);
    expect(twin.requestCount).toBe(before + 1);
  });
});
