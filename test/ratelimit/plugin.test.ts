import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/auth/api-keys.js';
import { loadConfig } from '../../src/config/index.js';
import { buildGateway, type Gateway } from '../../src/server/app.js';
import { cleanup } from '../helpers/gateway.js';
import { standIn, type StandIn } from '../helpers/upstreams.js';

/*
 * The rate-limit and threat stages in-process (app.inject, memory store): quotas, headers,
 * trusted proxies, allow-list, route overrides, escalation and the admin endpoints. The
 * cross-replica behaviour (Redis) is in test/e2e/ratelimit.test.ts and threat.test.ts.
 */

const ADMIN_KEY = 'admin-key-for-ratelimit-tests';
const READER_KEY = 'reader-key-for-ratelimit-tests';
const BATCH_KEY = 'batch-key-for-ratelimit-tests';

let twin: StandIn;
const open: Gateway[] = [];
beforeAll(async () => {
  twin = await standIn('twin');
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((g) => g.close()));
});
afterAll(cleanup);

async function gateway(yaml: string, env: Record<string, string> = {}, authExtra = ''): Promise<Gateway> {
  const file = join(mkdtempSync(join(tmpdir(), 'gw-rl-')), 'gateway.yaml');
  writeFileSync(
    file,
    `auth:
${authExtra}  apiKeys:
    - { name: admin, sha256: ${sha256Hex(ADMIN_KEY)}, scopes: [admin] }
    - { name: reader, sha256: ${sha256Hex(READER_KEY)}, scopes: [read] }
    - { name: batch, sha256: ${sha256Hex(BATCH_KEY)}, scopes: [read] }
${yaml}`,
  );
  const result = loadConfig({ GATEWAY_HOST: '127.0.0.1', GATEWAY_PORT: '0', TWIN_SERVICE_URL: twin.url, ...env }, { file });
  if (!result.ok) throw new Error(result.problems.join('\n'));
  const g = await buildGateway(result.config, { logger: pino({ level: 'silent' }), processMetrics: false });
  open.push(g);
  return g;
}

function get(g: Gateway, url: string, ip: string, headers: Record<string, string> = {}, extra: Partial<InjectOptions> = {}): Promise<LightMyRequestResponse> {
  return g.app.inject({ method: 'GET', url, remoteAddress: ip, headers: { 'x-api-key': READER_KEY, ...headers }, ...extra }) as Promise<LightMyRequestResponse>;
}

async function statuses(g: Gateway, n: number, url: string, ip: string, headers: Record<string, string> = {}): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await get(g, url, ip, headers)).statusCode);
  return out;
}

const count = (xs: number[], v: number) => xs.filter((x) => x === v).length;

