import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, NOTHING_LISTENING, startGateway, type GatewayProcess } from '../helpers/gateway.js';
import { call } from '../helpers/http.js';
import { standIns, type StandIn } from '../helpers/upstreams.js';

/*
 * Fallback strategies (src/resilience/fallback.ts), each against real stand-ins:
 *   twin             breaker opens after 3 failing calls (60 s reset) -> service:knowledge
 *   p2p              nothing listening                                -> service:knowledge
 *   fog              nothing listening                                -> static 200
 *   agent-controller slow stand-in, 300 ms timeout                    -> static 503
 *   knowledge        the fallback target; `fail` (the default) itself
 */

let gw: GatewayProcess;
let twin: StandIn;
let knowledge: StandIn;
let agents: StandIn;

beforeAll(async () => {
  const started = await standIns(['twin', 'knowledge', 'agent-controller']);
  twin = started.byName.twin;
  knowledge = started.byName.knowledge;
  agents = started.byName['agent-controller'];
  gw = await startGateway({
    env: { ...started.env, FOG_COORDINATOR_URL: NOTHING_LISTENING, P2P_BRIDGE_URL: NOTHING_LISTENING },
    yaml: [
      'health:',
      '  intervalMs: 60000',
      'services:',
      '  twin:',
      '    breaker: { volumeThreshold: 3, errorThresholdPercentage: 50, resetTimeout: 60000 }',
      '    retries: { maxRetries: 0 }',
      '    fallback: "service:knowledge"',
      '  p2p:',
      '    retries: { maxRetries: 0 }',
      '    fallback: "service:knowledge"',
      '  fog:',
      '    retries: { maxRetries: 0 }',
      '    fallback: { type: static, body: { items: [], degraded: true } }',
      '  agent-controller:',
      '    timeoutMs: 300',
      '    fallback: { type: static, status: 503, body: { error: "agents are slow, try later" } }',
      '',
    ].join('\n'),
  });
});

afterAll(cleanup);

describe('fallback strategies', () => {
  it('service:<other> answers for an open breaker, without touching the failing upstream', async () => {
    twin.behaviour.failStatus = 500;
    for (let i = 0; i < 20; i++) {
      const res = await call(`${gw.url}/v1/twin/fail/${i}`);
      if (res.headers['x-gateway-fallback'] !== undefined) break;
      expect(res.status).toBe(500); // 5xx answers are forwarded, not replaced
    }
    await gw.waitForLog((l) => l.msg === 'circuit breaker opened' && l.service === 'twin');
    const twinBefore = twin.requestCount;
    const knowledgeBefore = knowledge.requestCount;
    const res = await call(`${gw.url}/v1/twin/things?x=1`);
    expect(res.status).toBe(200);
    expect(res.headers['x-gateway-fallback']).toBe('service:knowledge');
    expect(res.json()).toMatchObject({ service: 'knowledge', path: '/v1/twin/things', query: { x: '1' } });
    // A POST had not gone out either: it falls back too, with its body.
    const post = await call(`${gw.url}/v1/twin/things`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
    expect(post.status).toBe(200);
    expect(post.headers['x-gateway-fallback']).toBe('service:knowledge');
    expect(post.json()).toMatchObject({ service: 'knowledge', method: 'POST', body: '{"a":1}' });
    expect(twin.requestCount).toBe(twinBefore);
    expect(knowledge.requestCount).toBe(knowledgeBefore + 2);
    twin.behaviour.failStatus = null;
  });

  it('when the fallback service fails too, its error is answered and still labelled', async () => {
    knowledge.behaviour.failStatus = 502;
    const res = await call(`${gw.url}/v1/twin/both-down`);
    expect(res.status).toBe(502);
    expect(res.headers['x-gateway-fallback']).toBe('service:knowledge');
    knowledge.behaviour.failStatus = null;
  });

  it('service:<other> answers for an unreachable upstream, but only requests that may be sent again', async () => {
    const res = await call(`${gw.url}/v1/p2p/peers`);
    expect(res.status).toBe(200);
    expect(res.headers['x-gateway-fallback']).toBe('service:knowledge');
    expect(res.json()).toMatchObject({ service: 'knowledge', path: '/v1/p2p/peers' });

    const post = await call(`${gw.url}/v1/p2p/peers`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(post.status).toBe(502);
    expect(post.json().error.code).toBe('GW_UPSTREAM_UNAVAILABLE');
    expect(post.headers['x-gateway-fallback']).toBeUndefined();

    const keyed = await call(`${gw.url}/v1/p2p/peers`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': 'k-1' },
      body: '{"b":2}',
    });
    expect(keyed.status).toBe(200);
    expect(keyed.headers['x-gateway-fallback']).toBe('service:knowledge');
    expect(keyed.json()).toMatchObject({ service: 'knowledge', body: '{"b":2}' });
  });

  it('static answers an unreachable upstream with the configured JSON, any method', async () => {
    for (const method of ['GET', 'POST']) {
      const res = await call(`${gw.url}/v1/fog/nodes`, { method, headers: { 'content-type': 'application/json' }, ...(method === 'POST' ? { body: '{}' } : {}) });
      expect(res.status).toBe(200);
      expect(res.headers['x-gateway-fallback']).toBe('static');
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.json()).toEqual({ items: [], degraded: true });
    }
  });

  it('static answers a timeout with its configured status', async () => {
    agents.behaviour.delayMs = 2000;
    const res = await call(`${gw.url}/v1/agents/slow`);
    expect(res.status).toBe(503);
    expect(res.headers['x-gateway-fallback']).toBe('static');
    expect(res.json()).toEqual({ error: 'agents are slow, try later' });
    agents.behaviour.delayMs = 0;
    expect((await call(`${gw.url}/v1/agents/fast`)).headers['x-gateway-fallback']).toBeUndefined();
  });

  it('fail (the default) keeps the gateway error', async () => {
    knowledge.behaviour.delayMs = 0;
    const ok = await call(`${gw.url}/v1/knowledge/search`);
    expect(ok.status).toBe(200);
    expect(ok.headers['x-gateway-fallback']).toBeUndefined();
  });
});
