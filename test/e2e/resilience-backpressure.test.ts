import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, startGateway, type GatewayProcess } from '../helpers/gateway.js';
import { call } from '../helpers/http.js';
import { standIns, type StandIn } from '../helpers/upstreams.js';

/*
 * Backpressure (src/resilience/backpressure.ts): twin is limited to 100 requests in flight
 * and answers slowly; 1,000 concurrent requests get 100 proxied and 900 shed at once.
 */

const DELAY_MS = 4000;
let gw: GatewayProcess;
let twin: StandIn;
let knowledge: StandIn;

beforeAll(async () => {
  const started = await standIns(['twin', 'knowledge']);
  twin = started.byName.twin;
  knowledge = started.byName.knowledge;
  // 1,000 concurrent connections from one address: over the default per-IP connection cap (256).
  gw = await startGateway({ env: started.env, yaml: 'services:\n  twin:\n    maxInFlight: 100\nserver:\n  maxConnectionsPerIp: 2000\n' });
});

afterAll(cleanup);

async function residentBytes(): Promise<number> {
  const text = (await call(`${gw.url}/metrics`)).text;
  const m = /^process_resident_memory_bytes (\d+(?:\.\d+)?(?:e\+\d+)?)$/m.exec(text);
  if (m === null) throw new Error('no process_resident_memory_bytes in /metrics');
  return Number(m[1]);
}

describe('backpressure: requests in flight per service', () => {
  it('1,000 concurrent requests to a service limited to 100: 100 proxied, 900 answered 503 at once', async () => {
    const rssBefore = await residentBytes();
    twin.behaviour.delayMs = DELAY_MS;
    const before = twin.requestCount;
    const started = performance.now();
    const results = await Promise.all(
      Array.from({ length: 1000 }, (_, i) =>
        call(`${gw.url}/v1/twin/slow/${i}`, { timeoutMs: 20_000 }).then((res) => ({ res, ms: performance.now() - started })),
      ),
    );
    twin.behaviour.delayMs = 0;

    const ok = results.filter((r) => r.res.status === 200);
    const shed = results.filter((r) => r.res.status === 503);
    expect(ok.length + shed.length).toBe(1000);
    expect(ok).toHaveLength(100);
    expect(shed).toHaveLength(900);
    expect(twin.requestCount - before).toBe(100);
    for (const { res } of shed.slice(0, 20)) {
      expect(res.headers['retry-after']).toBe('1');
      expect(res.json().error.code).toBe('GW_GATEWAY_OVERLOADED');
    }
    // "At once": every shed answer came back before the slow upstream answered anything.
    const slowestShed = Math.max(...shed.map((r) => r.ms));
    const fastestOk = Math.min(...ok.map((r) => r.ms));
    expect(slowestShed).toBeLessThan(fastestOk);
    expect(fastestOk).toBeGreaterThanOrEqual(DELAY_MS - 50);
    // Memory stays bounded: nothing queued, the shed requests held nothing (loose bound).
    const grown = (await residentBytes()) - rssBefore;
    console.log(`backpressure: 100 proxied, 900 shed; slowest shed answer ${slowestShed.toFixed(0)} ms, fastest proxied ${fastestOk.toFixed(0)} ms; gateway RSS +${(grown / 1048576).toFixed(1)} MB`);
    expect(grown).toBeLessThan(150 * 1024 * 1024);
  });

  it('frees the slots: the service serves again, and other services were never limited', async () => {
    twin.behaviour.delayMs = 1500;
    const before = twin.requestCount;
    const held = Array.from({ length: 100 }, (_, i) => call(`${gw.url}/v1/twin/hold/${i}`, { timeoutMs: 20_000 }));
    // The stand-in counts a request when it arrives (then delays the answer).
    for (let i = 0; i < 100 && twin.requestCount - before < 100; i++) await new Promise((r) => setTimeout(r, 20));
    expect(twin.requestCount - before).toBe(100);
    const probe = await call(`${gw.url}/v1/twin/probe`);
    expect(probe.status).toBe(503);
    expect(twin.requestCount - before).toBe(100);
    const other = await call(`${gw.url}/v1/knowledge/search`);
    expect(other.status).toBe(200);
    expect(other.json().service).toBe('knowledge');
    twin.behaviour.delayMs = 0;
    const answers = await Promise.all(held);
    expect(answers.filter((r) => r.status === 200).length).toBeGreaterThanOrEqual(99);
    const again = await call(`${gw.url}/v1/twin/after`);
    expect(again.status).toBe(200);
    expect(knowledge.requestCount).toBeGreaterThanOrEqual(1);
  });
});
