import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUFFERED_ANSWER_BYTES } from '../../src/proxy/upstream-call.js';
import { cleanup, startGateway, type GatewayProcess } from '../helpers/gateway.js';
import { call } from '../helpers/http.js';
import { testServer } from '../helpers/upstreams.js';

/*
 * Answers of a GET up to BUFFERED_ANSWER_BYTES (by Content-Length) are read whole and sent in
 * one write; larger ones and those without a length stream through (src/proxy/upstream-call.ts).
 * Both must arrive intact, and a small answer whose body breaks off is a 502, not a cut answer.
 */

let gw: GatewayProcess;

beforeAll(async () => {
  const upstream = await testServer((req, res) => {
    req.resume();
    const url = req.url ?? '';
    if (url.endsWith('/health')) {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
      return;
    }
    const size = Number(/size=(\d+)/.exec(url)?.[1] ?? 0);
    const body = Buffer.alloc(size, 'a');
    if (url.includes('/broken')) {
      // Promises more than it sends, then drops the connection.
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(size) });
      res.write(body.subarray(0, size >> 1));
      setTimeout(() => res.socket?.destroy(), 20);
      return;
    }
    if (url.includes('/chunked')) {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write(body.subarray(0, size >> 1));
      res.end(body.subarray(size >> 1));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(size), 'x-upstream': 'yes' }).end(body);
  });
  gw = await startGateway({
    yaml: `
services:
  files: { urls: ["${upstream.url}"] }
routes:
  - { id: files, prefix: /v1/files, service: files, cache: false }
`,
  });
});

afterAll(cleanup);

describe('answers read whole or streamed by size', () => {
  it('a small answer, one at the limit, a larger one and one without a length all arrive intact with their headers', async () => {
    for (const [path, size] of [
      ['/v1/files/a', 100],
      ['/v1/files/a', BUFFERED_ANSWER_BYTES],
      ['/v1/files/a', BUFFERED_ANSWER_BYTES + 1],
      ['/v1/files/a', 300_000],
      ['/v1/files/chunked', 40_000],
      ['/v1/files/a', 0],
    ] as const) {
      const res = await call(`${gw.url}${path}?size=${size}`);
      expect(res.status, `${path} ${size}`).toBe(200);
      expect(res.text.length, `${path} ${size}`).toBe(size);
      expect(res.text).toBe('a'.repeat(size));
      if (!path.includes('chunked')) {
        expect(res.headers['content-length']).toBe(String(size));
        expect(res.headers['x-upstream']).toBe('yes');
      }
      // The stages' headers are there on both paths.
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['x-request-id']).toBeDefined();
    }
  });

  it('a small answer whose body breaks off is a 502 GW_UPSTREAM_BAD_RESPONSE; a large one is cut', async () => {
    const res = await call(`${gw.url}/v1/files/broken?size=1000`);
    expect(res.status).toBe(502);
    expect(res.json().error.code).toBe('GW_UPSTREAM_BAD_RESPONSE');
    // Streamed: the status line went out before the body broke, so the client sees a short or aborted answer.
    const large = await call(`${gw.url}/v1/files/broken?size=200000`).then(
      (r) => ({ status: r.status, length: r.text.length }),
      () => ({ status: 0, length: 0 }),
    );
    expect(large.length).toBeLessThan(200_000);
  });
});
