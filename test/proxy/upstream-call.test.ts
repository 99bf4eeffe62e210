import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errors as undiciErrors, Pool } from 'undici';
import { BrokenAnswerError, CallAbort, discardBody, upstreamCall } from '../../src/proxy/upstream-call.js';
import { cleanup } from '../helpers/gateway.js';
import { testServer } from '../helpers/upstreams.js';

/*
 * upstreamCall() against a real loopback server: small answers whole, large ones streamed with
 * backpressure, cancellation before and during the answer, a body that breaks off.
 */

const Abort = CallAbort;

let pool: Pool;
let connections = 0;

beforeAll(async () => {
  const server = await testServer((req, res) => {
    req.resume();
    const url = new URL(req.url ?? '/', 'http://x');
    const size = Number(url.searchParams.get('size') ?? 0);
    const body = Buffer.alloc(size, 'b');
    switch (url.pathname) {
      case '/sized':
        res.writeHead(Number(url.searchParams.get('status') ?? 200), { 'content-length': String(size), 'x-up': 'yes' }).end(body);
        return;
      case '/chunked':
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write(body.subarray(0, size >> 1));
        setTimeout(() => res.end(body.subarray(size >> 1)), 5);
        return;
      case '/broken':
        res.writeHead(200, { 'content-length': String(size) });
        res.write(body.subarray(0, size >> 1));
        setTimeout(() => res.socket?.destroy(), 10);
        return;
      case '/slow':
        // Headers only after a while (long enough for the caller to give up first).
        setTimeout(() => res.writeHead(200, { 'content-length': '2' }).end('ok'), 2_000).unref();
        return;
      case '/empty':
        // 204 and 304 have no body whatever their headers say; HEAD answers carry the GET's length.
        res.writeHead(Number(url.searchParams.get('status')), { 'content-length': '10' }).end();
        return;
      case '/early-hint':
        res.writeEarlyHints({ link: '</a.css>; rel=preload' });
        res.writeHead(200, { 'content-length': '5' }).end('after');
        return;
      default:
        res.writeHead(404).end();
    }
  });
  pool = new Pool(server.url, { connections: 4 });
  pool.on('connect', () => (connections += 1));
});

afterAll(async () => {
  await pool.close();
  await cleanup();
});

const call = (path: string, abort = new Abort(), wholeUpTo = 1024) => upstreamCall(pool, { path, method: 'GET', headers: {} }, abort, wholeUpTo);

async function readAll(body: Buffer | NodeJS.ReadableStream): Promise<Buffer> {
  if (Buffer.isBuffer(body)) return body;
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('upstreamCall', () => {
  it('reads an answer within the bound whole, and streams a larger one, one without a length or a HEAD-like bound of 0', async () => {
    const small = await call('/sized?size=1024');
    expect(small.statusCode).toBe(200);
    expect(Buffer.isBuffer(small.body)).toBe(true);
    expect((small.body as Buffer).length).toBe(1024);
    expect(small.headers['x-up']).toBe('yes');

    const empty = await call('/sized?size=0');
    expect(Buffer.isBuffer(empty.body)).toBe(true);
    expect((empty.body as Buffer).length).toBe(0);

    for (const [path, bound, size] of [
      ['/sized?size=1025', 1024, 1025],
      ['/chunked?size=3000', 1024 * 1024, 3000],
      ['/sized?size=10', 0, 10],
    ] as const) {
      const res = await call(path, new Abort(), bound);
      expect(Buffer.isBuffer(res.body), path).toBe(false);
      const body = await readAll(res.body);
      expect(body.length, path).toBe(size);
      expect(body.every((b) => b === 0x62)).toBe(true);
    }
  });

  it('streams a large body with backpressure and delivers it intact', async () => {
    const res = await call('/sized?size=5000000');
    expect(Buffer.isBuffer(res.body)).toBe(false);
    const body = await readAll(res.body);
    expect(body.length).toBe(5_000_000);
  });

  it('streams what has no body to read whole (204, 304, a HEAD answer with a length) and ends it at once', async () => {
    for (const status of [204, 304]) {
      const res = await call(`/empty?status=${status}`);
      expect(res.statusCode).toBe(status);
      expect(Buffer.isBuffer(res.body)).toBe(false);
      expect((await readAll(res.body)).length).toBe(0);
    }
    const head = await upstreamCall(pool, { path: '/sized?size=5000', method: 'HEAD', headers: {} }, new Abort(), 0);
    expect(head.headers['content-length']).toBe('5000');
    expect((await readAll(head.body)).length).toBe(0);
  });

  it('skips informational answers and resolves with the final one', async () => {
    const res = await call('/early-hint');
    expect(res.statusCode).toBe(200);
    expect(res.body.toString()).toBe('after');
  });

  it('rejects with the abort reason before the answer, and with RequestAbortedError when there is none', async () => {
    const timedOut = new Abort();
    const reason = new Error('deadline');
    const pending = call('/slow', timedOut);
    setTimeout(() => timedOut.abort(reason), 20);
    await expect(pending).rejects.toBe(reason);

    const gone = new Abort();
    const pending2 = call('/slow', gone);
    setTimeout(() => gone.abort(), 20);
    await expect(pending2).rejects.toBeInstanceOf(undiciErrors.RequestAbortedError);

    const already = new Abort();
    already.abort(reason);
    await expect(call('/sized?size=1', already)).rejects.toBe(reason);
    // A call is no longer the abort's once it is over.
    expect([timedOut.current, gone.current]).toEqual([undefined, undefined]);
  });

  it('fails a streamed body when aborted mid-stream', async () => {
    const abort = new Abort();
    const res = await call('/chunked?size=4000000', abort, 0);
    const body = res.body as NodeJS.ReadableStream & { destroyed: boolean };
    const failed = new Promise<unknown>((resolve) => body.once('error', resolve));
    abort.abort();
    expect(await failed).toBeInstanceOf(undiciErrors.RequestAbortedError);
    expect(body.destroyed).toBe(true);
  });

  it('a whole answer that breaks off is a BrokenAnswerError; a streamed one fails its stream', async () => {
    await expect(call('/broken?size=800')).rejects.toBeInstanceOf(BrokenAnswerError);
    const streamed = await call('/broken?size=800', new Abort(), 0);
    await expect(readAll(streamed.body)).rejects.toThrow();
  });

  it('discardBody drains a dropped answer so its connection is reused', async () => {
    // Warm one connection, then drop a streamed answer and call again: no new connection.
    await call('/sized?size=1');
    const before = connections;
    for (let i = 0; i < 3; i++) {
      const res = await call('/sized?size=50000&status=503', new Abort(), 0);
      expect(res.statusCode).toBe(503);
      discardBody(res);
      const next = await call('/sized?size=1');
      expect(next.statusCode).toBe(200);
    }
    expect(connections - before).toBeLessThanOrEqual(1);
  });
});
