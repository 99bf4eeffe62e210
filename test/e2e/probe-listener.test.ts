import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorBody } from '../../src/errors.js';
import { cleanup, E2E_API_KEY, startGateway, waitFor, type GatewayProcess } from '../helpers/gateway.js';
import { standIn } from '../helpers/upstreams.js';

/*
 * GATEWAY_PROBE_PORT (src/server/probe-listener.ts): /livez, /readyz and /healthz on a port of
 * their own, answered by a worker thread from what the gateway's event loop last posted.
 */

afterAll(cleanup);

async function get(url: string, method: 'GET' | 'POST' = 'GET'): Promise<{ status: number; body: Record<string, unknown>; headers: Record<string, unknown> }> {
  const res = await request(url, { method });
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown>, headers: res.headers };
}

describe('probe listener', () => {
  let gateway: GatewayProcess;
  let probes: string;

  beforeAll(async () => {
    const twin = await standIn('twin');
    gateway = await startGateway({ env: { GATEWAY_PROBE_PORT: '0', TWIN_SERVICE_URL: twin.url, GATEWAY_DRAIN_DELAY_MS: '3000' } });
    const line = await gateway.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('probe listener'));
    probes = line.url as string;
  });

  it('answers the probes on its own port, as the main port does, without upstream addresses', async () => {
    expect(new URL(probes).port).not.toBe(String(gateway.port));
    expect(await get(`${probes}/livez`)).toMatchObject({ status: 200, body: { status: 'ok' }, headers: { 'cache-control': 'no-store' } });
    expect(await get(`${probes}/readyz`)).toMatchObject({ status: 200, body: { status: 'ready' } });
    const health = await get(`${probes}/healthz`);
    const main = await get(`${gateway.url}/healthz`);
    expect(health.status).toBe(200);
    expect(health.body.status).toBe(main.body.status);
    expect(Object.keys(health.body).sort()).toEqual(Object.keys(main.body).sort());
    expect(JSON.stringify(health.body)).not.toContain('127.0.0.1');
    // Nothing else is served there: not the proxy, not /metrics.
    const notFound = await get(`${probes}/v1/twin/x`);
    expect(notFound).toMatchObject({ status: 404, body: { error: { code: 'GW_ROUTE_NOT_FOUND' } } });
    // The thread (CommonJS, no imports of ours) repeats errorBody's shape: src/errors.ts.
    const { requestId, message } = (notFound.body as unknown as ReturnType<typeof errorBody>).error;
    expect(notFound.body).toEqual(errorBody('GW_ROUTE_NOT_FOUND', requestId, message));
    expect(requestId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(await get(`${probes}/metrics`)).toMatchObject({ status: 404 });
    expect(await get(`${probes}/readyz`, 'POST')).toMatchObject({ status: 405, body: { error: { code: 'GW_ROUTE_METHOD_NOT_ALLOWED' } } });
  });

  it('turns /readyz 503 as soon as the drain begins, while the main port still serves', async () => {
    const exited = gateway.stop('SIGTERM', 20_000);
    await waitFor(async () => ((await get(`${probes}/readyz`)).status === 503 ? true : undefined), 2000, 'probe /readyz 503 during the drain');
    expect((await get(`${probes}/readyz`)).body).toMatchObject({ status: 'not-ready', reason: 'shutting down' });
    const res = await request(`${gateway.url}/v1/twin/during-drain`, { headers: { 'x-api-key': E2E_API_KEY } });
    await res.body.text();
    expect(res.statusCode).toBe(200);
    expect(await exited).toEqual({ code: 0, signal: null });
  }, 30_000);
});