describe('quotas and headers', () => {
  it('per-IP quota: the IETF and X- headers, then 429 with Retry-After in the error shape', async () => {
    const g = await gateway('rateLimit: { ip: { requests: 3, windowSeconds: 60 }, principal: { requests: 100, windowSeconds: 60 } }\n');
    const first = await get(g, '/v1/twin/a', '203.0.113.1');
    expect(first.statusCode).toBe(200);
    expect(first.headers['ratelimit-policy']).toBe('"ip";q=3;w=60, "principal";q=100;w=60');
    expect(first.headers.ratelimit).toBe('"ip";r=2;t=60');
    expect(first.headers['x-ratelimit-limit']).toBe('3');
    expect(first.headers['x-ratelimit-remaining']).toBe('2');
    expect(first.headers['x-ratelimit-reset']).toBe('60');
    await get(g, '/v1/twin/a', '203.0.113.1');
    await get(g, '/v1/twin/a', '203.0.113.1');
    const refused = await get(g, '/v1/twin/a', '203.0.113.1', { 'x-request-id': 'rl-1' });
    expect(refused.statusCode).toBe(429);
    expect(refused.json()).toEqual({
      error: { code: 'GW_RATE_LIMITED', message: expect.stringContaining('Rate limit "ip" reached: 3 requests per 60 s'), requestId: 'rl-1' },
    });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(59);
    expect(refused.headers.ratelimit).toMatch(/^"ip";r=0;t=(59|60)$/);
    expect(refused.headers['x-ratelimit-remaining']).toBe('0');
    // Another client is not affected; anonymous requests and 404s count too.
    expect((await get(g, '/v1/twin/a', '203.0.113.2')).statusCode).toBe(200);
    expect(await statuses(g, 4, '/nowhere', '203.0.113.3', { 'x-api-key': '' })).toEqual([404, 404, 404, 429]);
  });

  it('per-principal quota across client addresses; the RateLimit header names the tightest policy', async () => {
    const g = await gateway('rateLimit: { ip: { requests: 100, windowSeconds: 60 }, principal: { requests: 4, windowSeconds: 30 } }\n');
    const results: LightMyRequestResponse[] = [];
    for (let i = 0; i < 6; i++) results.push(await get(g, '/v1/twin/p', `198.51.100.${i + 1}`));
    expect(results.map((r) => r.statusCode)).toEqual([200, 200, 200, 200, 429, 429]);
    expect(results[0]!.headers.ratelimit).toBe('"principal";r=3;t=30');
    expect(results[4]!.json().error.message).toContain('Rate limit "principal" reached: 4 requests per 30 s');
    // Another principal from the same addresses has its own budget.
    expect((await get(g, '/v1/twin/p', '198.51.100.1', { 'x-api-key': ADMIN_KEY })).statusCode).toBe(200);
  });

  it('a route quota is a separate budget; rateLimit: false exempts a route', async () => {
    const g = await gateway(`rateLimit: { ip: { requests: 100, windowSeconds: 60 }, principal: { requests: 5, windowSeconds: 60 } }
routes:
  - { id: knowledge, prefix: /v1/knowledge, service: twin, rateLimit: { requests: 2, windowSeconds: 10 } }
  - { id: fog, prefix: /v1/fog, service: twin, rateLimit: false }
`);
    const route = await statuses(g, 3, '/v1/knowledge/search', '192.0.2.10');
    expect(route).toEqual([200, 200, 429]);
    const limited = await get(g, '/v1/knowledge/search', '192.0.2.10');
    expect(limited.headers['ratelimit-policy']).toBe('"ip";q=100;w=60, "route:knowledge";q=2;w=10');
    expect(await statuses(g, 5, '/v1/twin/x', '192.0.2.10')).toEqual([200, 200, 200, 200, 200]);
    expect((await get(g, '/v1/twin/x', '192.0.2.10')).statusCode).toBe(429);
    const exempt = await statuses(g, 10, '/v1/fog/jobs', '192.0.2.10');
    expect(count(exempt, 200)).toBe(10);
    expect((await get(g, '/v1/fog/jobs', '192.0.2.10')).headers['ratelimit-policy']).toBeUndefined();
  });

  it('requests refused before the quota check (bad credentials) still use up the per-IP quota', async () => {
    const g = await gateway('rateLimit: { ip: { requests: 3, windowSeconds: 60 } }\n');
    expect(await statuses(g, 3, '/v1/twin/x', '203.0.113.30', { 'x-api-key': 'not-a-key' })).toEqual([401, 401, 401]);
    const res = await get(g, '/v1/twin/x', '203.0.113.30');
    expect(res.statusCode).toBe(429);
    expect(res.headers.ratelimit).toMatch(/^"ip";r=0;/);
  });

  it('never limits the liveness and readiness probes', async () => {
    const g = await gateway('rateLimit: { ip: { requests: 1, windowSeconds: 60 } }\n');
    const live = await statuses(g, 5, '/livez', '203.0.113.9');
    expect(live).toEqual([200, 200, 200, 200, 200]);
  });

  it('rateLimit.enabled: false turns the quotas off', async () => {
    const g = await gateway('rateLimit: { enabled: false, ip: { requests: 1, windowSeconds: 60 } }\n');
    expect(count(await statuses(g, 5, '/v1/twin/x', '203.0.113.9'), 200)).toBe(5);
  });
});

