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
  /** Upstream MCP servers (mcp/clients), shown as `mcpServers`: state, last error, tool count, protocol version. */
  readonly mcpServers?: () => ReadonlyArray<{ readonly name: string; readonly state: string; readonly lastError?: string; readonly toolCount: number; readonly protocolVersion?: string }>;
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

/**
 * The upstream MCP servers by name; a last error may name an upstream's address, so without an
 * admin credential URLs and host:port pairs in it are replaced by `<address>`.
 */
function mcpServersOf(opts: Pick<HealthRoutesOptions, 'mcpServers'>, full: boolean): Record<string, unknown> | undefined {
  const list = opts.mcpServers?.();
  if (list === undefined || list.length === 0) return undefined;
  const hide = (text: string) => (full ? text : text.replace(/\b[a-z][a-z0-9+.-]*:\/\/\S+/gi, '<address>').replace(/\b[\w.-]+:\d{2,5}\b/g, '<address>'));
  return Object.fromEntries(
    list.map((s) => [
      s.name,
      { state: s.state, toolCount: s.toolCount, ...(s.protocolVersion !== undefined ? { protocolVersion: s.protocolVersion } : {}), ...(s.lastError !== undefined ? { lastError: hide(s.lastError) } : {}) },
    ]),
  );
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
 * the breakers and upstream MCP servers (small) spliced in: `json` is the body.
 */
export function publicHealth(opts: Pick<HealthRoutesOptions, 'prober' | 'breakers' | 'mcpServers'>): () => { status: number; json: string } {
  const { prober } = opts;
  let publicOf: { snapshot: HealthSnapshot; json: string } | undefined;
  return () => {
    const snapshot = prober.snapshot();
    if (publicOf?.snapshot !== snapshot) publicOf = { snapshot, json: JSON.stringify(withoutAddresses(snapshot)) };
    const breakers = opts.breakers?.();
    const mcp = mcpServersOf(opts, false);
    const extra = [
      ...(breakers !== undefined ? [`"breakers":${JSON.stringify(withoutAddresses(breakers))}`] : []),
      ...(mcp !== undefined ? [`"mcpServers":${JSON.stringify(mcp)}`] : []),
    ];
    const json = extra.length === 0 ? publicOf.json : `${publicOf.json.slice(0, -1)},${extra.join(',')}}`;
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
    const mcp = mcpServersOf(opts, true);
    // The snapshot is serialised once per probe round; the breakers and MCP servers (small) are spliced in.
    if (breakers === undefined && mcp === undefined) return reply.send(json);
    const extra = [
      ...(breakers !== undefined ? [`"breakers":${JSON.stringify(breakers)}`] : []),
      ...(mcp !== undefined ? [`"mcpServers":${JSON.stringify(mcp)}`] : []),
    ];
    return reply.send(`${json.slice(0, -1)},${extra.join(',')}}`);
  });

  app.get('/livez', async (_request, reply) => reply.header('cache-control', 'no-store').send({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    const answer = readiness(opts);
    return reply.header('cache-control', 'no-store').code(answer.status).send(answer.body);
  });
}
