import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { RouteAuthPolicy } from '../config/index.js';
import type { GatewayMetrics } from './registry.js';

export interface MetricsPluginOptions {
  readonly metrics: GatewayMetrics;
  /** Serve GET /metrics (ENABLE_METRICS); the counters are kept either way for the admin surfaces. */
  readonly expose: boolean;
  readonly authPolicy: RouteAuthPolicy;
}

/**
 * Counts every response by method, route pattern and status. The endpoint label is the
 * Fastify route pattern (e.g. "/v1/twin/*"), or "unmatched" for 404s, never the raw URL,
 * so label cardinality stays bounded whatever clients send.
 */
async function metricsPlugin(app: FastifyInstance, opts: MetricsPluginOptions): Promise<void> {
  const { metrics } = opts;
  app.addHook('onResponse', async (request, reply) => {
    const labels = {
      method: request.method,
      endpoint: request.routeOptions.url ?? 'unmatched',
      status: String(reply.statusCode),
    };
    metrics.requestsTotal.inc(labels);
    metrics.requestDuration.observe(labels, reply.elapsedTime / 1000);
    metrics.callerRequests.inc({ caller_class: request.principal == null ? 'anonymous' : request.principal.kind });
  });

  if (opts.expose) {
    app.get('/metrics', { config: { authPolicy: opts.authPolicy } }, async (_request, reply) => {
      const body = await metrics.registry.metrics();
      return reply.header('content-type', metrics.registry.contentType).header('cache-control', 'no-store').send(body);
    });
  }
}

export default fp(metricsPlugin, { name: 'gateway-metrics', fastify: '5.x' });