describe('client address and allow-list', () => {
  it('takes X-Forwarded-For only from a trusted proxy (server.trustProxy)', async () => {
    const g = await gateway('server: { trustProxy: [10.0.0.0/8] }\nrateLimit: { ip: { requests: 2, windowSeconds: 60 } }\n');
    // Through the trusted proxy: each forwarded client has its own budget.
    for (const client of ['203.0.113.20', '203.0.113.21']) {
      expect(await statuses(g, 3, '/v1/twin/x', '10.1.2.3', { 'x-forwarded-for': `${client}` })).toEqual([200, 200, 429]);
    }
    // A client that sets the header itself gains nothing: its own address is the key.
    const spoofing = [];
    for (let i = 0; i < 3; i++) spoofing.push((await get(g, '/v1/twin/x', '198.51.100.77', { 'x-forwarded-for': `192.0.2.${i}` })).statusCode);
    expect(spoofing).toEqual([200, 200, 429]);
    // Nor by prepending addresses when it comes through the proxy.
    const chained = [];
    for (let i = 0; i < 3; i++) chained.push((await get(g, '/v1/twin/x', '10.1.2.3', { 'x-forwarded-for': `192.0.2.${i}, 203.0.113.99` })).statusCode);
    expect(chained).toEqual([200, 200, 429]);
  });

  it('keys IPv6 clients by /64 and IPv4-mapped addresses as IPv4', async () => {
    const g = await gateway('rateLimit: { ip: { requests: 2, windowSeconds: 60 } }\n');
    expect((await get(g, '/v1/twin/x', '2001:db8:1:2::1')).statusCode).toBe(200);
    expect((await get(g, '/v1/twin/x', '2001:db8:1:2:ffff::9')).statusCode).toBe(200);
    expect((await get(g, '/v1/twin/x', '2001:db8:1:2::abcd')).statusCode).toBe(429);
    expect((await get(g, '/v1/twin/x', '2001:db8:1:3::1')).statusCode).toBe(200);
    expect((await get(g, '/v1/twin/x', '::ffff:192.0.2.55')).statusCode).toBe(200);
    expect((await get(g, '/v1/twin/x', '192.0.2.55')).statusCode).toBe(200);
    expect((await get(g, '/v1/twin/x', '::ffff:192.0.2.55')).statusCode).toBe(429);
  });

  it('a client cannot dodge its quota by changing the notation of its address', async () => {
    const g = await gateway('rateLimit: { ip: { requests: 3, windowSeconds: 60 }, principal: { requests: 1000, windowSeconds: 60 } }\n');
    // One IPv4 client in four spellings (inject passes the address as is, as a proxy's X-Forwarded-For would).
    const forms = ['192.0.2.77', '::ffff:192.0.2.77', '::ffff:c000:24d', '0:0:0:0:0:FFFF:C000:024D', '192.0.2.77'];
    const seen = [];
    for (const ip of forms) seen.push((await get(g, '/v1/twin/x', ip)).statusCode);
    expect(seen).toEqual([200, 200, 200, 429, 429]);
    // IPv6 loopback in two spellings shares one budget, and not the IPv4-mapped clients' one.
    expect(await statuses(g, 3, '/v1/twin/x', '0:0:0:0:0:0:0:1')).toEqual([200, 200, 200]);
    expect((await get(g, '/v1/twin/x', '::1')).statusCode).toBe(429);
    expect((await get(g, '/v1/twin/x', '::ffff:7f00:1')).statusCode).toBe(200);
    expect((await get(g, '/v1/twin/x', '::ffff:c000:24e')).statusCode).toBe(200);
  });

  it('a block holds for every notation of the address; an admin unblocks it in any notation', async () => {
    const g = await gateway('rateLimit: { threat: { blockSeconds: 120, tarpitMs: 10 } }\n');
    const admin = { 'x-api-key': ADMIN_KEY, 'content-type': 'application/json' };
    const blocked = await get(g, '/admin/blocked-clients', '203.0.113.200', admin, {
      method: 'POST',
      payload: JSON.stringify({ client: '0:0:0:0:0:ffff:c633:64b4', seconds: 90, reason: 'test' }),
    });
    expect(blocked.statusCode).toBe(201);
    expect(blocked.json().client).toBe('198.51.100.180');
    for (const ip of ['198.51.100.180', '::ffff:198.51.100.180', '::ffff:c633:64b4']) {
      expect((await get(g, '/v1/twin/x', ip)).json().error?.code, ip).toBe('GW_SECURITY_CLIENT_BLOCKED');
    }
    // The IPv6 loopback is a different client: not caught by that block.
    expect((await get(g, '/v1/twin/x', '::1')).statusCode).toBe(200);
    const lifted = await get(g, `/admin/blocked-clients/${encodeURIComponent('::FFFF:198.51.100.180')}`, '203.0.113.200', { 'x-api-key': ADMIN_KEY }, { method: 'DELETE' });
    expect(lifted.json()).toEqual({ client: '198.51.100.180', unblocked: true });
    expect((await get(g, '/v1/twin/x', '::ffff:c633:64b4')).statusCode).toBe(200);
    // Blocking the loopback in its long form blocks ::1 only.
    await get(g, '/admin/blocked-clients', '203.0.113.200', admin, { method: 'POST', payload: JSON.stringify({ client: '0:0:0:0:0:0:0:1', seconds: 60, reason: 'test' }) });
    expect((await get(g, '/v1/twin/x', '::1')).statusCode).toBe(403);
    expect((await get(g, '/v1/twin/x', '::ffff:127.0.0.1')).statusCode).toBe(200);
  });

  it('allow-list: configured CIDRs and API key names are never limited nor scored', async () => {
    const g = await gateway('rateLimit:\n  ip: { requests: 1, windowSeconds: 60 }\n  allowList: { keys: [batch], cidrs: [127.0.0.0/8, 10.20.0.0/16] }\n');
    expect(count(await statuses(g, 5, '/v1/twin/x', '127.0.0.1'), 200)).toBe(5);
    expect(count(await statuses(g, 5, '/v1/twin/x', '10.20.3.4'), 200)).toBe(5);
    expect(count(await statuses(g, 5, '/v1/twin/x', '203.0.113.40', { 'x-api-key': BATCH_KEY }), 200)).toBe(5);
    expect(count(await statuses(g, 40, '/scan-me', '10.20.3.4'), 404)).toBe(40);
    // Whoever reports them (here the validation stage), allow-listed addresses are not scored.
    for (let i = 0; i < 10; i++) g.rateLimiting.threats.record('10.20.3.4', 'input_rejected');
    await g.rateLimiting.threats.settled();
    expect(await g.rateLimiting.threats.listBlocked()).toEqual([]);
    expect((await get(g, '/v1/twin/x', '10.20.3.4')).statusCode).toBe(200);
    expect(await statuses(g, 2, '/v1/twin/x', '203.0.113.40')).toEqual([200, 429]);
  });

  it('loopback is limited and blocked like any client by default; rateLimit.exemptLoopback opts it out', async () => {
    const strict = await gateway('rateLimit: { ip: { requests: 2, windowSeconds: 60 } }\n');
    expect(strict.config.rateLimit.exemptLoopback).toBe(false);
    expect(await statuses(strict, 3, '/v1/twin/x', '127.0.0.1')).toEqual([200, 200, 429]);
    expect(await statuses(strict, 3, '/v1/twin/x', '::1')).toEqual([200, 200, 429]);
    for (let i = 0; i < 5; i++) strict.rateLimiting.threats.record('127.0.0.1', 'input_rejected');
    await strict.rateLimiting.threats.settled();
    expect((await get(strict, '/v1/twin/x', '::ffff:127.0.0.1')).json().error.code).toBe('GW_SECURITY_CLIENT_BLOCKED');

    const exempt = await gateway('rateLimit: { exemptLoopback: true, ip: { requests: 2, windowSeconds: 60 } }\n');
    for (const ip of ['127.0.0.1', '::1', '::ffff:127.0.0.1', '0:0:0:0:0:0:0:1']) expect(count(await statuses(exempt, 4, '/v1/twin/x', ip), 200), ip).toBe(4);
    expect(await statuses(exempt, 3, '/v1/twin/x', '203.0.113.41')).toEqual([200, 200, 429]);
  });

  it('rejects an allow-listed key name that no API key has', () => {
    const result = loadConfig({}, { file: writeYaml('rateLimit: { allowList: { keys: [nobody] } }\n') });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.problems[0]).toMatch(/rateLimit\.allowList\.keys\[0\]: no API key is named "nobody"/);
  });
});

