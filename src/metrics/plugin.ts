import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { RouteAuthPolicy } from '../config/index.js';
import type { MetricsSource } from './cluster.js';
import type { GatewayMetrics } from './registry.js';
import { routeOf } from '../request-route.js';

export interface MetricsPluginOptions {
  readonly metrics: GatewayMetrics;
  /** Serve GET /metrics (ENABLE_METRICS); the counters are kept either way for the admin surfaces. */
  readonly expose: boolean;
  readonly authPolicy: RouteAuthPolicy;
  /** Where the exposition comes from (src/metrics/cluster.ts: all workers' sum under WORKER_THREADS); default: the registry. */
  readonly source?: MetricsSource;
}

/**
 * Counts every response by method, route pattern and status. The endpoint label is the
 * Fastify route pattern (e.g. "/v1/twin/*"), or "unmatched" for 404s, never the raw URL,
 * so label cardinality stays bounded whatever clients send.
 */
async function metricsPlugin(app: FastifyInstance, opts: MetricsPluginOptions): Promise<void> {
  const { metrics } = opts;
  // Synchronous: a callback hook, no promise per request.
  app.addHook('onResponse', (request, reply, done) => {
    const labels = {
      method: request.method,
      endpoint: routeOf(request).url ?? 'unmatched',
      status: String(reply.statusCode),
    };
    metrics.requestsTotal.inc(labels);
    metrics.requestDuration.observe(labels, reply.elapsedTime / 1000);
    metrics.callerRequests.inc({ caller_class: request.principal == null ? 'anonymous' : request.principal.kind });
    done();
  });

  if (opts.expose) {
    const source = opts.source ?? { contentType: metrics.registry.contentType, text: () => metrics.registry.metrics() };
    app.get('/metrics', { config: { authPolicy: opts.authPolicy } }, async (_request, reply) => {
      const body = await source.text();
      return reply.header('content-type', source.contentType).header('cache-control', 'no-store').send(body);
    });
  }
}

export default fp(metricsPlugin, { name: 'gateway-metrics', fastify: '5.x' });
