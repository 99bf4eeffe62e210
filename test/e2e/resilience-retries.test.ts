import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, startGateway, type GatewayProcess } from '../helpers/gateway.js';
import { call } from '../helpers/http.js';
import { testServer } from '../helpers/upstreams.js';

/*
 * Retries (src/resilience/retry.ts) against an upstream told per path how to fail:
 *   /once/<id>   503 the first time, 200 after
 *   /always/<id> always 503
 *   /third/<id>  every third request (across the ids) 503
 * Breakers are off here (tests/e2e/resilience-breaker.test.ts covers them).
 * twin: a 100 % budget (floor 10), since failing 1 attempt in 3 takes about one retry per two
 * requests, more than the default 20 %; knowledge: the default 20 % budget (floor 3).
 */

const seen = new Map<string, number>();
let thirdCount = 0;
let gw: GatewayProcess;

beforeAll(async () => {
  const upstream = await testServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const n = (seen.get(path) ?? 0) + 1;
    seen.set(path, n);
    req.resume();
    req.on('end', () => {
      let status = 200;
      if (path.includes('/once/') && n === 1) status = 503;
      else if (path.includes('/always/')) status = 503;
      else if (path.includes('/third/') && ++thirdCount % 3 === 0) status = 503;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ path, attempt: n, status }));
    });
  });
  gw = await startGateway({
    env: { TWIN_SERVICE_URL: upstream.url, KNOWLEDGE_SYSTEM_URL: upstream.url },
    yaml: 'services:\n  twin:\n    breaker:\n      enabled: false\n    retries:\n      baseDelayMs: 5\n      maxDelayMs: 20\n      budgetPercent: 100\n      budgetMinRetries: 10\n  knowledge:\n    breaker:\n      enabled: false\n    retries:\n      baseDelayMs: 5\n      maxDelayMs: 20\n',
  });
});

afterAll(cleanup);

const count = (path: string) => seen.get(path) ?? 0;

describe('retries of idempotent requests', () => {
  it('a GET to an upstream that fails once then succeeds is retried and succeeds', async () => {
    const res = await call(`${gw.url}/v1/twin/once/get`);
    expect(res.status).toBe(200);
    expect(res.json()).toMatchObject({ attempt: 2, status: 200 });
    expect(count('/v1/twin/once/get')).toBe(2);
  });

  it('a POST without Idempotency-Key is never retried: the upstream sees it once', async () => {
    const res = await call(`${gw.url}/v1/twin/once/post`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ a: 1 }),
    });
    expect(res.status).toBe(503);
    expect(count('/v1/twin/once/post')).toBe(1);
    // A streamed (non-JSON) POST neither.
    const raw = await call(`${gw.url}/v1/twin/once/post-raw`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: 'x'.repeat(100) });
    expect(raw.status).toBe(503);
    expect(count('/v1/twin/once/post-raw')).toBe(1);
  });

  it('a POST with Idempotency-Key and a buffered JSON body is retried', async () => {
    const res = await call(`${gw.url}/v1/twin/once/post-key`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': 'k-1' },
      body: JSON.stringify({ a: 1 }),
    });
    expect(res.status).toBe(200);
    expect(count('/v1/twin/once/post-key')).toBe(2);
  });

  it('gives up after maxRetries and forwards the last answer', async () => {
    const res = await call(`${gw.url}/v1/twin/always/a`);
    expect(res.status).toBe(503);
    expect(res.json()).toMatchObject({ attempt: 3 });
    expect(count('/v1/twin/always/a')).toBe(3); // 1 + maxRetries (2)
  });

  it('GETs against a flaky upstream (fails 1 in 3) all succeed', async () => {
    const results = [];
    for (let i = 0; i < 30; i++) results.push(await call(`${gw.url}/v1/twin/third/${i}`));
    expect(results.map((r) => r.status)).toEqual(Array(30).fill(200));
  });

  it('the retry budget caps retries at 20% of requests (floor 3) and says so in the metrics', async () => {
    for (let i = 0; i < 20; i++) {
      const res = await call(`${gw.url}/v1/knowledge/always/${i}`);
      expect(res.status).toBe(503);
    }
    let upstreamCalls = 0;
    for (let i = 0; i < 20; i++) upstreamCalls += count(`/v1/knowledge/always/${i}`);
    expect(upstreamCalls).toBe(20 + 4); // 20 % of 20 requests
    const metrics = await call(`${gw.url}/metrics`);
    expect(metrics.text).toMatch(/gateway_upstream_retries_total\{service="knowledge",result="retried"\} 4\b/);
    expect(metrics.text).toMatch(/gateway_upstream_retries_total\{service="knowledge",result="budget_exhausted"\} \d+/);
  });
});
