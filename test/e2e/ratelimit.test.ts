import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/auth/api-keys.js';
import { cleanup, startGateway, waitFor, type GatewayProcess } from '../helpers/gateway.js';
import { call, type HttpResult } from '../helpers/http.js';
import { parsePrometheusText } from '../helpers/prometheus.js';
import { describeWithRedis, startRedis, type RedisServer } from '../helpers/redis.js';
import { standIn } from '../helpers/upstreams.js';

/*
 * Two gateway processes sharing one real Redis: the quota is exact across them, and when
 * Redis dies they keep serving with per-replica quotas, then share again once it is back —
 * without being restarted.
 */

const KEYS = Array.from({ length: 8 }, (_, i) => `e2e-ratelimit-key-${i}-0123456789`);

let redis: RedisServer;
let a: GatewayProcess;
let b: GatewayProcess;

/** Run `tasks` with at most `concurrency` in flight. */
async function pool<T>(count: number, concurrency: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        results[i] = await task(i);
      }
    }),
  );
  return results;
}

/** A request as a given client (X-Forwarded-For through the trusted loopback proxy) with a given key. */
function as(gw: GatewayProcess, client: string, key: string, path = '/v1/twin/items'): Promise<HttpResult> {
  return call(`${gw.url}${path}`, { headers: { 'x-forwarded-for': client, 'x-api-key': key } });
}

async function metric(gw: GatewayProcess, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const families = parsePrometheusText((await call(`${gw.url}/metrics`, { anonymous: true })).text);
  for (const family of families.values()) {
    for (const s of family.samples) {
      if (s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) return s.value;
    }
  }
  return undefined;
}

/** The store's state-change log lines of both replicas, to explain a failed exact count. */
function storeDiagnostics(): string {
  return [a, b].map((gw, i) => `replica ${i}: ${JSON.stringify(gw.logs.filter((l) => l.component === 'state'))}`).join('\n');
}

const storeUp = (gw: GatewayProcess) => metric(gw, 'gateway_state_store_up', { backend: 'redis' });

