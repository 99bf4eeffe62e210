import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { buildGateway, type Gateway } from '../../src/server/app.js';
import { checkBody, sampleIntervalMs, startBody, type BodyRules } from '../../src/server/client-timeouts.js';
import { cleanup } from '../helpers/gateway.js';
import { connected, slowClient } from '../helpers/slow-client.js';
import { testServer, type TestServer } from '../helpers/upstreams.js';

const KEY = 'client-timeouts-test-key-0123456789';

describe('checkBody (the body rules, on an injected clock)', () => {
  const rules: BodyRules = { timeoutMs: 60_000, minBytesPerSecond: 1024 };

  it('cuts a trickle of one byte every 2 s once the grace period is over (rate rule)', () => {
    const p = startBody(0, 500);
    let bytes = 500;
    let cutAt: number | null = null;
    for (let t = 1000; t <= 120_000 && cutAt === null; t += 1000) {
      if (t % 2000 === 0) bytes += 1;
      if (checkBody(p, bytes, false, t, rules) === 'too-slow') cutAt = t;
    }
    expect(cutAt).toBe(61_000);
  });

  it('cuts a body that stops for longer than the timeout (inactivity)', () => {
    const p = startBody(0, 0);
    expect(checkBody(p, 1_000_000, false, 1000, rules)).toBe('ok');
    expect(checkBody(p, 1_000_000, false, 61_000, rules)).toBe('ok');
    expect(checkBody(p, 1_000_000, false, 61_001, rules)).toBe('idle');
  });

  it('lets a long upload through when it averages the minimum rate: 128 MiB at 40 KB/s over an hour', () => {
    const p = startBody(0, 0);
    for (let t = 1000; t <= 3_400_000; t += 1000) expect(checkBody(p, t * 40, false, t, rules)).toBe('ok');
  });

  it('cuts an upload that falls under the minimum rate on average', () => {
    const p = startBody(0, 0);
    const verdicts = new Set<string>();
    for (let t = 1000; t <= 200_000; t += 1000) verdicts.add(checkBody(p, Math.floor(t * 0.9), false, t, rules)); // 900 B/s
    expect(verdicts.has('too-slow')).toBe(true);
  });

  it('does not hold against the client the time the gateway was not reading', () => {
    const p = startBody(0, 0);
    expect(checkBody(p, 100, false, 1000, rules)).toBe('ok');
    // Ten minutes with the gateway's buffer full (the upstream not reading): nothing arrives.
    for (let t = 2000; t <= 601_000; t += 1000) expect(checkBody(p, 100, true, t, rules)).toBe('ok');
    // Then the client goes on at a good pace: neither rule fires.
    let bytes = 100;
    for (let t = 602_000; t <= 700_000; t += 1000) expect(checkBody(p, (bytes += 50_000), false, t, rules)).toBe('ok');
    // And silence that is the client's own is cut as usual.
    expect(checkBody(p, bytes, false, 760_000, rules)).toBe('ok');
    expect(checkBody(p, bytes, false, 760_001, rules)).toBe('idle');
  });

  it('minBytesPerSecond 0 leaves only the inactivity rule', () => {
    const p = startBody(0, 0);
    for (let t = 1000; t <= 600_000; t += 1000) expect(checkBody(p, t / 1000, false, t, { timeoutMs: 60_000, minBytesPerSecond: 0 })).toBe('ok');
  });

  it('samples a quarter of the shortest timeout, 50 ms to 1 s', () => {
    const base = { clientHeaderTimeoutMs: 60_000, clientBodyTimeoutMs: 60_000, clientSendTimeoutMs: 60_000 } as const;
    expect(sampleIntervalMs({ ...base } as never)).toBe(1000);
    expect(sampleIntervalMs({ ...base, clientBodyTimeoutMs: 400 } as never)).toBe(100);
    expect(sampleIntervalMs({ ...base, clientHeaderTimeoutMs: 100 } as never)).toBe(50);
  });
});