function writeYaml(text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'gw-rl-')), 'gateway.yaml');
  writeFileSync(file, text);
  return file;
}

describe('suspicious clients', () => {
  const THREAT = `rateLimit:
  ip: { requests: 1000, windowSeconds: 60 }
  threat: { tarpitMs: 20, blockSeconds: 30 }
`;

  it('blocks a scanning client (distinct missing paths) with 403 + Retry-After; others unaffected', async () => {
    const g = await gateway(THREAT);
    // The same missing path again and again is not scanning.
    for (let i = 0; i < 30; i++) await get(g, '/same-missing-path', '203.0.113.60');
    await g.rateLimiting.threats.settled();
    expect(g.rateLimiting.threats.levelOf('203.0.113.60')).toBe('low');
    // 30 distinct paths x 4 points: critical at 25.
    for (let i = 0; i < 30; i++) await get(g, `/probe/${i}.php`, '203.0.113.61');
    await g.rateLimiting.threats.settled();
    const blocked = await get(g, '/v1/twin/x', '203.0.113.61');
    expect(blocked.statusCode).toBe(403);
    expect(blocked.json().error.code).toBe('GW_SECURITY_CLIENT_BLOCKED');
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(25);
    expect(Number(blocked.headers['retry-after'])).toBeLessThanOrEqual(30);
    expect((await get(g, '/v1/twin/x', '203.0.113.62')).statusCode).toBe(200);
    const metrics = await g.metrics.registry.metrics();
    expect(metrics).toMatch(/gateway_threat_level_detections\{level="medium"\} 1\n/);
    expect(metrics).toMatch(/gateway_threat_level_detections\{level="high"\} 1\n/);
    expect(metrics).toMatch(/gateway_threat_level_detections\{level="critical"\} 1\n/);
    expect(metrics).toMatch(/gateway_blocked_clients 1\n/);
    expect(metrics).toMatch(/gateway_threat_actions_total\{action="blocked"\} [1-9]/);
    expect(metrics).toMatch(/gateway_threat_actions_total\{action="tarpitted"\} [1-9]/);
  });

  it('blocks a client after a burst of 401s', async () => {
    const g = await gateway(THREAT);
    const seen = await statuses(g, 13, '/v1/twin/x', '203.0.113.70', { 'x-api-key': 'wrong-key' });
    expect(count(seen, 401)).toBe(13);
    await g.rateLimiting.threats.settled();
    expect((await get(g, '/v1/twin/x', '203.0.113.70')).statusCode).toBe(403);
  });

  it('blocks an injecting client (the validation stage reports to the same detector)', async () => {
    const g = await gateway(THREAT);
    // 25 points each (decaying): the fifth reaches critical.
    for (const q of ["1' OR '1'='1", '1 UNION SELECT password FROM users--', '<script>alert(1)</script>', '../../../../etc/passwd', "admin'--"]) {
      const res = await get(g, `/v1/twin/search?q=${encodeURIComponent(q)}`, '203.0.113.80');
      expect(res.json().error?.code, `${q}: ${res.body}`).toBe('GW_SECURITY_INPUT_REJECTED');
    }
    await g.rateLimiting.threats.settled();
    const res = await get(g, '/v1/twin/search?q=hello', '203.0.113.80');
    expect(res.json().error.code).toBe('GW_SECURITY_CLIENT_BLOCKED');
  });

  it('medium tightens the quotas, high tarpits each request', async () => {
    const g = await gateway(`rateLimit:
  ip: { requests: 10, windowSeconds: 60 }
  threat: { tarpitMs: 300, mediumLimitFactor: 0.5 }
`);
    const threats = g.rateLimiting.threats;
    await threats.apply('203.0.113.90', 'auth_failed');
    await threats.apply('203.0.113.90', 'auth_failed');
    await threats.apply('203.0.113.90', 'auth_failed');
    await threats.apply('203.0.113.90', 'auth_failed');
    expect(threats.levelOf('203.0.113.90')).toBe('medium');
    const tightened = await get(g, '/v1/twin/x', '203.0.113.90');
    expect(tightened.headers['ratelimit-policy']).toContain('"ip";q=5;w=60');
    for (let i = 0; i < 4; i++) await threats.apply('203.0.113.90', 'auth_failed');
    expect(threats.levelOf('203.0.113.90')).toBe('high');
    const started = performance.now();
    const slow = await get(g, '/v1/twin/x', '203.0.113.90');
    expect(slow.statusCode).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(280);
    const fastStart = performance.now();
    expect((await get(g, '/v1/twin/x', '203.0.113.91')).statusCode).toBe(200);
    expect(performance.now() - fastStart).toBeLessThan(250);
  });
});

