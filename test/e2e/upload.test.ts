import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, E2E_API_KEY, processMemory, startGateway, type GatewayProcess } from '../helpers/gateway.js';
import { standIn, testServer, type StandIn } from '../helpers/upstreams.js';

const MB = 1024 * 1024;
const TOTAL = 50 * MB;
const CHUNK = 64 * 1024;
/*
 * The acceptance bound. Note what the measurement holds: with Node 24 defaults the gateway's
 * peak RSS grows by about 50-55 MB during a 50 MB upload even though the body streams
 * (the upstream is never more than ~10 MB behind the client), because every socket read is
 * a fresh Buffer that only a young-generation GC frees, and V8 lets about 50 MB of them pile
 * up before one runs (with --max-semi-space-size=1 the growth is ~17 MB). So the lag check
 * below is the sharp proof of streaming; the RSS bound catches a body held whole (a buffering
 * gateway measured ~104 MB).
 */
const MAX_RSS_GROWTH = 64 * MB;
const MAX_UPSTREAM_LAG = 40 * MB;

/**
 * A body of `total` bytes made on demand, chunk by chunk (never held whole), each chunk
 * distinct; the sha256 is computed as the bytes are produced.
 */
function generatedBody(total: number, onProgress?: (produced: number) => void) {
  const base = randomBytes(CHUNK);
  const hash = createHash('sha256');
  let produced = 0;
  let index = 0;
  const stream = new Readable({
    read() {
      if (produced >= total) {
        this.push(null);
        return;
      }
      const n = Math.min(CHUNK, total - produced);
      const chunk = Buffer.allocUnsafe(n);
      base.copy(chunk, 0, 0, n);
      if (n >= 4) chunk.writeUInt32BE(index, 0);
      index += 1;
      hash.update(chunk);
      produced += n;
      onProgress?.(produced);
      this.push(chunk);
    },
  });
  return { stream, digest: () => hash.digest('hex') };
}

const mb = (bytes: number) => (bytes / MB).toFixed(1);

let gw: GatewayProcess;
let knowledge: StandIn;
/** What the counting upstream has received of the current upload. */
const upload = { received: 0 };
/** What the big-response upstream has written of the current response. */
const served = { bytes: 0, sha256: '', done: false };

interface Echo {
  method: string;
  path: string;
  bodyBytes: number;
  bodySha256: string;
}

beforeAll(async () => {
  knowledge = await standIn('knowledge');
  // twin: hashes the body as it arrives and keeps count, so the test can see how far behind it is.
  const counting = await testServer((req, res) => {
    if (req.url === '/health') {
      req.resume();
      res.end('ok');
      return;
    }
    const hash = createHash('sha256');
    upload.received = 0;
    req.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      upload.received += chunk.length;
    });
    req.on('end', () => {
      const body = JSON.stringify({ method: req.method, path: req.url, bodyBytes: upload.received, bodySha256: hash.digest('hex') });
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    });
  });
  // agent-controller: answers GET /v1/agents/big with a 50 MB body made as it is sent.
  const big = await testServer((req, res) => {
    req.resume();
    if (req.url !== '/v1/agents/big') {
      res.end('ok');
      return;
    }
    served.bytes = 0;
    served.done = false;
    const { stream, digest } = generatedBody(TOTAL, (n) => (served.bytes = n));
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(TOTAL) });
    stream.pipe(res);
    stream.on('end', () => {
      served.sha256 = digest();
      served.done = true;
    });
  });
  gw = await startGateway({ env: { TWIN_SERVICE_URL: counting.url, KNOWLEDGE_SYSTEM_URL: knowledge.url, AGENT_CONTROLLER_URL: big.url } });
  // Warm up the route (JIT, pools, buffers) so the measurement sees the upload, not start-up.
  for (let i = 0; i < 3; i += 1) {
    const res = await request(`${gw.url}/v1/twin/warmup`, { method: 'POST', body: randomBytes(512 * 1024), headers: { 'x-api-key': E2E_API_KEY } });
    await res.body.dump();
  }
});

afterAll(cleanup);

describe('streamed request bodies', () => {
  it('a 50 MB chunked upload reaches the upstream intact, as it is sent, with gateway RSS growth under 64 MB', async () => {
    // How far the upstream lags behind what the client has produced: a gateway that buffered
    // the body would let it reach the whole 50 MB; one that streams keeps it to socket buffers.
    let maxLag = 0;
    const body = generatedBody(TOTAL, (produced) => {
      maxLag = Math.max(maxLag, produced - upload.received);
    });
    const before = processMemory(gw.pid);
    const res = await request(`${gw.url}/v1/twin/uploads/big.bin`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', 'x-api-key': E2E_API_KEY },
      body: body.stream,
    });
    const echo = (await res.body.json()) as Echo;
    const after = processMemory(gw.pid);
    const growth = after.hwm - before.rss;
    console.log(
      `gateway RSS growth during the 50 MB streamed upload: ${mb(growth)} MB ` +
        `(VmRSS before ${mb(before.rss)} MB, VmHWM after ${mb(after.hwm)} MB; limit ${mb(MAX_RSS_GROWTH)} MB); ` +
        `upstream at most ${mb(maxLag)} MB behind the client`,
    );

    expect(res.statusCode).toBe(200);
    expect(echo.method).toBe('POST');
    expect(echo.path).toBe('/v1/twin/uploads/big.bin');
    expect(echo.bodyBytes).toBe(TOTAL);
    expect(echo.bodySha256).toBe(body.digest());
    expect(maxLag).toBeLessThan(MAX_UPSTREAM_LAG);
    expect(growth).toBeLessThan(MAX_RSS_GROWTH);
  });

  it('a 50 MB upload with Content-Length reaches the stand-in with the right byte count and sha256', async () => {
    const body = generatedBody(TOTAL);
    const res = await request(`${gw.url}/v1/knowledge/ingest/sized.bin`, {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(TOTAL), 'x-api-key': E2E_API_KEY },
      body: body.stream,
    });
    const echo = (await res.body.json()) as Echo;
    expect(res.statusCode).toBe(200);
    expect(echo.method).toBe('PUT');
    expect(echo.path).toBe('/v1/knowledge/ingest/sized.bin');
    expect(echo.bodyBytes).toBe(TOTAL);
    expect(echo.bodySha256).toBe(body.digest());
  });
});

describe('streamed response bodies', () => {
  it('a 50 MB upstream response streams through to the client', async () => {
    const res = await request(`${gw.url}/v1/agents/big`, { headers: { 'x-api-key': E2E_API_KEY } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-length']).toBe(String(TOTAL));
    const hash = createHash('sha256');
    let received = 0;
    // How far the client lags behind what the upstream has written: bounded by socket
    // buffers when the gateway streams, the whole body when it buffers.
    let maxLag = 0;
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      maxLag = Math.max(maxLag, served.bytes - received);
      hash.update(chunk);
      received += chunk.length;
    }
    console.log(`50 MB streamed response: the client was at most ${mb(maxLag)} MB behind the upstream`);

    expect(served.done).toBe(true);
    expect(received).toBe(TOTAL);
    expect(hash.digest('hex')).toBe(served.sha256);
    expect(maxLag).toBeLessThan(MAX_UPSTREAM_LAG);
  });
});
