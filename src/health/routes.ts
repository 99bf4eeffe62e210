import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { GatewayMetrics } from '../metrics/registry.js';
import { publicProbeError, type HealthProber, type HealthSnapshot } from './prober.js';
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
  /**
   * Whether this request may see upstream addresses (hosts' origins, address-bearing probe
   * errors): an admin credential, as the admin surface asks for it. Absent: nobody may.
   */
  readonly showsAddresses?: (request: FastifyRequest) => Promise<boolean>;
}

const JSON_TYPE = 'application/json; charset=utf-8';

/** Fields that name where an upstream lives. */
const ADDRESS_KEYS = new Set(['origin', 'url', 'urls', 'address', 'host', 'hostname']);

/**
 * The same document without upstream addresses, for callers without an admin credential:
 * address fields removed at any depth (host lists keep their order, so an operator can still
 * tell the first host from the second) and probe errors reduced to their code.
 */
export function withoutAddresses(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutAddresses);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (ADDRESS_KEYS.has(k)) continue;
    if (k === 'error' && typeof v === 'string') out[k] = publicProbeError(v);
    else out[k] = withoutAddresses(v);
  }
  return out;
}

export async function healthRoutes(app: FastifyInstance, opts: HealthRoutesOptions): Promise<void> {
  const { prober, metrics, isShuttingDown } = opts;
  // The public form of the snapshot, made once per probe round (as the full one is).
  let publicOf: { snapshot: HealthSnapshot; json: string } | undefined;
  const publicJson = (): string => {
    const snapshot = prober.snapshot();
    if (publicOf?.snapshot !== snapshot) publicOf = { snapshot, json: JSON.stringify(withoutAddresses(snapshot)) };
    return publicOf.json;
  };

  app.get<{ Querystring: { deep?: string } }>('/healthz', async (request, reply) => {
    const deep = request.query.deep === '1' || request.query.deep === 'true';
    const started = performance.now();
    if (deep) await prober.probeAll();
    const down = prober.snapshot().status === 'down';
    reply.code(down ? 503 : 200).header('content-type', JSON_TYPE).header('cache-control', 'no-store');
    const full = (await opts.showsAddresses?.(request)) === true;
    metrics.healthCheckDuration.observe({ deep: deep ? '1' : '0' }, (performance.now() - started) / 1000);
    const json = full ? prober.snapshotJson() : publicJson();
    const breakers = opts.breakers?.();
    // The snapshot is serialised once per probe round; the breakers (small) are spliced in.
    if (breakers === undefined) return reply.send(json);
    return reply.send(`${json.slice(0, -1)},"breakers":${JSON.stringify(full ? breakers : withoutAddresses(breakers))}}`);
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