describe('admin endpoints', () => {
  it('list, unblock and block clients; admin scope required', async () => {
    const g = await gateway('rateLimit: { threat: { blockSeconds: 120, tarpitMs: 10 } }\n');
    for (let i = 0; i < 30; i++) await get(g, `/wp-${i}`, '203.0.113.100');
    await g.rateLimiting.threats.settled();
    const admin = { 'x-api-key': ADMIN_KEY };

    const list = await get(g, '/admin/blocked-clients', '127.0.0.1', admin);
    expect(list.statusCode).toBe(200);
    expect(list.json()).toEqual({
      shared: false,
      clients: [
        {
          client: '203.0.113.100',
          reason: 'not_found',
          strikes: 1,
          blockedAt: expect.any(String),
          expiresAt: expect.any(String),
          retryAfterSeconds: expect.any(Number),
        },
      ],
    });
    expect(list.json().clients[0].retryAfterSeconds).toBeGreaterThan(110);

    expect((await get(g, '/admin/blocked-clients', '127.0.0.1', { 'x-api-key': '' })).statusCode).toBe(401);
    expect((await get(g, '/admin/blocked-clients', '127.0.0.1', { 'x-api-key': READER_KEY })).statusCode).toBe(403);

    const del = await get(g, '/admin/blocked-clients/203.0.113.100', '127.0.0.1', admin, { method: 'DELETE' });
    expect(del.statusCode).toBe(200);
    expect(del.json()).toEqual({ client: '203.0.113.100', unblocked: true });
    // Unblocked and forgiven: served at once, not tarpitted.
    const started = performance.now();
    expect((await get(g, '/v1/twin/x', '203.0.113.100')).statusCode).toBe(200);
    expect(performance.now() - started).toBeLessThan(500);
    const again = await get(g, '/admin/blocked-clients/203.0.113.100', '127.0.0.1', admin, { method: 'DELETE' });
    expect(again.statusCode).toBe(404);
    expect(again.json().error.code).toBe('GW_ADMIN_CLIENT_NOT_BLOCKED');
    const bad = await get(g, '/admin/blocked-clients/not-an-ip', '127.0.0.1', admin, { method: 'DELETE' });
    expect(bad.statusCode).toBe(400);

    const manual = await get(g, '/admin/blocked-clients', '127.0.0.1', { ...admin, 'content-type': 'application/json' }, {
      method: 'POST',
      payload: JSON.stringify({ client: '2001:db8:aa:bb::17', seconds: 90, reason: 'abuse report #12' }),
    });
    expect(manual.statusCode).toBe(201);
    expect(manual.json()).toMatchObject({ client: '2001:db8:aa:bb::/64', reason: 'admin: abuse report #12', strikes: 0, retryAfterSeconds: 90 });
    expect((await get(g, '/v1/twin/x', '2001:db8:aa:bb::99')).statusCode).toBe(403);
  });

  it('needs MFA when auth.requireMfaForAdmin is set', async () => {
    const g = await gateway('', {}, '  requireMfaForAdmin: true\n');
    const res = await get(g, '/admin/blocked-clients', '127.0.0.1', { 'x-api-key': ADMIN_KEY });
    expect(res.statusCode).toBe(403);
    expect(res.json().error.code).toBe('GW_AUTH_MFA_REQUIRED');
    const token = await g.tokens.issue('ops', ['admin'], ['pwd', 'otp', 'mfa']);
    const ok = await get(g, '/admin/blocked-clients', '127.0.0.1', { authorization: `Bearer ${token.token}`, 'x-api-key': '' });
    expect(ok.statusCode).toBe(200);
  });
});
