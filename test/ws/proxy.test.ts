import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { pino } from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { buildGateway, type Gateway } from '../../src/server/app.js';
import { cleanup, NOTHING_LISTENING, onCleanup, waitFor } from '../helpers/gateway.js';
import { closed, connect, isRefused, nextMessage, wsUpstream, type Refused } from './helpers.js';
import type { WebSocket } from 'ws';

/*
 * WebSocket proxying through an in-process gateway listening on loopback, to WebSocket
 * upstreams the test controls: authentication and refusals before the upgrade, frames and
 * close codes both ways, limits, and shutdown.
 */

const KEY = 'ws-test-key-0123456789abcdef';
const JWT_SECRET = 'ws-test-jwt-secret-0123456789abcdef';
const open: Gateway[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((g) => g.close()));
});
afterAll(cleanup);

async function gateway(env: Record<string, string>, yaml = ''): Promise<{ g: Gateway; ws: string; http: string }> {
  const file = join(mkdtempSync(join(tmpdir(), 'gw-ws-')), 'gateway.yaml');
  writeFileSync(file, yaml === '' ? '{}\n' : yaml);
  const result = loadConfig(
    { GATEWAY_HOST: '127.0.0.1', GATEWAY_PORT: '0', API_KEY: KEY, JWT_SECRET_KEY: JWT_SECRET, GATEWAY_DRAIN_DELAY_MS: '0', RATE_LIMIT_EXEMPT_LOOPBACK: 'true', ...env },
    { file },
  );
  if (!result.ok) throw new Error(result.problems.join('\n'));
  const g = await buildGateway(result.config, { logger: pino({ level: 'silent' }), processMetrics: false });
  open.push(g);
  const http = await g.listen();
  return { g, http, ws: http.replace('http', 'ws') };
}

const auth = { 'x-api-key': KEY };

function refused(v: WebSocket | Refused): Refused {
  if (!isRefused(v)) throw new Error('the upgrade was accepted');
  return v;
}
function accepted(v: WebSocket | Refused): WebSocket {
  if (isRefused(v)) throw new Error(`the upgrade was refused: ${v.status} ${JSON.stringify(v.body)}`);
  return v;
}

