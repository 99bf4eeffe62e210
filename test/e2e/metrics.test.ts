import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, startGateway, type GatewayProcess } from '../helpers/gateway.js';
import { call } from '../helpers/http.js';
import { parsePrometheusText, type MetricFamily, type MetricType } from '../helpers/prometheus.js';
import { standIn } from '../helpers/upstreams.js';

const DISTINCT_PATHS = 60;

let gw: GatewayProcess;
let families: Map<string, MetricFamily>;
let contentType: string | undefined;

function family(name: string, type: MetricType): MetricFamily {
  const f = families.get(name);
  expect(f, `metric family ${name}`).toBeDefined();
  expect(f!.type, `type of ${name}`).toBe(type);
  expect(f!.help, `HELP of ${name}`).toBeTruthy();
  return f!;
}

function value(f: MetricFamily, sampleName: string, labels: Record<string, string>): number | undefined {
  return f.samples.find((s) => s.name === sampleName && Object.entries(labels).every(([k, v]) => s.labels[k] === v) && Object.keys(s.labels).length === Object.keys(labels).length)?.value;
}

beforeAll(async () => {
  const twin = await standIn('twin');
  gw = await startGateway({ env: { TWIN_SERVICE_URL: twin.url } });
  // Many distinct raw URLs on one route, some on no route, some failing upstream.
  for (let i = 0; i < DISTINCT_PATHS; i += 1) {
    expect((await call(`${gw.url}/v1/twin/item-${i}/detail?page=${i}`)).status).toBe(200);
  }
  for (let i = 0; i < 10; i += 1) expect((await call(`${gw.url}/no-route-${i}`)).status).toBe(404);
  for (let i = 0; i < 5; i += 1) expect((await call(`${gw.url}/v1/fog/job-${i}`)).status).toBe(502);
  expect((await call(`${gw.url}/v1/twin`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })).status).toBe(200);
  expect((await call(`${gw.url}/healthz`)).status).toBe(200);
  expect((await call(`${gw.url}/healthz?deep=1`)).status).toBe(200);

  const res = await call(`${gw.url}/metrics`);
  expect(res.status).toBe(200);
  contentType = res.headers['content-type'];
  families = parsePrometheusText(res.text);
});

afterAll(cleanup);

describe('/metrics', () => {
  it('is Prometheus text format 0.0.4 and passes a strict parse', () => {
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(families.size).toBeGreaterThan(10);
  });

  it('has the gateway metrics with their types', () => {
    family('gateway_requests_total', 'counter');
    family('gateway_request_duration_seconds', 'histogram');
    family('gateway_service_requests', 'counter');
    family('gateway_health_check_duration_seconds', 'histogram');
    family('gateway_routing_decisions', 'counter');
    family('gateway_circuit_breaker_state', 'gauge');
    family('gateway_threat_level_detections', 'counter');
  });

  it('has the Node process metrics', () => {
    expect(family('process_cpu_user_seconds_total', 'counter').samples[0]!.value).toBeGreaterThan(0);
    expect(family('process_resident_memory_bytes', 'gauge').samples[0]!.value).toBeGreaterThan(1024 * 1024);
    family('nodejs_eventloop_lag_seconds', 'gauge');
    family('nodejs_heap_size_used_bytes', 'gauge');
  });

  it('labels requests by route pattern, so distinct URLs do not make new series', () => {
    const requests = family('gateway_requests_total', 'counter');
    const endpoints = new Set(requests.samples.map((s) => s.labels.endpoint));
    expect(endpoints.has('/v1/twin/*')).toBe(true);
    expect(endpoints.has('/v1/twin')).toBe(true);
    for (const endpoint of endpoints) {
      expect(endpoint).not.toMatch(/item-|no-route-|job-|\?/);
    }
    // 60 + 10 + 5 distinct raw URLs collapse into a handful of series.
    expect(requests.samples.length).toBeLessThanOrEqual(10);
    expect(value(requests, 'gateway_requests_total', { method: 'GET', endpoint: '/v1/twin/*', status: '200' })).toBe(DISTINCT_PATHS);
    expect(value(requests, 'gateway_requests_total', { method: 'GET', endpoint: '/v1/fog/*', status: '502' })).toBe(5);
    const notFound = requests.samples.filter((s) => s.labels.status === '404');
    expect(notFound.reduce((n, s) => n + s.value, 0)).toBe(10);
  });

  it('counts the same requests in the duration histogram', () => {
    const duration = family('gateway_request_duration_seconds', 'histogram');
    const labels = { method: 'GET', endpoint: '/v1/twin/*', status: '200' };
    expect(value(duration, 'gateway_request_duration_seconds_count', labels)).toBe(DISTINCT_PATHS);
    expect(value(duration, 'gateway_request_duration_seconds_bucket', { ...labels, le: '+Inf' })).toBe(DISTINCT_PATHS);
    expect(value(duration, 'gateway_request_duration_seconds_sum', labels)).toBeGreaterThan(0);
  });

  it('counts upstream calls per service and /healthz answers', () => {
    const service = family('gateway_service_requests', 'counter');
    // Routes without a traffic split count as the stable side.
    expect(value(service, 'gateway_service_requests', { service: 'twin', status: '200', side: 'stable' })).toBe(DISTINCT_PATHS + 1);
    expect(value(service, 'gateway_service_requests', { service: 'fog', status: 'unreachable', side: 'stable' })).toBe(5);
    const health = family('gateway_health_check_duration_seconds', 'histogram');
    expect(value(health, 'gateway_health_check_duration_seconds_count', { deep: '0' })).toBe(1);
    expect(value(health, 'gateway_health_check_duration_seconds_count', { deep: '1' })).toBe(1);
  });
});

