import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { buildGateway, type Gateway } from '../../src/server/app.js';
import { cleanup, onCleanup, waitFor } from '../helpers/gateway.js';
import { describeWithRedis, startRedis } from '../helpers/redis.js';

const open: Gateway[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((g) => g.close()));
});

async function gateway(env: Record<string, string> = {}, yaml?: string): Promise<Gateway> {
  let file: string | undefined;
  if (yaml !== undefined) {
    file = join(mkdtempSync(join(tmpdir(), 'gw-app-')), 'gateway.yaml');
    writeFileSync(file, yaml);
  }
  const result = loadConfig({ GATEWAY_HOST: '127.0.0.1', GATEWAY_PORT: '0', ...env }, file ? { file } : {});
  if (!result.ok) throw new Error(result.problems.join('\n'));
  const g = await buildGateway(result.config, { logger: pino({ level: 'silent' }), processMetrics: false });
  open.push(g);
  return g;
}

describe('gateway assembly (in-process)', () => {
  it('answers unknown paths with GW_ROUTE_NOT_FOUND and the request id it was given', async () => {
    const g = await gateway();
    const res = await g.app.inject({ method: 'GET', url: '/nope?x=1', headers: { 'x-request-id': 'abc-1' } });
    expect(res.statusCode).toBe(404);
    expect(res.headers['x-request-id']).toBe('abc-1');
    expect(res.json()).toEqual({ error: { code: 'GW_ROUTE_NOT_FOUND', message: 'No route for GET /nope', requestId: 'abc-1' } });
  });

  it('generates a request id when the caller sends none or a bad one', async () => {
    const g = await gateway();
    const res = await g.app.inject({ method: 'GET', url: '/nope', headers: { 'x-request-id': 'bad id with spaces' } });
    expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.json().error.requestId).toBe(res.headers['x-request-id']);
  });

  it('answers 405 with Allow for methods a route does not accept', async () => {
    const g = await gateway({ API_KEY: 'k-admin' }, 'routes:\n  - prefix: /v1/twin\n    service: twin\n    methods: [GET, HEAD]\n');
    const anonymous = await g.app.inject({ method: 'POST', url: '/v1/twin/notes', payload: { a: 1 } });
    expect(anonymous.statusCode).toBe(401); // authentication comes before method checks
    const res = await g.app.inject({ method: 'POST', url: '/v1/twin/notes', payload: { a: 1 }, headers: { 'x-api-key': 'k-admin' } });
    expect(res.statusCode).toBe(405);
    expect(res.headers.allow).toBe('GET, HEAD');
    expect(res.json().error.code).toBe('GW_ROUTE_METHOD_NOT_ALLOWED');
  });

  it('names the switch that disabled a service', async () => {
    const g = await gateway({ ENABLE_RAG_PIPELINE: 'false' });
    const res = await g.app.inject({ method: 'GET', url: '/v1/knowledge/search' });
    expect(res.statusCode).toBe(404);
    expect(res.json().error).toMatchObject({ code: 'GW_SERVICE_DISABLED', message: expect.stringContaining('ENABLE_RAG_PIPELINE=false') });
  });

  it('removes /metrics when ENABLE_METRICS=false', async () => {
    const on = await gateway();
    expect((await on.app.inject({ url: '/metrics' })).statusCode).toBe(200);
    const off = await gateway({ ENABLE_METRICS: 'false' });
    expect((await off.app.inject({ url: '/metrics' })).json().error.code).toBe('GW_ROUTE_NOT_FOUND');
  });

  it('is not ready before the first probe round, and /livez is', async () => {
    const g = await gateway();
    expect((await g.app.inject({ url: '/livez' })).statusCode).toBe(200);
    const ready = await g.app.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toMatchObject({ status: 'not-ready' });
  });

  it('records the time to answer /healthz', async () => {
    const g = await gateway();
    await g.app.inject({ url: '/healthz' });
    const text = await g.metrics.registry.metrics();
    expect(text).toMatch(/gateway_health_check_duration_seconds_count\{deep="0"\} 1/);
  });

  it('counts requests by route pattern, never by raw URL', async () => {
    const g = await gateway({ ENABLE_P2P_FOG: 'false' });
    for (let i = 0; i < 20; i++) await g.app.inject({ url: `/v1/fog/jobs/${i}` });
    for (let i = 0; i < 20; i++) await g.app.inject({ url: `/random/${i}` });
    const series = (await g.metrics.registry.getSingleMetric('gateway_requests_total')!.get()).values;
    expect(series.map((s) => s.labels)).toEqual(
      expect.arrayContaining([
        { method: 'GET', endpoint: '/v1/fog/*', status: '404' },
        { method: 'GET', endpoint: 'unmatched', status: '404' },
      ]),
    );
    expect(series).toHaveLength(2);
  });
});

describeWithRedis('a failed start closes what had started', () => {
  afterAll(cleanup);

  it('a routing model that cannot load: the Redis connections opened before it are closed again', async () => {
    const redis = await startRedis();
    const others = async () =>
      (await redis.command('CLIENT LIST'))
        .split('\n')
        .filter((line) => line.includes(' cmd=') && !line.includes('cmd=client|list'));
    const dir = mkdtempSync(join(tmpdir(), 'gw-app-'));
    const file = join(dir, 'gateway.yaml');
    writeFileSync(file, `routing:\n  model: ${join(dir, 'missing-model.json')}\n`);
    const result = loadConfig({ GATEWAY_HOST: '127.0.0.1', GATEWAY_PORT: '0', REDIS_URL: redis.url }, { file });
    if (!result.ok) throw new Error(result.problems.join('\n'));
    await expect(buildGateway(result.config, { logger: pino({ level: 'silent' }), processMetrics: false })).rejects.toThrow(/missing-model\.json/);
    await waitFor(async () => ((await others()).length === 0 ? true : undefined), 5000, 'the gateway\'s Redis connections to close');
  });

  it('a port already taken: listen fails and closes what had started (Redis connections, probes)', async () => {
    const redis = await startRedis();
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    onCleanup(() => new Promise<void>((r) => taken.close(() => r())));
    const result = loadConfig({ GATEWAY_HOST: '127.0.0.1', GATEWAY_PORT: String((taken.address() as AddressInfo).port), REDIS_URL: redis.url });
    if (!result.ok) throw new Error(result.problems.join('\n'));
    const g = await buildGateway(result.config, { logger: pino({ level: 'silent' }), processMetrics: false });
    const clients = async () => (await redis.command('CLIENT LIST')).split('\n').filter((line) => line.includes(' cmd=') && !line.includes('cmd=client|list'));
    expect((await clients()).length).toBeGreaterThan(0);
    await expect(g.listen()).rejects.toThrow(/EADDRINUSE/);
    await waitFor(async () => ((await clients()).length === 0 ? true : undefined), 5000, 'the gateway\'s Redis connections to close');
    await g.close(); // idempotent after a failed listen
  });
});
