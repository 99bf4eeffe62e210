import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { loadConfig } from '../../src/config/index.js';
import { buildGateway, type Gateway } from '../../src/server/app.js';
import { cleanup, onCleanup } from '../helpers/gateway.js';
import { describeWithRedis, startRedis } from '../helpers/redis.js';
import { standIns } from '../helpers/upstreams.js';
import { closed, connect, isRefused, type Refused } from './helpers.js';

/*
 * GET /v1/events: the event bus as a WebSocket and as SSE, filtered by type, authenticated,
 * and (with Redis) carrying a shift made on another replica.
 */

const KEY = 'events-test-key-0123456789abcdef';
const open: Gateway[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((g) => g.close()));
});
afterAll(cleanup);

async function gateway(env: Record<string, string> = {}): Promise<{ g: Gateway; http: string; ws: string }> {
  const ups = await standIns(['twin']);
  const file = join(mkdtempSync(join(tmpdir(), 'gw-events-')), 'gateway.yaml');
  writeFileSync(file, 'routes:\n  - { id: twin, prefix: /v1/twin, service: twin, split: { canary: { urls: ["' + ups.env.TWIN_SERVICE_URL + '"] } } }\n');
  const result = loadConfig({ GATEWAY_HOST: '127.0.0.1', GATEWAY_PORT: '0', API_KEY: KEY, JWT_SECRET_KEY: 'events-test-jwt-secret-0123456789', GATEWAY_DRAIN_DELAY_MS: '0', ...ups.env, ...env }, { file });
  if (!result.ok) throw new Error(result.problems.join('\n'));
  const g = await buildGateway(result.config, { logger: pino({ level: 'silent' }), processMetrics: false });
  open.push(g);
  const http = await g.listen();
  return { g, http, ws: http.replace('http', 'ws') };
}

const auth = { 'x-api-key': KEY };

async function shift(http: string, canary: number): Promise<void> {
  const res = await fetch(`${http}/admin/traffic/twin`, {
    method: 'PUT',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ stable: 100 - canary, canary, reason: 'events test' }),
  });
  expect(res.status).toBe(200);
}

interface EventMessage {
  id: string;
  at: string;
  event: { type: string; route?: string; canary?: number };
}

function messages(ws: WebSocket): EventMessage[] {
  const got: EventMessage[] = [];
  ws.on('message', (data: Buffer) => got.push(JSON.parse(data.toString()) as EventMessage));
  return got;
}