describe('server config', () => {
  it('has nginx-like defaults and refuses a requestTimeoutMs shorter than the header timeout', () => {
    const ok = loadConfig({});
    if (!ok.ok) throw new Error(ok.problems.join('\n'));
    expect(ok.config.server).toMatchObject({
      clientHeaderTimeoutMs: 60_000,
      clientBodyTimeoutMs: 60_000,
      clientBodyMinBytesPerSecond: 1024,
      clientSendTimeoutMs: 60_000,
      requestTimeoutMs: 0,
      keepAliveTimeoutMs: 72_000,
      maxConnectionsPerIp: 256,
    });
    const file = join(mkdtempSync(join(tmpdir(), 'gw-ct-')), 'gateway.yaml');
    writeFileSync(file, 'server: { clientHeaderTimeoutMs: 5000, requestTimeoutMs: 1000 }\n');
    const bad = loadConfig({}, { file });
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.problems.join('\n')).toMatch(/requestTimeoutMs must be 0 or at least clientHeaderTimeoutMs/);
  });
});

describe('slow clients against a listening gateway', () => {
  const TIMEOUT = 400;
  const TICK = 100;
  /** Timer granularity plus a loaded CI machine. */
  const MARGIN = 900;
  let upstream: TestServer;
  let g: Gateway;
  let port: number;
  const received: Array<{ path: string; bytes: number; sha256: string }> = [];

  beforeAll(async () => {
    upstream = await testServer((req, res) => {
      const path = req.url ?? '/';
      if (path.startsWith('/v1/twin/big')) {
        // 64 MiB answer, far more than the socket buffers hold.
        const chunk = Buffer.alloc(1024 * 1024, 0x61);
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(64 * chunk.length) });
        let n = 0;
        const more = () => {
          while (n < 64) {
            n += 1;
            if (!res.write(chunk)) return void res.once('drain', more);
          }
          res.end();
        };
        more();
        return;
      }
      const read = () => {
        const hash = createHash('sha256');
        let bytes = 0;
        req.on('data', (c: Buffer) => {
          bytes += c.length;
          hash.update(c);
        });
        req.on('end', () => {
          const entry = { path, bytes, sha256: hash.digest('hex') };
          received.push(entry);
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(entry));
        });
      };
      // /slowread: the upstream takes its time before reading the body (the gateway holds the client back).
      if (path.startsWith('/v1/twin/slowread')) setTimeout(read, 3 * TIMEOUT);
      else read();
    });
    const file = join(mkdtempSync(join(tmpdir(), 'gw-ct-')), 'gateway.yaml');
    writeFileSync(
      file,
      `server: { clientHeaderTimeoutMs: ${TIMEOUT}, clientBodyTimeoutMs: ${TIMEOUT}, clientSendTimeoutMs: ${TIMEOUT}, maxConnectionsPerIp: 0 }\n` +
        'rateLimit: { enabled: false }\n',
    );
    const result = loadConfig({ GATEWAY_HOST: '127.0.0.1', GATEWAY_PORT: '0', API_KEY: KEY, TWIN_SERVICE_URL: upstream.url }, { file });
    if (!result.ok) throw new Error(result.problems.join('\n'));
    g = await buildGateway(result.config, { logger: pino({ level: 'silent' }), processMetrics: false });
    port = Number(new URL(await g.listen()).port);
  });
  afterAll(async () => {
    await g?.close();
    await cleanup();
  });
  afterEach(() => {
    received.length = 0;
  });

  const timeouts = async () => {
    const values = (await g.metrics.registry.getSingleMetric('gateway_client_timeouts_total')!.get()).values;
    return Object.fromEntries(values.map((v) => [v.labels.phase, v.value]));
  };
  const jsonHead = (length: number, extra = `X-API-Key: ${KEY}\r\n`) =>
    `POST /v1/twin/notes HTTP/1.1\r\nHost: gw\r\n${extra}Content-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`;

  it('answers 408 GW_REQUEST_TIMEOUT and closes a connection whose headers trickle', async () => {
    const before = (await timeouts()).headers ?? 0;
    const r = await slowClient({ port, head: 'POST /v1/twin/notes HTTP/1.1\r\nHost: gw\r\nX-Slow: ', drip: { bytes: 'a', everyMs: 50 } }).done;
    expect(r).toMatchObject({ status: 408, code: 'GW_REQUEST_TIMEOUT' });
    expect(r.received).toMatch(/\r\nConnection: close\r\n/i);
    expect(r.openMs).toBeGreaterThan(TIMEOUT - 50);
    expect(r.openMs).toBeLessThan(TIMEOUT + TICK + MARGIN);
    expect((await timeouts()).headers).toBe(before + 1);
  });

  it('on a keep-alive connection that was answered before, a trickling next request still gets its 408 (counted as headers)', async () => {
    const before = await timeouts();
    const head = 'GET /livez HTTP/1.1\r\nHost: gw\r\n\r\nGET /livez HTTP/1.1\r\nHost: gw\r\nX-Slow: ';
    const r = await slowClient({ port, head, drip: { bytes: 'a', everyMs: 50 } }).done;
    expect(r.status).toBe(200);
    // The first answer is over: the timeout of the second is answered, not just cut.
    expect(r.received).toMatch(/HTTP\/1\.1 408 [^]*GW_REQUEST_TIMEOUT/);
    const after = await timeouts();
    expect(after.headers).toBe((before.headers ?? 0) + 1);
    expect(after.request ?? 0).toBe(before.request ?? 0);
  });

  it('closes a connection that never sends a byte within the header timeout', async () => {
    const r = await slowClient({ port, head: '' }).done;
    expect(r.openMs).toBeLessThan(TIMEOUT + TICK + MARGIN);
    expect(r).toMatchObject({ status: 408, code: 'GW_REQUEST_TIMEOUT' });
  });

  it('answers 408 and closes a body that trickles one byte at a time (rate rule), long before it would end', async () => {
    const before = (await timeouts()).body ?? 0;
    // 100 bytes at 20 bytes/s would take 5 s.
    const r = await slowClient({ port, head: `${jsonHead(100)}{`, drip: { bytes: ' ', everyMs: 50 } }).done;
    expect(r).toMatchObject({ status: 408, code: 'GW_REQUEST_TIMEOUT' });
    expect(r.openMs).toBeLessThan(TIMEOUT + TICK + MARGIN);
    expect((await timeouts()).body).toBe(before + 1);
    expect(received).toEqual([]);
  });

  it('answers 408 and closes a streamed body that stops arriving (inactivity rule)', async () => {
    const head = `POST /v1/twin/upload HTTP/1.1\r\nHost: gw\r\nX-API-Key: ${KEY}\r\nContent-Type: application/octet-stream\r\nContent-Length: 100\r\n\r\n0123456789`;
    const r = await slowClient({ port, head }).done;
    expect(r).toMatchObject({ status: 408, code: 'GW_REQUEST_TIMEOUT' });
    expect(r.openMs).toBeLessThan(TIMEOUT + TICK + MARGIN);
  });

  it('answers 408 and closes a chunked body that trickles one small chunk at a time', async () => {
    const head = `POST /v1/twin/upload HTTP/1.1\r\nHost: gw\r\nX-API-Key: ${KEY}\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n`;
    const r = await slowClient({ port, head, drip: { bytes: '1\r\nx\r\n', everyMs: 50 } }).done;
    expect(r).toMatchObject({ status: 408, code: 'GW_REQUEST_TIMEOUT' });
    expect(r.openMs).toBeLessThan(TIMEOUT + TICK + MARGIN);
  });

  it('closes the connection when a body keeps trickling after an early answer (401)', async () => {
    const r = await slowClient({ port, head: `${jsonHead(100, '')}{`, drip: { bytes: ' ', everyMs: 50, maxDrips: 1000 } }).done;
    expect(r).toMatchObject({ status: 401, code: 'GW_AUTH_MISSING_CREDENTIALS' });
    expect(r.openMs).toBeLessThan(TIMEOUT + TICK + MARGIN);
  });

  it('lets a slow but steady upload through: 2.5 KB/s for 5 body timeouts', async () => {
    const chunk = 'x'.repeat(256);
    const chunks = 20; // one every 100 ms: 2 s in all
    const body = chunk.repeat(chunks);
    const res = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = httpRequest(
        { host: '127.0.0.1', port, method: 'POST', path: '/v1/twin/upload', agent: false, headers: { 'x-api-key': KEY, 'content-type': 'text/csv', 'content-length': body.length } },
        (r) => {
          let text = '';
          r.setEncoding('utf8').on('data', (d: string) => (text += d));
          r.on('end', () => resolve({ status: r.statusCode ?? 0, text }));
        },
      );
      req.on('error', reject);
      let sent = 0;
      const timer = setInterval(() => {
        req.write(chunk);
        if (++sent === chunks) {
          clearInterval(timer);
          req.end();
        }
      }, 100);
    });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toMatchObject({ bytes: body.length, sha256: createHash('sha256').update(body).digest('hex') });
  });

  it('does not cut a fast upload the upstream is slow to read (the gateway holds the client back)', async () => {
    const body = Buffer.alloc(32 * 1024 * 1024, 0x62);
    const res = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/v1/twin/slowread',
          agent: false,
          headers: { 'x-api-key': KEY, 'content-type': 'application/octet-stream', 'content-length': body.length },
        },
        (r) => {
          let text = '';
          r.setEncoding('utf8').on('data', (d: string) => (text += d));
          r.on('end', () => resolve({ status: r.statusCode ?? 0, text }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toMatchObject({ bytes: body.length });
  });

  it('cuts a response the client takes none of for the send timeout', async () => {
    const before = (await timeouts()).send ?? 0;
    const client = slowClient({ port, head: `GET /v1/twin/big HTTP/1.1\r\nHost: gw\r\nX-API-Key: ${KEY}\r\n\r\n` });
    await connected(client);
    client.socket.pause(); // never reads: the gateway's queue for it fills up
    const deadline = performance.now() + 10_000;
    while (((await timeouts()).send ?? 0) === before && performance.now() < deadline) await new Promise((r) => setTimeout(r, TICK));
    expect((await timeouts()).send).toBe(before + 1);
    client.socket.resume();
    const r = await client.done;
    expect(r.status).toBe(200);
    expect(r.received.length).toBeLessThan(64 * 1024 * 1024);
  });
});