describeWithRedis('rate limiting across two replicas sharing Redis', () => {
  beforeAll(async () => {
    redis = await startRedis();
    const twin = await standIn('twin');
    const yaml = `server:
  trustProxy: [127.0.0.1]
auth:
  apiKeys:
${KEYS.map((k, i) => `    - { name: client-${i}, sha256: ${sha256Hex(k)}, scopes: [read] }`).join('\n')}
rateLimit:
  threat: { tarpitMs: 20 }
# Exactness needs Redis to answer: a call slower than the command timeout is decided by the
# replica alone (the fallback the last test exercises). On this shared 2-core machine, with
# other suites running, Redis or a gateway is sometimes not scheduled for more than the
# default 50 ms, so the exact-count runs give it a second.
state: { commandTimeoutMs: 1000 }
`;
    const env = { REDIS_URL: redis.url, RATE_LIMIT_REQUESTS: '100', RATE_LIMIT_WINDOW_SECONDS: '60', TWIN_SERVICE_URL: twin.url };
    [a, b] = await Promise.all([startGateway({ env, yaml }), startGateway({ env, yaml })]);
    expect(await storeUp(a)).toBe(1);
    expect(await storeUp(b)).toBe(1);
  });

  afterAll(cleanup);

  it('per principal: 300 concurrent requests spread over both replicas and 50 addresses -> exactly 100 pass', async () => {
    const results = await pool(300, 60, (i) => as(i % 2 ? a : b, `203.0.113.${i % 50}`, KEYS[0]!));
    const passed = results.filter((r) => r.status === 200);
    const refused = results.filter((r) => r.status === 429);
    expect(passed, storeDiagnostics()).toHaveLength(100);
    expect(refused).toHaveLength(200);
    // Both replicas let some through: the count is shared, not per replica.
    const byReplica = results.map((r, i) => [i % 2, r.status] as const).filter(([, s]) => s === 200);
    expect(new Set(byReplica.map(([replica]) => replica)).size).toBe(2);
    const sample = refused[0]!;
    expect(sample.json()).toEqual({
      error: { code: 'GW_RATE_LIMITED', message: expect.stringContaining('"principal" reached: 100 requests per 60 s'), requestId: sample.headers['x-request-id'] },
    });
    expect(Number(sample.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(sample.headers['retry-after'])).toBeLessThanOrEqual(60);
    expect(sample.headers['ratelimit-policy']).toBe('"ip";q=100;w=60, "principal";q=100;w=60');
    expect(sample.headers.ratelimit).toMatch(/^"principal";r=0;t=\d+$/);
    expect(sample.headers['x-ratelimit-remaining']).toBe('0');
    expect(passed.map((r) => Number(r.headers['x-ratelimit-remaining'])).sort((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, i) => i));
  });

  it('per IP: 300 concurrent requests from one address with three keys -> exactly 100 pass', async () => {
    const results = await pool(300, 60, (i) => as(i % 2 ? a : b, '198.51.100.7', KEYS[1 + (i % 3)]!));
    expect(results.filter((r) => r.status === 200), storeDiagnostics()).toHaveLength(100);
    const refused = results.filter((r) => r.status !== 200);
    expect(refused.every((r) => r.status === 429 && r.json().error.code === 'GW_RATE_LIMITED')).toBe(true);
    expect(refused[0]!.headers.ratelimit).toMatch(/^"ip";r=0;t=\d+$/);
  });

  it('Redis killed: requests keep flowing with per-replica quotas; after restart the shared quota resumes', async () => {
    await redis.kill();
    await waitFor(async () => ((await storeUp(a)) === 0 && (await storeUp(b)) === 0 ? true : undefined), 10_000, 'gateway_state_store_up 0 on both');

    // Still served, without waiting on the dead Redis; each replica counts alone now.
    const timings: number[] = [];
    const down = await pool(60, 10, async (i) => {
      const started = performance.now();
      const res = await as(i % 2 ? a : b, '192.0.2.33', KEYS[5]!);
      timings.push(performance.now() - started);
      return res;
    });
    expect(down.filter((r) => r.status === 200)).toHaveLength(60);
    expect(Math.max(...timings)).toBeLessThan(2000);
    // Per-replica quota: replica a alone lets 100 of 130 through.
    const alone = await pool(130, 20, () => as(a, '192.0.2.34', KEYS[6]!));
    expect(alone.filter((r) => r.status === 200)).toHaveLength(100);
    expect(await metric(a, 'gateway_state_store_fallbacks_total')).toBeGreaterThan(0);
    for (const gw of [a, b]) {
      // Logged once for the change, not per request.
      await gw.logMark(); // every line written so far has arrived (the log is buffered)
      expect(gw.logs.filter((l) => l.msg === 'state store unreachable: falling back to per-replica limits until it is back')).toHaveLength(1);
    }

    await redis.restart();
    await waitFor(async () => ((await storeUp(a)) === 1 && (await storeUp(b)) === 1 ? true : undefined), 15_000, 'gateway_state_store_up 1 on both', 100);
    const shared = await pool(300, 60, (i) => as(i % 2 ? a : b, `192.0.2.${100 + (i % 50)}`, KEYS[7]!));
    expect(shared.filter((r) => r.status === 200)).toHaveLength(100);
    for (const gw of [a, b]) {
      await gw.logMark();
      expect(gw.logs.filter((l) => l.msg === 'state store reachable: rate limits and blocks are shared across replicas')).toHaveLength(2);
    }
  });
});

describe('secure defaults (no Redis)', () => {
  afterAll(cleanup);

  it('loopback is limited by default in development, and a development gateway on 0.0.0.0 warns at start', async () => {
    const twin = await standIn('twin');
    const gw = await startGateway({
      // The e2e helper opts in to the loopback exemption for the other suites: here it is left at the gateway's default.
      env: { RATE_LIMIT_EXEMPT_LOOPBACK: undefined, ENVIRONMENT: 'development', GATEWAY_HOST: '0.0.0.0', RATE_LIMIT_REQUESTS: '3', TWIN_SERVICE_URL: twin.url },
    });
    const warning = await gw.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('ENVIRONMENT=development and listening on 0.0.0.0'));
    expect(warning.level).toBe(40);
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await call(`${gw.url}/v1/twin/x`)).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
  });

  it('RATE_LIMIT_EXEMPT_LOOPBACK=true exempts loopback (opt-in); no warning on a loopback address', async () => {
    const gw = await startGateway({ env: { RATE_LIMIT_EXEMPT_LOOPBACK: 'true', ENVIRONMENT: 'development', RATE_LIMIT_REQUESTS: '3' } });
    const statuses = [];
    for (let i = 0; i < 6; i++) statuses.push((await call(`${gw.url}/livez-not-a-route-${i}`)).status);
    expect(statuses).toEqual([404, 404, 404, 404, 404, 404]);
    expect(gw.logs.filter((l) => (l.level ?? 0) >= 40 && typeof l.msg === 'string' && /listening on|exemptLoopback/.test(l.msg))).toEqual([]);
  });
});
