import { Gauge } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { histogramQuantile, MetricsService, UnknownMetricError } from '../../src/admin/metrics-service.js';
import { createMetrics } from '../../src/metrics/registry.js';

function setup() {
  let now = 1_000_000;
  const metrics = createMetrics({ durationBuckets: [0.01, 0.05, 0.1, 0.5, 1], defaultMetrics: false });
  const service = new MetricsService(metrics.registry, { now: () => now });
  const advance = (ms: number) => {
    now += ms;
  };
  const record = (endpoint: string, status: string, seconds: number, n = 1) => {
    for (let i = 0; i < n; i++) {
      metrics.requestsTotal.inc({ method: 'GET', endpoint, status });
      metrics.requestDuration.observe({ method: 'GET', endpoint, status }, seconds);
    }
  };
  return { metrics, service, advance, record };
}

describe('histogramQuantile', () => {
  it('interpolates inside the bucket like Prometheus', () => {
    const buckets = [[0.1, 50], [0.5, 100], [Infinity, 100]] as const;
    expect(histogramQuantile(0.5, buckets)).toBeCloseTo(0.1);
    expect(histogramQuantile(0.75, buckets)).toBeCloseTo(0.3);
    expect(histogramQuantile(0.99, [[Infinity, 0]])).toBeNull();
  });
});

describe('MetricsService', () => {
  it('summarises only the window: requests, rate, error rate and latency quantiles per route', async () => {
    const { service, advance, record } = setup();
    record('/v1/twin/*', '200', 0.5, 100); // before the window: must not count
    await service.sample();
    advance(60_000);
    record('/v1/twin/*', '200', 0.02, 90);
    record('/v1/twin/*', '502', 0.04, 10);
    const summary = await service.summary({ minutes: 1 });
    expect(summary.windowSeconds).toBe(60);
    const twin = summary.routes.find((r) => r.endpoint === '/v1/twin/*')!;
    expect(twin.requests).toBe(100);
    expect(twin.requestsPerSecond).toBeCloseTo(100 / 60, 3);
    expect(twin.errorRate).toBeCloseTo(0.1);
    expect(twin.latency.p50!).toBeGreaterThan(0.01);
    expect(twin.latency.p50!).toBeLessThanOrEqual(0.05);
    expect(twin.latency.p99!).toBeLessThanOrEqual(0.05);
  });

  it('summarises services from gateway_service_requests, counting timeouts as failures', async () => {
    const { metrics, service, advance } = setup();
    await service.sample();
    advance(10_000);
    metrics.serviceRequests.inc({ service: 'fog', status: '200' }, 8);
    metrics.serviceRequests.inc({ service: 'fog', status: 'timeout' }, 2);
    const summary = await service.summary({ minutes: 5 });
    expect(summary.services).toEqual([{ service: 'fog', requests: 10, requestsPerSecond: 1, errorRate: 0.2 }]);
  });

  it('reads one metric with label filters, and names an unknown one', async () => {
    const { metrics, service } = setup();
    metrics.circuitBreakerState.set({ service: 'twin' }, 2);
    metrics.circuitBreakerState.set({ service: 'fog' }, 0);
    const res = await service.queryMetric({ name: 'gateway_circuit_breaker_state', labels: { service: 'twin' } });
    expect(res.series).toEqual([{ labels: { service: 'twin' }, value: 2 }]);
    await expect(service.queryMetric({ name: 'gateway_nope' })).rejects.toBeInstanceOf(UnknownMetricError);
  });

  it('samples only the metrics it summarises: collectors of other metrics (process_open_fds, active handles: O(open sockets)) are not run', async () => {
    const { metrics, service, record } = setup();
    let collected = 0;
    new Gauge({
      name: 'test_expensive_collector',
      help: 'counts its collections',
      registers: [metrics.registry],
      collect() {
        collected += 1;
      },
    });
    await service.sample();
    record('/v1/twin/*', '200', 0.02, 3);
    const summary = await service.summary({ minutes: 1 });
    expect(summary.routes.find((r) => r.endpoint === '/v1/twin/*')?.requests).toBe(3);
    expect(collected).toBe(0);
    await service.queryMetric({ name: 'test_expensive_collector' });
    expect(collected).toBe(1);
  });
});
