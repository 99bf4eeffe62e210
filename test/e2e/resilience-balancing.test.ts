import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, startGateway, type GatewayProcess } from '../helpers/gateway.js';
import { call } from '../helpers/http.js';
import { standIn, type StandIn } from '../helpers/upstreams.js';

/*
 * Load balancing (src/proxy/upstreams.ts) over two stand-ins of one service: a host the
 * health prober sees down gets no traffic; once it is healthy again it gets its share.
 */

let gw: GatewayProcess;
let a: StandIn;
let b: StandIn;

beforeAll(async () => {
  a = await standIn('twin');
  b = await standIn('twin');
  b.behaviour.healthStatus = 503;
  b.behaviour.failStatus = 500; // were it picked, the test would see it
  gw = await startGateway({
    env: { TWIN_SERVICE_URL: a.url },
    yaml: [
      'health:',
      '  intervalMs: 60000',
      'services:',
      '  twin:',
      `    urls: [${a.url}, ${b.url}]`,
      '    breaker: { volumeThreshold: 4, errorThresholdPercentage: 50, resetTimeout: 60000 }',
      '',
    ].join('\n'),
  });
});

afterAll(cleanup);

describe('load balancing across a service’s hosts', () => {
  it('sends nothing to a host the prober marked down; /healthz shows each host', async () => {
    const health = (await call(`${gw.url}/healthz`)).json();
    expect(health.services.twin.status).toBe('up');
    expect(health.services.twin.hosts).toEqual([
      expect.objectContaining({ origin: a.url, status: 'up', httpStatus: 200 }),
      expect.objectContaining({ origin: b.url, status: 'down', httpStatus: 503 }),
    ]);
    const before = b.requestCount;
    for (let i = 0; i < 20; i++) expect((await call(`${gw.url}/v1/twin/lb/${i}`)).status).toBe(200);
    expect(b.requestCount).toBe(before);
  });

  it('a host that recovers gets traffic again', async () => {
    b.behaviour.healthStatus = 200;
    b.behaviour.failStatus = null;
    await call(`${gw.url}/healthz?deep=1`);
    const [beforeA, beforeB] = [a.requestCount, b.requestCount];
    for (let i = 0; i < 20; i++) expect((await call(`${gw.url}/v1/twin/lb2/${i}`)).status).toBe(200);
    expect(a.requestCount - beforeA).toBeGreaterThan(0);
    expect(b.requestCount - beforeB).toBeGreaterThan(0);
  });

  it('a host whose breaker opened gets no traffic while the other host serves everything', async () => {
    b.behaviour.failStatus = 500; // healthy by its probe, failing its requests
    for (let i = 0; i < 60 && !gw.logs.some((l) => l.msg === 'circuit breaker opened' && l.upstream === b.url); i++) {
      await call(`${gw.url}/v1/twin/trip/${i}`);
    }
    await gw.waitForLog((l) => l.msg === 'circuit breaker opened' && l.upstream === b.url);
    const before = b.requestCount;
    for (let i = 0; i < 20; i++) {
      const res = await call(`${gw.url}/v1/twin/after/${i}`);
      expect(res.status).toBe(200);
      expect(res.headers['x-gateway-fallback']).toBeUndefined();
    }
    expect(b.requestCount).toBe(before);
  });
});
