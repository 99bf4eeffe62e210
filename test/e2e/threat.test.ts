import { afterAll, beforeAll, expect, it } from 'vitest';
import { sha256Hex } from '../../src/auth/api-keys.js';
import { cleanup, startGateway, waitFor, type GatewayProcess } from '../helpers/gateway.js';
import { call, type HttpResult } from '../helpers/http.js';
import { parsePrometheusText } from '../helpers/prometheus.js';
import { describeWithRedis, startRedis } from '../helpers/redis.js';
import { standIn } from '../helpers/upstreams.js';

/*
 * Suspicious clients across two replicas sharing Redis: a scanner (many distinct missing
 * paths), an injecting client (the validation stage's findings) and a credential stuffer
 * (401 burst) are escalated and blocked on both replicas, while a well-behaved client on the
 * same replica is served throughout; the admin endpoints list and lift blocks everywhere.
 */

const USER_KEY = 'e2e-threat-user-key-0123456789';
const READER_KEY = 'e2e-threat-reader-key-0123456789';

let a: GatewayProcess;
let b: GatewayProcess;

function as(gw: GatewayProcess, client: string, path = '/v1/twin/items', key = USER_KEY): Promise<HttpResult> {
  return call(`${gw.url}${path}`, { headers: { 'x-forwarded-for': client, 'x-api-key': key } });
}

/** Poll until `gw` refuses `client` as blocked; returns the ms it took. */
async function blockedWithin(gw: GatewayProcess, client: string, timeoutMs: number): Promise<HttpResult> {
  return waitFor(
    async () => {
      const res = await as(gw, client);
      return res.status === 403 ? res : undefined;
    },
    timeoutMs,
    `${client} blocked on ${gw.url}`,
    10,
  );
}

async function criticalDetections(gw: GatewayProcess): Promise<number> {
  const text = (await call(`${gw.url}/metrics`, { anonymous: true })).text;
  const family = parsePrometheusText(text).get('gateway_threat_level_detections');
  return family?.samples.find((s) => s.labels.level === 'critical')?.value ?? 0;
}

