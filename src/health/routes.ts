import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { GatewayMetrics } from '../metrics/registry.js';
import type { HealthProber, HealthSnapshot } from './prober.js';
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
/** Probe errors shown to everyone: error codes and the gateway's own fixed phrases. */
const PUBLIC_ERROR = /^(?:[A-Z][A-Z0-9_]{1,40}|timeout|probe failed|health endpoint answered \d{3})$/;

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
    if (k === 'error' && typeof v === 'string') out[k] = PUBLIC_ERROR.test(v) ? v : 'probe failed';
    else out[k] = withoutAddresses(v);
  }
  return out;
}

/** What a probe answers: status and JSON body (also served off the event loop: src/server/probe-listener.ts). */
export interface ProbeAnswer {
  readonly status: number;
  readonly body: Readonly<Record<string, unknown>>;
}

/** /readyz's answer now. */
export function readiness(opts: Pick<HealthRoutesOptions, 'prober' | 'isShuttingDown' | 'pressure'>): ProbeAnswer {
  const { prober } = opts;
  if (opts.isShuttingDown()) return { status: 503, body: { status: 'not-ready', reason: 'shutting down' } };
  if (!prober.firstRoundDone) return { status: 503, body: { status: 'not-ready', reason: 'first health probe round not finished' } };
  // Out of file descriptors (the probes saw EMFILE/ENFILE): new upstream connections fail too, so
  // a load balancer should send traffic elsewhere; /livez stays 200 (a restart would not help).
  if (prober.localProblem) return { status: 503, body: { status: 'not-ready', reason: `gateway resources exhausted (${prober.localProblem})` } };
  if (opts.pressure?.underPressure) return { status: 503, body: { status: 'not-ready', reason: 'under pressure', ...opts.pressure.last } };
  return { status: 200, body: { status: 'ready' } };
}

/**
 * /healthz as anyone may see it (no upstream addresses), serialised once per probe round with
 * the breakers (small) spliced in: `json` is the body.
 */
export function publicHealth(opts: Pick<HealthRoutesOptions, 'prober' | 'breakers'>): () => { status: number; json: string } {
  const { prober } = opts;
  let publicOf: { snapshot: HealthSnapshot; json: string } | undefined;
  return () => {
    const snapshot = prober.snapshot();
    if (publicOf?.snapshot !== snapshot) publicOf = { snapshot, json: JSON.stringify(withoutAddresses(snapshot)) };
    const breakers = opts.breakers?.();
    const json = breakers === undefined ? publicOf.json : `${publicOf.json.slice(0, -1)},"breakers":${JSON.stringify(withoutAddresses(breakers))}}`;
    return { status: snapshot.status === 'down' ? 503 : 200, json };
  };
}

export async function healthRoutes(app: FastifyInstance, opts: HealthRoutesOptions): Promise<void> {
  const { prober, metrics } = opts;
  // The public form of the snapshot, made once per probe round (as the full one is).
  const publicAnswer = publicHealth(opts);

  app.get<{ Querystring: { deep?: string } }>('/healthz', async (request, reply) => {
    const deep = request.query.deep === '1' || request.query.deep === 'true';
    const started = performance.now();
    if (deep) await prober.probeAll();
    const down = prober.snapshot().status === 'down';
    reply.code(down ? 503 : 200).header('content-type', JSON_TYPE).header('cache-control', 'no-store');
    const full = (await opts.showsAddresses?.(request)) === true;
    metrics.healthCheckDuration.observe({ deep: deep ? '1' : '0' }, (performance.now() - started) / 1000);
    if (!full) return reply.send(publicAnswer().json);
    const json = prober.snapshotJson();
    const breakers = opts.breakers?.();
    // The snapshot is serialised once per probe round; the breakers (small) are spliced in.
    if (breakers === undefined) return reply.send(json);
    return reply.send(`${json.slice(0, -1)},"breakers":${JSON.stringify(breakers)}}`);
  });

  app.get('/livez', async (_request, reply) => reply.header('cache-control', 'no-store').send({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    const answer = readiness(opts);
    return reply.header('cache-control', 'no-store').code(answer.status).send(answer.body);
  });
}