describe('the strict exposition parser', () => {
  const ok = [
    '# HELP h_seconds A histogram.',
    '# TYPE h_seconds histogram',
    'h_seconds_bucket{le="0.1",path="/a"} 1',
    'h_seconds_bucket{le="1",path="/a"} 3',
    'h_seconds_bucket{le="+Inf",path="/a"} 4',
    'h_seconds_sum{path="/a"} 2.5',
    'h_seconds_count{path="/a"} 4',
    '# TYPE c_total counter',
    'c_total{a="x\\"y\\\\z\\n"} 1e3 1700000000000',
    'g NaN',
    '',
  ].join('\n');

  it('accepts a valid exposition', () => {
    const parsed = parsePrometheusText(ok);
    expect(parsed.get('h_seconds')?.samples).toHaveLength(5);
    expect(parsed.get('c_total')?.samples[0]).toMatchObject({ labels: { a: 'x"y\\z\n' }, value: 1000, timestampMs: 1700000000000 });
    expect(parsed.get('g')?.type).toBe('untyped');
  });

  it.each([
    ['buckets that are not cumulative', ok.replace('le="1",path="/a"} 3', 'le="1",path="/a"} 0'), /not cumulative/],
    ['a +Inf bucket that differs from _count', ok.replace('h_seconds_count{path="/a"} 4', 'h_seconds_count{path="/a"} 5'), /_count 5 differs/],
    ['a histogram without +Inf', ok.replace('h_seconds_bucket{le="+Inf",path="/a"} 4\n', ''), /no le="\+Inf"/],
    ['a bad metric name', ok.replace('g NaN', '1g 1'), /invalid metric name/],
    ['a bad value', ok.replace('g NaN', 'g 1,5'), /invalid float/],
    ['a bad label escape', ok.replace('\\"y', '\\ty'), /invalid escape/],
    ['a repeated series', `${ok}g 2\n`, /repeated/],
    ['a family split in two', `${ok}c_total{a="b"} 1\n`, /not contiguous/],
    ['a TYPE after samples', ok.replace('g NaN', 'g 1\n# TYPE g gauge'), /after its samples/],
    ['a negative counter', ok.replace('1e3 1700000000000', '-1'), /has value -1/],
    ['a missing final line feed', ok.trimEnd(), /line feed/],
    ['an unknown type', ok.replace('counter', 'countr'), /unknown metric type/],
  ] as Array<[string, string, RegExp]>)('rejects %s', (_what, text, reason) => {
    expect(() => parsePrometheusText(text)).toThrow(reason);
  });
});
