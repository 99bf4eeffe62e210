import { afterAll, describe, expect, it } from 'vitest';
import { cleanup, startGateway } from '../helpers/gateway.js';
import { call } from '../helpers/http.js';
import { parsePrometheusText } from '../helpers/prometheus.js';
import { testServer } from '../helpers/upstreams.js';

/*
 * gateway_proxy_overhead_seconds (src/proxy/request-path.ts): a proxied request's time less
 * its upstream wait. An upstream that takes 150 ms must not show in it; the request's own
 * duration still does.
 */

afterAll(cleanup);

const UPSTREAM_DELAY_MS = 150;

describe('gateway_proxy_overhead_seconds', () => {
  it("counts what the gateway took, not the upstream's wait (answers read whole and streamed)", async () => {
    const upstream = await testServer((req, res) => {
      const big = req.url?.includes('big') === true;
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/json' });
        // A large answer is streamed on (past the whole-answer bound), a small one read whole.
        res.end(big ? JSON.stringify({ pad: 'x'.repeat(256 * 1024) }) : '{"ok":true}');
      }, req.url?.startsWith('/health') === true ? 0 : UPSTREAM_DELAY_MS);
    });
    const gw = await startGateway({ env: { TWIN_SERVICE_URL: upstream.url } });
    const N = 4;
    for (let i = 0; i < N; i++) {
      expect((await call(`${gw.url}/v1/twin/slow-${i}`)).status).toBe(200);
      expect((await call(`${gw.url}/v1/twin/big-${i}`)).status).toBe(200);
    }
    const families = parsePrometheusText((await call(`${gw.url}/metrics`)).text);
    const overhead = families.get('gateway_proxy_overhead_seconds');
    expect(overhead?.type).toBe('histogram');
    const sample = (name: string, le?: string) =>
      overhead!.samples.find((s) => s.name === name && s.labels.service === 'twin' && (le === undefined || s.labels.le === le))?.value;
    expect(sample('gateway_proxy_overhead_seconds_count')).toBe(2 * N);
    // Every request waited 150 ms on the upstream; none of that is the gateway's.
    expect(sample('gateway_proxy_overhead_seconds_bucket', '0.1')).toBe(2 * N);
    expect(sample('gateway_proxy_overhead_seconds_sum')!).toBeLessThan((2 * N * UPSTREAM_DELAY_MS) / 1000 / 2);
    // The requests' own durations include the wait.
    const duration = families.get('gateway_request_duration_seconds')!;
    const twinSum = duration.samples.filter((s) => s.name === 'gateway_request_duration_seconds_sum' && s.labels.endpoint?.startsWith('/v1/twin') === true).reduce((a, s) => a + s.value, 0);
    expect(twinSum).toBeGreaterThanOrEqual((2 * N * UPSTREAM_DELAY_MS) / 1000);
  });
});