describe('WebSocket proxying: authentication before the upgrade', () => {
  it('no credentials: 401 GW_AUTH_MISSING_CREDENTIALS and no upstream connection', async () => {
    const up = await wsUpstream();
    const { ws } = await gateway({ TWIN_SERVICE_URL: up.url });
    const res = refused(await connect(`${ws}/v1/twin/chat`));
    expect(res.status).toBe(401);
    expect(res.body?.error?.code).toBe('GW_AUTH_MISSING_CREDENTIALS');
    const bad = refused(await connect(`${ws}/v1/twin/chat`, { headers: { 'x-api-key': 'wrong-key-0123456789' } }));
    expect(bad.status).toBe(401);
    expect(up.connections).toHaveLength(0);
  });

  it('an API key connects; frames are echoed both ways, text and binary; the upstream gets the identity, not the key', async () => {
    const up = await wsUpstream();
    const { ws } = await gateway({ TWIN_SERVICE_URL: up.url });
    const client = accepted(await connect(`${ws}/v1/twin/chat?room=1`, { headers: auth }));
    const conn = up.connections[0]!;
    expect(conn.url).toBe('/v1/twin/chat?room=1');
    expect(conn.headers['x-api-key']).toBeUndefined();
    expect(conn.headers['x-gateway-principal']).toBe('key:env-api-key');
    client.send('hello');
    const text = await nextMessage(client);
    expect(text).toEqual({ data: Buffer.from('hello'), isBinary: false });
    client.send(Buffer.from([0, 1, 2, 255]));
    const binary = await nextMessage(client);
    expect(binary.isBinary).toBe(true);
    expect([...binary.data]).toEqual([0, 1, 2, 255]);
  });

  it('a single-use ticket from POST /auth/ws-ticket connects once and never reaches the upstream', async () => {
    const up = await wsUpstream();
    const { ws, http } = await gateway({ TWIN_SERVICE_URL: up.url });
    const issued = await fetch(`${http}/auth/ws-ticket`, { method: 'POST', headers: auth });
    expect(issued.status).toBe(200);
    expect(issued.headers.get('cache-control')).toBe('no-store');
    const { ticket, expires_in } = (await issued.json()) as { ticket: string; expires_in: number };
    expect(expires_in).toBe(30);
    const client = accepted(await connect(`${ws}/v1/twin/chat?ticket=${encodeURIComponent(ticket)}&x=1`));
    expect(up.connections[0]!.url).toBe('/v1/twin/chat?x=1');
    expect(up.connections[0]!.headers['x-gateway-principal']).toBe('key:env-api-key');
    client.send('t');
    expect((await nextMessage(client)).data.toString()).toBe('t');
    const again = refused(await connect(`${ws}/v1/twin/chat?ticket=${encodeURIComponent(ticket)}`));
    expect(again.status).toBe(401);
    expect(again.body?.error?.code).toBe('GW_AUTH_TICKET_INVALID');
    const forged = refused(await connect(`${ws}/v1/twin/chat?ticket=${encodeURIComponent(ticket.slice(0, -3) + 'AAA')}`));
    expect(forged.body?.error?.code).toBe('GW_AUTH_TICKET_INVALID');
    const anonymous = await fetch(`${http}/auth/ws-ticket`, { method: 'POST' });
    expect(anonymous.status).toBe(401);
  });

  it('a bearer token offered as the subprotocol bearer.<jwt>: accepted, never echoed, never forwarded', async () => {
    const up = await wsUpstream();
    const { ws } = await gateway({ TWIN_SERVICE_URL: up.url });
    const jwt = await new SignJWT({ scope: 'read' }).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setIssuedAt().setExpirationTime('5m').sign(new TextEncoder().encode(JWT_SECRET));
    const client = accepted(await connect(`${ws}/v1/twin/chat`, { protocols: [`bearer.${jwt}`, 'chat.v1'] }));
    expect(client.protocol).toBe('chat.v1');
    const conn = up.connections[0]!;
    expect(conn.headers['sec-websocket-protocol']).toBe('chat.v1');
    expect(conn.headers['x-gateway-principal']).toBe('alice');
    const wrong = refused(await connect(`${ws}/v1/twin/chat`, { protocols: ['bearer.not-a-jwt', 'chat.v1'] }));
    expect(wrong.status).toBe(401);
  });

  it("a browser's WebSocket (Node's WHATWG client) offering ['bearer', 'bearer.<jwt>']: connects, echoes, the marker is selected, nothing forwarded", async () => {
    const up = await wsUpstream();
    const { ws } = await gateway({ TWIN_SERVICE_URL: up.url });
    const jwt = await new SignJWT({ scope: 'read' }).setProtectedHeader({ alg: 'HS256' }).setSubject('browser').setIssuedAt().setExpirationTime('5m').sign(new TextEncoder().encode(JWT_SECRET));
    const browser = new globalThis.WebSocket(`${ws}/v1/twin/chat`, ['bearer', `bearer.${jwt}`]);
    const echoed = await new Promise<string>((resolve, reject) => {
      browser.onopen = () => browser.send('from a browser');
      browser.onmessage = (e) => resolve(String(e.data));
      browser.onerror = () => reject(new Error('the browser-style connection failed'));
    });
    expect(echoed).toBe('from a browser');
    expect(browser.protocol).toBe('bearer');
    expect(up.connections[0]!.headers['sec-websocket-protocol']).toBeUndefined();
    browser.close();
  });

  it('a route may ask for more than read to connect; Origin must be a CORS origin or the gateway itself', async () => {
    const up = await wsUpstream();
    const readerKey = 'ws-reader-key-0123456789abcdef';
    const { sha256Hex } = await import('../../src/auth/api-keys.js');
    const { ws, http } = await gateway(
      { TWIN_SERVICE_URL: up.url, KNOWLEDGE_SYSTEM_URL: up.url },
      `auth:\n  apiKeys:\n    - { name: reader, sha256: ${sha256Hex(readerKey)}, scopes: [read] }\n` +
        'cors:\n  origins: ["https://app.example"]\n' +
        'routes:\n  - { prefix: /v1/knowledge, service: knowledge, websocket: { scope: write } }\n',
    );
    const reader = refused(await connect(`${ws}/v1/knowledge/live`, { headers: { 'x-api-key': readerKey } }));
    expect(reader.status).toBe(403);
    expect(reader.body?.error?.code).toBe('GW_AUTH_INSUFFICIENT_SCOPE');
    accepted(await connect(`${ws}/v1/knowledge/live`, { headers: auth })); // the admin key has every scope
    accepted(await connect(`${ws}/v1/twin/chat`, { headers: { 'x-api-key': readerKey } })); // read is enough by default

    const foreign = refused(await connect(`${ws}/v1/twin/chat`, { headers: { ...auth, origin: 'https://evil.example' } }));
    expect(foreign.status).toBe(403);
    expect(foreign.body?.error?.code).toBe('GW_WS_ORIGIN_FORBIDDEN');
    accepted(await connect(`${ws}/v1/twin/chat`, { headers: { ...auth, origin: 'https://app.example' } }));
    accepted(await connect(`${ws}/v1/twin/chat`, { headers: { ...auth, origin: http } }));
  });
});

