import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, startGateway, type GatewayProcess } from '../helpers/gateway.js';
import { call } from '../helpers/http.js';
import { standIns, type StandIn } from '../helpers/upstreams.js';

let gw: GatewayProcess;
let byName: Record<'twin' | 'agent-controller' | 'knowledge' | 'fog' | 'p2p', StandIn>;

beforeAll(async () => {
  const started = await standIns();
  byName = started.byName;
  gw = await startGateway({ env: { ...started.env, ENABLE_P2P_FOG: 'false', ENABLE_AGENT_FORGE: 'false', ENABLE_METRICS: 'false' } });
});

afterAll(cleanup);

describe('service switches', () => {
  it.each([
    ['GET', '/v1/fog/x', 'ENABLE_P2P_FOG'],
    ['GET', '/v1/p2p/x', 'ENABLE_P2P_FOG'],
    ['POST', '/v1/fog/jobs', 'ENABLE_P2P_FOG'],
    ['DELETE', '/v1/p2p', 'ENABLE_P2P_FOG'],
    ['GET', '/v1/agents/a1', 'ENABLE_AGENT_FORGE'],
  ])('%s %s answers 404 GW_SERVICE_DISABLED naming %s', async (method, path, variable) => {
    const res = await call(`${gw.url}${path}`, { method, ...(method === 'POST' ? { body: '{}', headers: { 'content-type': 'application/json' } } : {}) });
    expect(res.status).toBe(404);
    const { error } = res.json();
    expect(error.code).toBe('GW_SERVICE_DISABLED');
    expect(error.message).toContain(variable);
    expect(error.requestId).toBe(res.headers['x-request-id']);
  });

  it('never calls a disabled upstream, and keeps serving the enabled ones', async () => {
    expect(byName.fog.requestCount).toBe(0);
    expect(byName.p2p.requestCount).toBe(0);
    expect(byName['agent-controller'].requestCount).toBe(0);
    expect(gw.child.exitCode).toBeNull();
    expect((await call(`${gw.url}/livez`)).status).toBe(200);
    const twin = await call(`${gw.url}/v1/twin/x`);
    expect(twin.status).toBe(200);
    expect(twin.json().service).toBe('twin');
    const knowledge = await call(`${gw.url}/v1/knowledge/x`);
    expect(knowledge.status).toBe(200);
    expect(knowledge.json().service).toBe('knowledge');
  });

  it('probes only the enabled services', async () => {
    const res = await call(`${gw.url}/healthz`);
    expect(res.status).toBe(200);
    const body = res.json();
    expect(Object.keys(body.services).sort()).toEqual(['knowledge', 'twin']);
    expect(body.status).toBe('ok');
  });

  it('ENABLE_METRICS=false hides /metrics', async () => {
    const res = await call(`${gw.url}/metrics`);
    expect(res.status).toBe(404);
    expect(res.json().error.code).toBe('GW_ROUTE_NOT_FOUND');
  });
});
