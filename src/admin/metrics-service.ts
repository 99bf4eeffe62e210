import { histogramQuantile } from '../metrics/quantile.js';
import type { Registry } from 'prom-client';
import { z } from 'zod';

/*
 * Metrics for agents and operators, computed from the gateway's own prom-client registry
 * (never by scraping itself over HTTP). Counters and histograms are cumulative, so rates and
 * latency quantiles over "the last N minutes" come from the difference between now and a
 * snapshot taken N minutes ago: a background sampler keeps one snapshot per interval.
 */

export const metricsSummaryInput = z.strictObject({
  minutes: z.number().int().min(1).max(60).default(5).describe('Window length in minutes'),
});

const latencySchema = z.object({ p50: z.number().nullable(), p95: z.number().nullable(), p99: z.number().nullable() }).describe('Seconds');

export const metricsSummaryOutput = z.object({
  windowSeconds: z.number(),
  routes: z.array(
    z.object({
      endpoint: z.string().describe('Route pattern'),
      requests: z.number(),
      requestsPerSecond: z.number(),
      errorRate: z.number().describe('Share of 5xx answers, 0..1'),
      latency: latencySchema,
    }),
  ),
  services: z.array(
    z.object({
      service: z.string(),
      requests: z.number(),
      requestsPerSecond: z.number(),
      errorRate: z.number().describe('Share of 5xx, timeouts and unreachable, 0..1'),
    }),
  ),
});
export type MetricsSummary = z.infer<typeof metricsSummaryOutput>;

export const queryMetricInput = z.strictObject({
  name: z.string().regex(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/).describe('Metric name, e.g. gateway_requests_total'),
  labels: z.record(z.string(), z.string()).default({}).describe('Only series with these label values'),
});

export const queryMetricOutput = z.object({
  name: z.string(),
  type: z.string(),
  help: z.string(),
  series: z.array(z.object({ labels: z.record(z.string(), z.union([z.string(), z.number()])), value: z.number(), metricName: z.string().optional() })),
});

export class UnknownMetricError extends Error {
  constructor(readonly metric: string) {
    super(`unknown metric "${metric}"`);
    this.name = 'UnknownMetricError';
  }
}

interface Snapshot {
  readonly at: number;
  /** endpoint -> [requests, 5xx] */
  readonly routes: Map<string, [number, number]>;
  /** endpoint -> le -> cumulative count */
  readonly buckets: Map<string, Map<number, number>>;
  /** service -> [requests, failures] */
  readonly services: Map<string, [number, number]>;
}

type Json = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

/** The metrics a snapshot reads. */
const SNAPSHOT_METRICS = ['gateway_requests_total', 'gateway_request_duration_seconds', 'gateway_service_requests'] as const;

/**
 * Only the metrics a snapshot reads, not the whole registry: the registry's default
 * process metrics cost time in proportion to the open sockets (process_open_fds lists
 * /proc/self/fd, nodejs_active_handles walks every handle), about 15 ms on the event loop
 * with 2,000 open WebSocket sockets, which every message relayed meanwhile waited for.
 */
async function snapshotMetrics(registry: Registry): Promise<Json> {
  const metrics = SNAPSHOT_METRICS.map((name) => registry.getSingleMetric(name)).filter((m) => m !== undefined);
  return Promise.all(metrics.map((m) => m.get()));
}

function add(map: Map<string, [number, number]>, key: string, total: number, bad: number): void {
  const cur = map.get(key) ?? [0, 0];
  cur[0] += total;
  cur[1] += bad;
  map.set(key, cur);
}

function snapshotOf(json: Json, at: number): Snapshot {
  const routes = new Map<string, [number, number]>();
  const buckets = new Map<string, Map<number, number>>();
  const services = new Map<string, [number, number]>();
  for (const metric of json) {
    if (metric.name === 'gateway_requests_total') {
      for (const v of metric.values) {
        const status = String(v.labels.status ?? '');
        add(routes, String(v.labels.endpoint), v.value, status.startsWith('5') ? v.value : 0);
      }
    } else if (metric.name === 'gateway_request_duration_seconds') {
      for (const v of metric.values) {
        if ((v as { metricName?: string }).metricName !== 'gateway_request_duration_seconds_bucket') continue;
        const endpoint = String(v.labels.endpoint);
        const le = v.labels.le === '+Inf' ? Infinity : Number(v.labels.le);
        const byLe = buckets.get(endpoint) ?? new Map<number, number>();
        byLe.set(le, (byLe.get(le) ?? 0) + v.value);
        buckets.set(endpoint, byLe);
      }
    } else if (metric.name === 'gateway_service_requests') {
      for (const v of metric.values) {
        const status = String(v.labels.status ?? '');
        const failed = status.startsWith('5') || status === 'timeout' || status === 'unreachable' || status === 'error';
        add(services, String(v.labels.service), v.value, failed ? v.value : 0);
      }
    }
  }
  return { at, routes, buckets, services };
}