describeWithRedis('suspicious clients across two replicas sharing Redis', () => {
  beforeAll(async () => {
    const redis = await startRedis();
    const twin = await standIn('twin');
    const yaml = `server:
  trustProxy: [127.0.0.1]
auth:
  apiKeys:
    - { name: user, sha256: ${sha256Hex(USER_KEY)}, scopes: [read, write] }
    - { name: reader, sha256: ${sha256Hex(READER_KEY)}, scopes: [read] }
rateLimit:
  threat: { tarpitMs: 20, blockSeconds: 120 }
# A slow answer would make a replica decide alone for a second (see ratelimit.test.ts).
state: { commandTimeoutMs: 1000 }
`;
    const env = { REDIS_URL: redis.url, TWIN_SERVICE_URL: twin.url };
    [a, b] = await Promise.all([startGateway({ env, yaml }), startGateway({ env, yaml })]);
  });

  afterAll(cleanup);

  it('a scanning client is blocked on both replicas; a well-behaved client on the same replica is not', async () => {
    const scanner = '203.0.113.7';
    const good = '203.0.113.8';
    let firstRefusal: number | undefined;
    for (let i = 0; i < 40 && firstRefusal === undefined; i++) {
      const res = await as(a, scanner, `/.git/probe-${i}`);
      if (res.status === 403) firstRefusal = performance.now();
      else expect(res.status).toBe(404);
      // The neighbour keeps being served normally, without delay.
      const started = performance.now();
      expect((await as(a, good)).status).toBe(200);
      expect(performance.now() - started).toBeLessThan(1000);
    }
    expect(firstRefusal, 'the scanner was blocked on replica a').toBeDefined();
    const onB = await blockedWithin(b, scanner, 1000);
    expect(performance.now() - firstRefusal!).toBeLessThan(1500);
    expect(onB.json().error.code).toBe('GW_SECURITY_CLIENT_BLOCKED');
    expect(Number(onB.headers['retry-after'])).toBeGreaterThan(100);
    expect((await as(b, good)).status).toBe(200);
  });

  it('an injecting client is blocked on both replicas', async () => {
    const injector = '203.0.113.9';
    const payloads = ["1' OR '1'='1", '1 UNION SELECT password FROM users--', '<script>alert(1)</script>', '../../../etc/passwd', "x'; DROP TABLE users;--", '<img src=x onerror=alert(1)>'];
    let blocked = false;
    for (const q of payloads) {
      const res = await as(b, injector, `/v1/twin/search?q=${encodeURIComponent(q)}`);
      expect(res.status).toBe(403);
      const code = res.json().error.code;
      if (code === 'GW_SECURITY_CLIENT_BLOCKED') {
        blocked = true;
        break;
      }
      expect(code).toBe('GW_SECURITY_INPUT_REJECTED');
    }
    if (!blocked) await blockedWithin(b, injector, 1000);
    await blockedWithin(a, injector, 1000);
  });

  it('a 401 burst (credential stuffing) is blocked on both replicas', async () => {
    const stuffer = '203.0.113.10';
    for (let i = 0; i < 13; i++) expect((await as(a, stuffer, '/v1/twin/items', `guess-${i}`)).status).toBe(401);
    await blockedWithin(a, stuffer, 1000);
    await blockedWithin(b, stuffer, 1000);
    // Exactly one replica counted each client's change to critical.
    expect((await criticalDetections(a)) + (await criticalDetections(b))).toBe(3);
  });

  it('admin: lists the blocks on any replica and lifts one everywhere', async () => {
    const list = await call(`${b.url}/admin/blocked-clients`);
    expect(list.status).toBe(200);
    const body = list.json<{ shared: boolean; clients: Array<{ client: string; reason: string; strikes: number }> }>();
    expect(body.shared).toBe(true);
    expect(body.clients.map((c) => c.client).sort()).toEqual(['203.0.113.10', '203.0.113.7', '203.0.113.9']);
    expect(body.clients.find((c) => c.client === '203.0.113.7')).toMatchObject({ reason: 'not_found', strikes: 1 });
    expect(body.clients.find((c) => c.client === '203.0.113.9')).toMatchObject({ reason: 'input_rejected' });
    expect(body.clients.find((c) => c.client === '203.0.113.10')).toMatchObject({ reason: 'auth_failed' });

    expect((await call(`${a.url}/admin/blocked-clients`, { anonymous: true })).status).toBe(401);
    expect((await call(`${a.url}/admin/blocked-clients`, { headers: { 'x-api-key': READER_KEY } })).status).toBe(403);

    const lifted = await call(`${b.url}/admin/blocked-clients/203.0.113.7`, { method: 'DELETE' });
    expect(lifted.status).toBe(200);
    expect(lifted.json()).toEqual({ client: '203.0.113.7', unblocked: true });
    await waitFor(async () => ((await as(a, '203.0.113.7')).status === 200 ? true : undefined), 1000, 'scanner served again on replica a', 10);
    expect((await as(b, '203.0.113.9')).status).toBe(403);
    const after = (await call(`${a.url}/admin/blocked-clients`)).json<{ clients: Array<{ client: string }> }>();
    expect(after.clients.map((c) => c.client).sort()).toEqual(['203.0.113.10', '203.0.113.9']);
  });

  it('a block holds whatever notation the address comes in, and an admin lifts it in any notation', async () => {
    // Blocked on replica a in the expanded IPv4-mapped form of 198.51.100.9.
    const blocked = await call(`${a.url}/admin/blocked-clients`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client: '0:0:0:0:0:FFFF:C633:6409', seconds: 120, reason: 'notation test' }),
    });
    expect(blocked.status).toBe(201);
    expect(blocked.json().client).toBe('198.51.100.9');
    // The forwarded address is whatever the (trusted) proxy wrote: every spelling is the same client.
    for (const form of ['198.51.100.9', '::ffff:198.51.100.9', '::ffff:c633:6409']) await blockedWithin(b, form, 2000);
    // Lifted on replica b in yet another spelling.
    const lifted = await call(`${b.url}/admin/blocked-clients/${encodeURIComponent('::ffff:c633:6409')}`, { method: 'DELETE' });
    expect(lifted.json()).toEqual({ client: '198.51.100.9', unblocked: true });
    await waitFor(async () => ((await as(a, '::FFFF:198.51.100.9')).status === 200 ? true : undefined), 2000, 'served again on replica a', 10);
    expect((await as(b, '198.51.100.9')).status).toBe(200);
  });
});