async function until<T>(fn: () => T | undefined, timeoutMs: number): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (performance.now() > deadline) throw new Error('not seen in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

function accepted(v: WebSocket | Refused): WebSocket {
  if (isRefused(v)) throw new Error(`refused: ${v.status} ${JSON.stringify(v.body)}`);
  return v;
}

describe('/v1/events', () => {
  it('needs credentials (401 before the upgrade), refuses an unknown type filter (400), and streams traffic shifts over a WebSocket', async () => {
    const { ws, http } = await gateway();
    const anonymous = await connect(`${ws}/v1/events`);
    expect(isRefused(anonymous) && anonymous.status).toBe(401);
    const badFilter = await connect(`${ws}/v1/events?types=nope`, { headers: auth });
    expect(isRefused(badFilter) && badFilter.body?.error?.code).toBe('GW_REQUEST_INVALID');

    const all = accepted(await connect(`${ws}/v1/events`, { headers: auth }));
    const health = accepted(await connect(`${ws}/v1/events?types=service.health,breaker.*`, { headers: auth }));
    const traffic = accepted(await connect(`${ws}/v1/events?types=traffic.*`, { headers: auth }));
    const [allGot, healthGot, trafficGot] = [messages(all), messages(health), messages(traffic)];
    await shift(http, 30);
    const seen = await until(() => trafficGot.find((m) => m.event.type === 'traffic.shifted'), 5000);
    expect(seen.event).toEqual({ type: 'traffic.shifted', route: 'twin', version: expect.any(Number), canary: 30 });
    expect(seen.id).toEqual(expect.any(String));
    await until(() => allGot.find((m) => m.event.type === 'traffic.shifted'), 5000);
    expect(healthGot.filter((m) => m.event.type === 'traffic.shifted')).toEqual([]);
  });

  it('serves SSE for curl: event lines with id and type; shutdown ends the stream with a notice', async () => {
    const { http, g } = await gateway();
    const res = await fetch(`${http}/v1/events?types=traffic.shifted`, { headers: auth });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = res.body!.getReader();
    let text = '';
    const readUntil = async (needle: string) => {
      while (!text.includes(needle)) {
        const { value, done } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
    };
    await readUntil(': connected');
    await shift(http, 40);
    await readUntil('"canary":40');
    expect(text).toMatch(/id: \S+\nevent: traffic\.shifted\ndata: \{"id":"[^"]+","at":"[^"]+","event":\{"type":"traffic.shifted","route":"twin","version":\d+,"canary":40\}\}\n\n/);
    const closing = g.close();
    await readUntil('event: shutdown');
    expect(text).toContain('event: shutdown\ndata: {"reason":"gateway shutting down"}');
    await closing;
    open.splice(open.indexOf(g), 1);
  });

  it('a listener that reconnects resumes after the last event it saw (SSE Last-Event-ID, WebSocket ?since=)', async () => {
    const { http, ws } = await gateway();
    const first = messages(accepted(await connect(`${ws}/v1/events?types=traffic.shifted`, { headers: auth })));
    await shift(http, 10);
    const seen = await until(() => first.find((m) => m.event.canary === 10), 5000);
    await shift(http, 20); // happens while the next listeners are away
    await until(() => first.find((m) => m.event.canary === 20), 5000);

    // The replay comes right behind the 101: listen before the socket opens (as browsers do).
    const resumedSocket = new WebSocket(`${ws}/v1/events?types=traffic.shifted&since=${encodeURIComponent(seen.id)}`, { headers: auth });
    onCleanup(() => resumedSocket.terminate());
    const resumed = messages(resumedSocket);
    const replayed = await until(() => resumed.find((m) => m.event.canary === 20), 5000);
    expect(replayed.id).not.toBe(seen.id);
    expect(resumed.find((m) => m.event.canary === 10)).toBeUndefined();

    const abort = new AbortController();
    const res = await fetch(`${http}/v1/events?types=traffic.shifted`, { headers: { ...auth, 'last-event-id': seen.id }, signal: abort.signal });
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes('"canary":20')) text += new TextDecoder().decode((await reader.read()).value);
    expect(text).not.toContain('"canary":10');
    abort.abort();
  });

  it('a browser EventSource authenticates with a single-use ticket (?ticket=)', async () => {
    const { http } = await gateway();
    const { ticket } = (await (await fetch(`${http}/auth/ws-ticket`, { method: 'POST', headers: auth })).json()) as { ticket: string };
    const abort = new AbortController();
    const res = await fetch(`${http}/v1/events?ticket=${encodeURIComponent(ticket)}`, { signal: abort.signal });
    expect(res.status).toBe(200);
    abort.abort();
    const again = await fetch(`${http}/v1/events?ticket=${encodeURIComponent(ticket)}`);
    expect(again.status).toBe(401);
    expect(((await again.json()) as { error: { code: string } }).error.code).toBe('GW_AUTH_TICKET_INVALID');
    // Proxied HTTP routes take no ticket.
    const { ticket: other } = (await (await fetch(`${http}/auth/ws-ticket`, { method: 'POST', headers: auth })).json()) as { ticket: string };
    expect((await fetch(`${http}/v1/twin/x?ticket=${encodeURIComponent(other)}`)).status).toBe(401);
  });

  it('a WebSocket listener is ended with 1001 on shutdown', async () => {
    const { ws, g } = await gateway();
    const listener = accepted(await connect(`${ws}/v1/events`, { headers: auth }));
    const done = closed(listener);
    const closing = g.close();
    expect(await done).toEqual({ code: 1001, reason: 'gateway shutting down' });
    await closing;
    open.splice(open.indexOf(g), 1);
  });
});

describe('/v1/events: breakers and client blocks', () => {
  it('a breaker that opens is announced; a client block only to admin listeners', async () => {
    const { sha256Hex } = await import('../../src/auth/api-keys.js');
    const readerKey = 'events-reader-key-0123456789abcdef';
    const failing = await standIns(['twin']);
    failing.byName.twin.behaviour.failStatus = 500;
    const file = join(mkdtempSync(join(tmpdir(), 'gw-events-')), 'gateway.yaml');
    writeFileSync(
      file,
      `auth:\n  apiKeys:\n    - { name: reader, sha256: ${sha256Hex(readerKey)}, scopes: [read] }\n` +
        'services:\n  twin:\n    breaker: { volumeThreshold: 3, errorThresholdPercentage: 50 }\n    retries: { maxRetries: 0 }\n',
    );
    const result = loadConfig({ GATEWAY_HOST: '127.0.0.1', GATEWAY_PORT: '0', API_KEY: KEY, GATEWAY_DRAIN_DELAY_MS: '0', ...failing.env }, { file });
    if (!result.ok) throw new Error(result.problems.join('\n'));
    const g = await buildGateway(result.config, { logger: pino({ level: 'silent' }), processMetrics: false });
    open.push(g);
    const http = await g.listen();
    const ws = http.replace('http', 'ws');
    const admin = messages(accepted(await connect(`${ws}/v1/events`, { headers: auth })));
    const reader = messages(accepted(await connect(`${ws}/v1/events`, { headers: { 'x-api-key': readerKey } })));

    for (let i = 0; i < 4; i++) await (await fetch(`${http}/v1/twin/x`, { headers: auth })).arrayBuffer();
    const opened = await until(() => admin.find((m) => m.event.type === 'breaker.state'), 5000);
    expect(opened.event).toMatchObject({ type: 'breaker.state', service: 'twin', state: 'open' });
    await until(() => reader.find((m) => m.event.type === 'breaker.state'), 5000);

    const blocked = await fetch(`${http}/admin/blocked-clients`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ client: '203.0.113.7', seconds: 60, reason: 'events test' }),
    });
    expect(blocked.status).toBe(201);
    const block = await until(() => admin.find((m) => m.event.type === 'client.blocked'), 5000);
    expect(block.event).toMatchObject({ type: 'client.blocked', client: '203.0.113.7', seconds: 60 });
    await new Promise((r) => setTimeout(r, 200));
    expect(reader.filter((m) => m.event.type === 'client.blocked')).toEqual([]);
  });
});

describeWithRedis('/v1/events across replicas (Redis)', () => {
  it('a listener on replica B sees a shift made on replica A within 1 s', async () => {
    const redis = await startRedis();
    const a = await gateway({ REDIS_URL: redis.url });
    const b = await gateway({ REDIS_URL: redis.url });
    const listener = accepted(await connect(`${b.ws}/v1/events?types=traffic.shifted`, { headers: auth }));
    const got = messages(listener);
    const started = performance.now();
    await shift(a.http, 25);
    const seen = await until(() => got.find((m) => m.event.canary === 25), 5000);
    const elapsedMs = performance.now() - started;
    expect(seen.event).toMatchObject({ type: 'traffic.shifted', route: 'twin', canary: 25 });
    console.log(`/v1/events cross-replica latency: ${elapsedMs.toFixed(1)} ms`);
    expect(elapsedMs).toBeLessThan(1000);
    // One delivery although both replicas apply and announce the shift (keyed event).
    await new Promise((r) => setTimeout(r, 200));
    expect(got.filter((m) => m.event.canary === 25)).toHaveLength(1);
  });
});