describe('WebSocket proxying: refusals before the upgrade, in the catalogue shape', () => {
  it('upstream down: 502 GW_UPSTREAM_UNAVAILABLE; refusing the upgrade: 502 GW_WS_UPSTREAM_REFUSED; silent: 504', async () => {
    const refusing = createServer((socket) => socket.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n'));
    const silent = createServer(() => {}); // accepts the connection, never answers
    await Promise.all([refusing, silent].map((s) => new Promise<void>((r) => s.listen(0, '127.0.0.1', r))));
    onCleanup(() => void refusing.close());
    onCleanup(() => void silent.close());
    const port = (s: ReturnType<typeof createServer>) => (s.address() as { port: number }).port;
    const { ws, g } = await gateway(
      { TWIN_SERVICE_URL: NOTHING_LISTENING, FOG_COORDINATOR_URL: `http://127.0.0.1:${port(refusing)}`, P2P_BRIDGE_URL: `http://127.0.0.1:${port(silent)}` },
      'websockets:\n  handshakeTimeoutMs: 300\n',
    );
    const down = refused(await connect(`${ws}/v1/twin/x`, { headers: auth }));
    expect(down.status).toBe(502);
    expect(down.body?.error?.code).toBe('GW_UPSTREAM_UNAVAILABLE');
    const refusal = refused(await connect(`${ws}/v1/fog/x`, { headers: auth }));
    expect(refusal.status).toBe(502);
    expect(refusal.body?.error).toMatchObject({ code: 'GW_WS_UPSTREAM_REFUSED', message: expect.stringContaining('403') });
    const timeout = refused(await connect(`${ws}/v1/p2p/x`, { headers: auth }));
    expect(timeout.status).toBe(504);
    expect(timeout.body?.error?.code).toBe('GW_UPSTREAM_TIMEOUT');
    // Counted as the HTTP path counts: unreachable, the refusing status, timeout.
    const text = await g.metrics.registry.metrics();
    expect(text).toContain('gateway_service_requests{service="twin",status="unreachable",side="stable"} 1');
    expect(text).toContain('gateway_service_requests{service="fog",status="403",side="stable"} 1');
    expect(text).toContain('gateway_service_requests{service="p2p",status="timeout",side="stable"} 1');
  });

  it('upgrades refused with 5xx count as breaker failures: once it opens, 503 without an upstream attempt', async () => {
    let attempts = 0;
    const failing = createServer((socket) => {
      attempts += 1;
      socket.end('HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n');
    });
    await new Promise<void>((r) => failing.listen(0, '127.0.0.1', r));
    onCleanup(() => void failing.close());
    const { ws } = await gateway(
      { TWIN_SERVICE_URL: `http://127.0.0.1:${(failing.address() as { port: number }).port}` },
      'services:\n  twin:\n    breaker: { volumeThreshold: 3, errorThresholdPercentage: 50 }\n    retries: { maxRetries: 0 }\n',
    );
    for (let i = 0; i < 3; i++) expect(refused(await connect(`${ws}/v1/twin/x`, { headers: auth })).body?.error?.code).toBe('GW_WS_UPSTREAM_REFUSED');
    const before = attempts;
    const open = refused(await connect(`${ws}/v1/twin/x`, { headers: auth }));
    expect(open.status).toBe(503);
    expect(open.body?.error?.code).toBe('GW_SERVICE_UNAVAILABLE');
    expect(attempts).toBe(before);
  });

  it('with ENABLE_WEBSOCKETS=false no upgrade is taken: the request is proxied as a plain GET; /v1/events is SSE only', async () => {
    const up = await wsUpstream();
    const { ws, http } = await gateway({ TWIN_SERVICE_URL: up.url, ENABLE_WEBSOCKETS: 'false' });
    const plain = refused(await connect(`${ws}/v1/twin/x`, { headers: auth }));
    expect(plain.status).toBe(200); // the upstream's HTTP answer; the Upgrade header was dropped
    expect(up.connections).toHaveLength(0);
    expect((await fetch(`${http}/auth/ws-ticket`, { method: 'POST', headers: auth })).status).toBe(404);
    const abort = new AbortController();
    const events = await fetch(`${http}/v1/events`, { headers: auth, signal: abort.signal });
    expect(events.status).toBe(200);
    expect(events.headers.get('content-type')).toMatch(/^text\/event-stream/);
    abort.abort();
  });

  it('a route with websocket: false, and unknown paths, are refused before any upgrade', async () => {
    const up = await wsUpstream();
    const { ws } = await gateway({ TWIN_SERVICE_URL: up.url }, 'routes:\n  - { prefix: /v1/twin, service: twin, websocket: false }\n');
    const off = refused(await connect(`${ws}/v1/twin/x`, { headers: auth }));
    expect(off.status).toBe(400);
    expect(off.body?.error?.code).toBe('GW_WS_NOT_ENABLED');
    const unknown = refused(await connect(`${ws}/nowhere`, { headers: auth }));
    expect(unknown.status).toBe(404);
    expect(up.connections).toHaveLength(0);
  });
});

describe('WebSocket proxying: close codes, limits, shutdown', () => {
  it('close codes and reasons pass both ways: upstream 4001 "bye" reaches the client; client 4002 "ciao" reaches the upstream', async () => {
    const up = await wsUpstream();
    const { ws } = await gateway({ TWIN_SERVICE_URL: up.url });
    const a = accepted(await connect(`${ws}/v1/twin/a`, { headers: auth }));
    const aClosed = closed(a);
    up.connections[0]!.ws.close(4001, 'bye');
    expect(await aClosed).toEqual({ code: 4001, reason: 'bye' });

    const next = up.nextConnection();
    const b = accepted(await connect(`${ws}/v1/twin/b`, { headers: auth }));
    const upstreamSide = (await next).ws;
    const bClosed = closed(upstreamSide);
    b.close(4002, 'ciao');
    expect(await bClosed).toEqual({ code: 4002, reason: 'ciao' });
  });

  it('a client over websockets.messagesPerSecond is closed with 1008; metrics count messages, bytes and closes', async () => {
    const up = await wsUpstream();
    const { ws, g } = await gateway({ TWIN_SERVICE_URL: up.url }, 'websockets:\n  messagesPerSecond: 5\n');
    const client = accepted(await connect(`${ws}/v1/twin/x`, { headers: auth }));
    const done = closed(client);
    for (let i = 0; i < 50; i++) client.send(`m${i}`);
    expect(await done).toEqual({ code: 1008, reason: 'message rate exceeded' });
    // The gateway counts the close once its side of the socket has closed too.
    const text = await waitFor(async () => {
      const t = await g.metrics.registry.metrics();
      return /gateway_websocket_closes_total\{[^}]*\} 1/.test(t) ? t : undefined;
    }, 5000, 'the close counted');
    expect(text).toMatch(/gateway_websocket_closes_total\{route="twin",by="gateway",code="1008"\} 1/);
    expect(text).toMatch(/gateway_websocket_messages_total\{route="twin",direction="in"\} 5/);
    expect(text).toMatch(/gateway_websocket_bytes_total\{route="twin",direction="in"\} 10/);
    expect(text).toMatch(/gateway_websocket_connections\{route="twin"\} 0/);
  });

  it('a message over websockets.maxMessageBytes closes with 1009; idle connections close after websockets.idleTimeoutMs', async () => {
    const up = await wsUpstream();
    const { ws } = await gateway({ TWIN_SERVICE_URL: up.url }, 'websockets:\n  maxMessageBytes: 1024\n  idleTimeoutMs: 300\n');
    const big = accepted(await connect(`${ws}/v1/twin/x`, { headers: auth }));
    const bigClosed = closed(big);
    big.send(Buffer.alloc(2048));
    expect((await bigClosed).code).toBe(1009);
    const idle = accepted(await connect(`${ws}/v1/twin/y`, { headers: auth }));
    expect(await closed(idle)).toEqual({ code: 1000, reason: 'idle timeout' });
  });

  it('pings both peers: a client that answers keeps its connection, one that does not is cut (and its upstream closed)', async () => {
    const up = await wsUpstream();
    const { ws } = await gateway({ TWIN_SERVICE_URL: up.url }, 'websockets:\n  pingIntervalMs: 150\n');
    const answering = accepted(await connect(`${ws}/v1/twin/a`, { headers: auth }));
    const pinged = new Promise<void>((resolve) => answering.once('ping', () => resolve()));
    const next = up.nextConnection();
    const silent = accepted(await connect(`${ws}/v1/twin/b`, { headers: auth, autoPong: false }));
    const silentUpstream = (await next).ws;
    const upstreamGone = closed(silentUpstream);
    expect((await closed(silent)).code).toBe(1006); // cut, no close frame
    await upstreamGone;
    await pinged;
    expect(answering.readyState).toBe(answering.OPEN);
  });

  it("the server's HTTP timeouts (keep-alive, headers, whole request) never cut an upgraded connection", async () => {
    const up = await wsUpstream();
    const { ws } = await gateway(
      { TWIN_SERVICE_URL: up.url },
      'server:\n  keepAliveTimeoutMs: 1000\n  clientHeaderTimeoutMs: 500\n  requestTimeoutMs: 1000\nwebsockets:\n  idleTimeoutMs: 0\n  pingIntervalMs: 0\n',
    );
    const client = accepted(await connect(`${ws}/v1/twin/x`, { headers: auth }));
    // Real time on purpose: these are Node's own timers on the socket, which no clock injection reaches.
    await new Promise((r) => setTimeout(r, 2500));
    expect(client.readyState).toBe(client.OPEN);
    client.send('still here');
    expect((await nextMessage(client)).data.toString()).toBe('still here');
  });

  it('text-frame inspection (route websocket.inspectText) closes with 1008 on an attack, lets prose through', async () => {
    const up = await wsUpstream();
    const { ws } = await gateway({ TWIN_SERVICE_URL: up.url }, 'routes:\n  - { prefix: /v1/twin, service: twin, websocket: { inspectText: true } }\n');
    const client = accepted(await connect(`${ws}/v1/twin/x`, { headers: auth }));
    client.send('{"q":"what is the weather like?"}');
    expect((await nextMessage(client)).data.toString()).toBe('{"q":"what is the weather like?"}');
    const done = closed(client);
    client.send('{"q":"<script>alert(1)</script>"}');
    expect(await done).toEqual({ code: 1008, reason: 'message refused (xss)' });
  });

  it('WebSocket connections hold backpressure slots: past REQUEST_QUEUE_SIZE the next upgrade gets 503', async () => {
    const up = await wsUpstream();
    const { ws } = await gateway({ TWIN_SERVICE_URL: up.url, REQUEST_QUEUE_SIZE: '2' });
    const a = accepted(await connect(`${ws}/v1/twin/a`, { headers: auth }));
    accepted(await connect(`${ws}/v1/twin/b`, { headers: auth }));
    const third = refused(await connect(`${ws}/v1/twin/c`, { headers: auth }));
    expect(third.status).toBe(503);
    expect(third.body?.error?.code).toBe('GW_GATEWAY_OVERLOADED');
    const aClosed = closed(a);
    a.close(1000);
    await aClosed;
    await new Promise((r) => setTimeout(r, 50));
    accepted(await connect(`${ws}/v1/twin/c`, { headers: auth }));
  });

  it('shutdown ends open connections with 1001 after the drain delay', async () => {
    const up = await wsUpstream();
    const { ws, g } = await gateway({ TWIN_SERVICE_URL: up.url });
    const client = accepted(await connect(`${ws}/v1/twin/x`, { headers: auth }));
    const upstreamClosed = closed(up.connections[0]!.ws);
    const done = closed(client);
    let endedAt = 0;
    void done.then(() => (endedAt = performance.now()));
    const started = performance.now();
    const closing = g.close({ drainDelayMs: 300 });
    expect(await done).toEqual({ code: 1001, reason: 'gateway shutting down' });
    expect(endedAt - started).toBeGreaterThanOrEqual(290);
    expect((await upstreamClosed).code).toBe(1001);
    await closing;
    open.splice(open.indexOf(g), 1);
  });
});