describe('requestTimeoutMs (the optional hard cap, Node\'s requestTimeout)', () => {
  it('cuts even a steady upload once the whole request has taken longer, counted as phase "request"', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'gw-ct-')), 'gateway.yaml');
    writeFileSync(file, 'server: { clientHeaderTimeoutMs: 400, clientBodyTimeoutMs: 400, requestTimeoutMs: 800, maxConnectionsPerIp: 0 }\n');
    const upstream = await testServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(200).end('{}'));
    });
    const result = loadConfig({ GATEWAY_HOST: '127.0.0.1', GATEWAY_PORT: '0', API_KEY: KEY, TWIN_SERVICE_URL: upstream.url }, { file });
    if (!result.ok) throw new Error(result.problems.join('\n'));
    const g = await buildGateway(result.config, { logger: pino({ level: 'silent' }), processMetrics: false });
    try {
      const port = Number(new URL(await g.listen()).port);
      // 10 KB/s, far above the rate rule, for 3 s: only the hard cap can cut it.
      const head = `POST /v1/twin/upload HTTP/1.1\r\nHost: gw\r\nX-API-Key: ${KEY}\r\nContent-Type: text/plain\r\nContent-Length: 30000\r\n\r\n`;
      const r = await slowClient({ port, head, drip: { bytes: 'x'.repeat(1000), everyMs: 100 } }).done;
      expect(r).toMatchObject({ status: 408, code: 'GW_REQUEST_TIMEOUT' });
      expect(r.openMs).toBeLessThan(800 + 100 + 900);
      const values = (await g.metrics.registry.getSingleMetric('gateway_client_timeouts_total')!.get()).values;
      expect(values.find((v) => v.labels.phase === 'request')?.value).toBe(1);
    } finally {
      await g.close();
      await upstream.close();
    }
  });
});
