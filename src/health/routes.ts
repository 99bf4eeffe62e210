import type { FastifyInstance } from 'fastify';
import type { GatewayMetrics } from '../metrics/registry.js';
import type { HealthProber } from './prober.js';
import type { PressureMonitor } from './pressure.js';

export interface HealthRoutesOptions {
  readonly prober: HealthProber;
  readonly metrics: GatewayMetrics;
  /** True once graceful shutdown has begun: readiness drops so load balancers drain us. */
  readonly isShuttingDown: () => boolean;
  /** Circuit breaker state per service (src/resilience), shown as `breakers` in /healthz. */
  readonly breakers?: () => Readonly<Record<string, unknown>>;
  /** Sustained event-loop / heap pressure makes /readyz 503 (and nothing else). */
  readonly pressure?: Pick<PressureMonitor, 'underPressure' | 'last'>;
}

const JSON_TYPE = 'application/json; charset=utf-8';

export async function healthRoutes(app: FastifyInstance, opts: HealthRoutesOptions): Promise<void> {
  const { prober, metrics, isShuttingDown } = opts;

  app.get<{ Querystring: { deep?: string } }>('/healthz', async (request, reply) => {
    const deep = request.query.deep === '1' || request.query.deep === 'true';
    const started = performance.now();
    if (deep) await prober.probeAll();
    const down = prober.snapshot().status === 'down';
    reply.code(down ? 503 : 200).header('content-type', JSON_TYPE).header('cache-control', 'no-store');
    metrics.healthCheckDuration.observe({ deep: deep ? '1' : '0' }, (performance.now() - started) / 1000);
    const json = prober.snapshotJson();
    const breakers = opts.breakers?.();
    // The snapshot is serialised once per probe round; the breakers (small) are spliced in.
    if (breakers === undefined) return reply.send(json);
    return reply.send(`${json.slice(0, -1)},"breakers":${JSON.stringify(breakers)}}`);
  });

  app.get('/livez', async (_request, reply) => reply.header('cache-control', 'no-store').send({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    reply.header('cache-control', 'no-store');
    if (isShuttingDown()) return reply.code(503).send({ status: 'not-ready', reason: 'shutting down' });
    if (!prober.firstRoundDone) return reply.code(503).send({ status: 'not-ready', reason: 'first health probe round not finished' });
    // Out of file descriptors (the probes saw EMFILE/ENFILE): new upstream connections fail too, so
    // a load balancer should send traffic elsewhere; /livez stays 200 (a restart would not help).
    if (prober.localProblem) return reply.code(503).send({ status: 'not-ready', reason: `gateway resources exhausted (${prober.localProblem})` });
    if (opts.pressure?.underPressure) return reply.code(503).send({ status: 'not-ready', reason: 'under pressure', ...opts.pressure.last });
    return reply.send({ status: 'ready' });
  });
}