const round = (n: number, d = 4) => Math.round(n * 10 ** d) / 10 ** d;

export { histogramQuantile };

export class MetricsService {
  readonly #registry: Registry;
  readonly #intervalMs: number;
  readonly #now: () => number;
  readonly #history: Snapshot[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(registry: Registry, options: { sampleIntervalMs?: number; now?: () => number } = {}) {
    this.#registry = registry;
    this.#intervalMs = options.sampleIntervalMs ?? 10_000;
    this.#now = options.now ?? Date.now;
  }

  start(): void {
    void this.sample();
    this.#timer = setInterval(() => void this.sample(), this.#intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
  }

  /** Take a snapshot now (the sampler calls this; tests call it to control time). */
  async sample(): Promise<void> {
    this.#history.push(snapshotOf(await snapshotMetrics(this.#registry), this.#now()));
    // One hour of history at most.
    const oldest = this.#now() - 3_600_000 - this.#intervalMs;
    while (this.#history.length > 1 && this.#history[0]!.at < oldest) this.#history.shift();
  }

  async summary(input: z.input<typeof metricsSummaryInput> = {}): Promise<MetricsSummary> {
    const { minutes } = metricsSummaryInput.parse(input);
    const now = snapshotOf(await snapshotMetrics(this.#registry), this.#now());
    const since = now.at - minutes * 60_000;
    // The oldest snapshot inside the window (or the first one taken, early after start).
    const base = this.#history.find((s) => s.at >= since) ?? this.#history[0];
    const seconds = Math.max(1, (now.at - (base?.at ?? now.at)) / 1000);
    const routes = [...now.routes].map(([endpoint, [total, bad]]) => {
      const [t0, b0] = base?.routes.get(endpoint) ?? [0, 0];
      const requests = total - t0;
      const baseBuckets = base?.buckets.get(endpoint);
      const buckets = [...(now.buckets.get(endpoint) ?? new Map<number, number>())].map(
        ([le, c]) => [le, c - (baseBuckets?.get(le) ?? 0)] as const,
      );
      const q = (p: number) => {
        const v = histogramQuantile(p, buckets);
        return v === null ? null : round(v, 6);
      };
      return {
        endpoint,
        requests,
        requestsPerSecond: round(requests / seconds),
        errorRate: requests > 0 ? round((bad - b0) / requests) : 0,
        latency: { p50: q(0.5), p95: q(0.95), p99: q(0.99) },
      };
    });
    const services = [...now.services].map(([service, [total, bad]]) => {
      const [t0, b0] = base?.services.get(service) ?? [0, 0];
      const requests = total - t0;
      return { service, requests, requestsPerSecond: round(requests / seconds), errorRate: requests > 0 ? round((bad - b0) / requests) : 0 };
    });
    return { windowSeconds: round(seconds, 1), routes: routes.filter((r) => r.requests > 0), services: services.filter((s) => s.requests > 0) };
  }

  async queryMetric(input: z.input<typeof queryMetricInput>): Promise<z.infer<typeof queryMetricOutput>> {
    const { name, labels } = queryMetricInput.parse(input);
    const metric = this.#registry.getSingleMetric(name) ?? this.#registry.getSingleMetric(name.replace(/_(bucket|sum|count)$/, ''));
    if (metric === undefined) throw new UnknownMetricError(name);
    const data = await metric.get();
    const wanted = Object.entries(labels);
    return {
      name: data.name,
      type: String(data.type),
      help: data.help,
      series: data.values
        .filter((v) => wanted.every(([k, val]) => String((v.labels as Record<string, unknown>)[k]) === val))
        .map((v) => ({
          labels: { ...(v.labels as Record<string, string | number>) },
          value: v.value,
          ...('metricName' in v && typeof v.metricName === 'string' ? { metricName: v.metricName } : {}),
        })),
    };
  }
}
