import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, NOTHING_LISTENING, startGateway, type GatewayProcess } from '../helpers/gateway.js';
import { call, type HttpResult } from '../helpers/http.js';
import { standIn, type StandIn } from '../helpers/upstreams.js';

/** The one error shape: exactly { error: { code, message, requestId } }, requestId echoing the header. */
function expectGatewayError(res: HttpResult, status: number, code: string): void {
  expect(res.status, res.text).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  const body = res.json<{ error: Record<string, unknown> }>();
  expect(Object.keys(body)).toEqual(['error']);
  expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'requestId']);
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe('string');
  expect((body.error.message as string).length).toBeGreaterThan(0);
  expect(res.headers['x-request-id']).toBeTruthy();
  expect(body.error.requestId).toBe(res.headers['x-request-id']);
}

let gw: GatewayProcess;
let twin: StandIn;
let slow: StandIn;
let closed: StandIn;

beforeAll(async () => {
  twin = await standIn('twin');
  slow = await standIn('knowledge');
  slow.behaviour.delayMs = 2000;
  closed = await standIn('fog');
  await closed.close();
  gw = await startGateway({
    env: {
      REQUEST_TIMEOUT: '0.5',
      TWIN_SERVICE_URL: twin.url,
      KNOWLEDGE_SYSTEM_URL: slow.url,
      FOG_COORDINATOR_URL: closed.url,
      P2P_BRIDGE_URL: NOTHING_LISTENING,
    },
  });
});

afterAll(cleanup);

describe('upstream failures', () => {
  it('502 GW_UPSTREAM_UNAVAILABLE when the upstream was closed', async () => {
    const res = await call(`${gw.url}/v1/fog/jobs`);
    expectGatewayError(res, 502, 'GW_UPSTREAM_UNAVAILABLE');
  });

  it('502 GW_UPSTREAM_UNAVAILABLE when nothing listens, keeping the client request id', async () => {
    const res = await call(`${gw.url}/v1/p2p/peers`, { headers: { 'x-request-id': 'err-test-1' } });
    expectGatewayError(res, 502, 'GW_UPSTREAM_UNAVAILABLE');
    expect(res.json().error.requestId).toBe('err-test-1');
  });

  it('502 when an upstream that was answering goes away', async () => {
    const gone = await call(`${gw.url}/v1/twin/before`);
    expect(gone.status).toBe(200);
    await twin.close();
    const res = await call(`${gw.url}/v1/twin/after`);
    expectGatewayError(res, 502, 'GW_UPSTREAM_UNAVAILABLE');
  });

  it('504 GW_UPSTREAM_TIMEOUT when the upstream is slower than REQUEST_TIMEOUT', async () => {
    const started = performance.now();
    const res = await call(`${gw.url}/v1/knowledge/search`, { method: 'POST', body: '{"query":"slow"}', headers: { 'content-type': 'application/json' } });
    const elapsed = performance.now() - started;
    expectGatewayError(res, 504, 'GW_UPSTREAM_TIMEOUT');
    // Answered at the 0.5 s timeout, not after the upstream's 2 s.
    expect(elapsed).toBeGreaterThanOrEqual(450);
    expect(elapsed).toBeLessThan(1900);
  });

  it('the same error shape for a path no route covers', async () => {
    const res = await call(`${gw.url}/nowhere/at/all`);
    expectGatewayError(res, 404, 'GW_ROUTE_NOT_FOUND');
  });
});
