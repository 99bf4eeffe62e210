import { z } from 'zod';
import type { Checker } from './check.js';
import { booleanFromEnv, httpUrl, intFromEnv, secondsFromEnv, serviceNameSchema } from './fields.js';

/*
 * The upstream services: the five of the platform (URLs and switches from the environment,
 * the rest from the file's `services`), services the file adds, their connection pools,
 * timeouts, retries, breakers, fallbacks and health probes (src/proxy, src/resilience,
 * src/health).
 */

export const SERVICE_NAMES = ['twin', 'agent-controller', 'knowledge', 'fog', 'p2p'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

export const servicesEnv = z.object({
  ENABLE_AGENT_FORGE: booleanFromEnv.default(true),
  ENABLE_P2P_FOG: booleanFromEnv.default(true),
  ENABLE_RAG_PIPELINE: booleanFromEnv.default(true),
  CONNECTION_POOL_SIZE: intFromEnv(1, 10_000).default(100),
  REQUEST_QUEUE_SIZE: intFromEnv(1, 1_000_000).default(1000),
  REQUEST_TIMEOUT: secondsFromEnv.default(30),
  TWIN_SERVICE_URL: httpUrl.default('http://localhost:8001'),
  AGENT_CONTROLLER_URL: httpUrl.default('http://localhost:8002'),
  KNOWLEDGE_SYSTEM_URL: httpUrl.default('http://localhost:8003'),
  FOG_COORDINATOR_URL: httpUrl.default('http://localhost:8004'),
  P2P_BRIDGE_URL: httpUrl.default('http://localhost:8005'),
});
type ServicesEnv = z.output<typeof servicesEnv>;

/** Environment variable that holds each service's base URL. */
export const SERVICE_URL_ENV = {
  twin: 'TWIN_SERVICE_URL',
  'agent-controller': 'AGENT_CONTROLLER_URL',
  knowledge: 'KNOWLEDGE_SYSTEM_URL',
  fog: 'FOG_COORDINATOR_URL',
  p2p: 'P2P_BRIDGE_URL',
} as const satisfies Record<ServiceName, keyof ServicesEnv>;

/** The switch that turns each service off, when it has one. */
export const SERVICE_SWITCH_ENV = {
  'agent-controller': 'ENABLE_AGENT_FORGE',
  knowledge: 'ENABLE_RAG_PIPELINE',
  fog: 'ENABLE_P2P_FOG',
  p2p: 'ENABLE_P2P_FOG',
} as const satisfies Partial<Record<ServiceName, keyof ServicesEnv>>;

/** Retries of idempotent requests (src/resilience/retry.ts); defaults there. */
export const serviceRetriesSchema = z
  .strictObject({
    /** Retries after the first attempt; 0 never retries. */
    maxRetries: z.number().int().min(0).max(5).default(2),
    baseDelayMs: z.number().int().min(0).max(10_000).default(25),
    maxDelayMs: z.number().int().min(0).max(60_000).default(250),
    /** Upstream statuses retried (connection errors always are). */
    onStatuses: z.array(z.number().int().min(500).max(599)).default([502, 503, 504]),
    /** Retries at most this share of the service's requests over budgetWindowMs. */
    budgetPercent: z.number().min(0).max(100).default(20),
    /** Retries always allowed per window (a quiet service can still retry). */
    budgetMinRetries: z.number().int().min(0).max(1000).default(3),
    budgetWindowMs: z.number().int().min(1000).max(600_000).default(10_000),
  })
  .prefault({});

/** The circuit breaker of each upstream host of a service (src/resilience/breaker.ts, opossum). */
export const serviceBreakerSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    /** Open when more than this share of calls in the window failed (5xx, connection errors, timeouts). */
    errorThresholdPercentage: z.number().min(0).max(100).default(50),
    /** Calls in the window before the breaker may open at all. */
    volumeThreshold: z.number().int().min(0).max(1_000_000).default(20),
    /** The rolling window of the error rate, in ms (10 buckets). */
    rollingCountTimeout: z.number().int().min(1000).max(600_000).default(10_000),
    /** How long an open breaker waits before letting one trial call through (half-open), in ms. */
    resetTimeout: z.number().int().min(100).max(3_600_000).default(30_000),
  })
  .prefault({});

/**
 * What answers for a service when its circuit breaker is open, its upstream cannot be reached
 * or it timed out (src/resilience/fallback.ts): `fail` (the gateway's error, the default),
 * `service:<other>` (the request goes to another configured service), or a static JSON answer.
 */
export const serviceFallbackSchema = z.union(
  [
    z.literal('fail'),
    /** The last cached good answer (src/cache), with Warning and Age; `fail` when there is none. */
    z.literal('stale-cache'),
    z.string().regex(/^service:[a-z][a-z0-9-]{0,62}$/, 'service:<name> names another configured service'),
    z.strictObject({
      type: z.literal('static'),
      /** HTTP status of the static answer. */
      status: z.number().int().min(200).max(599).default(200),
      /** The JSON body sent as is (application/json). */
      body: z.json(),
    }),
  ],
  { error: 'fallback is `fail`, `stale-cache`, `service:<name>` or `{ type: static, status, body }`' },
);

const serviceFileSchema = z.strictObject({
  /** One base URL, or several for load balancing; defaults to the service's *_URL variable. */
  urls: z.array(httpUrl).min(1).optional(),
  healthPath: z.string().startsWith('/').default('/health'),
  /** Per-service upstream timeout; defaults to REQUEST_TIMEOUT. */
  timeoutMs: z.number().int().positive().max(3_600_000).optional(),
  enabled: z.boolean().optional(),
  /** Most requests in flight to this service at once (503 GW_GATEWAY_OVERLOADED past it); default and cap REQUEST_QUEUE_SIZE. */
  maxInFlight: z.number().int().min(1).max(1_000_000).optional(),
  retries: serviceRetriesSchema.optional(),
  breaker: serviceBreakerSchema.optional(),
  /** When the breaker is open, the upstream is unreachable or timed out; default `fail`. */
  fallback: serviceFallbackSchema.optional(),
});
type ServiceFile = z.output<typeof serviceFileSchema>;

export const servicesFileSchema = z.record(serviceNameSchema, serviceFileSchema).default({});

export const healthSchema = z
  .strictObject({
    intervalMs: z.number().int().min(100).max(3_600_000).default(5000),
    timeoutMs: z.number().int().min(10).max(60_000).default(2000),
  })
  .prefault({});

// --- the resolved shape ---

/** A service's fallback, resolved: the other service's name, or the static answer's body serialized once; absent for `fail`. */
export const serviceFallbackConfigSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('service'), service: z.string() }),
  z.object({ type: z.literal('stale-cache') }),
  z.object({ type: z.literal('static'), status: z.number(), body: z.string() }),
]);

/** A service as the gateway uses it. */
export const serviceConfigSchema = z.strictObject({
  name: z.string(),
  urls: z.array(z.string()),
  healthPath: z.string(),
  timeoutMs: z.number(),
  /** Most requests in flight to this service (backpressure); at most REQUEST_QUEUE_SIZE (the default). */
  maxInFlight: z.number().optional(),
  /** Retries of idempotent requests; absent: the defaults of src/resilience/retry.ts. */
  retries: serviceRetriesSchema.optional(),
  /** Circuit breaker per upstream host; absent: the schema defaults. */
  breaker: serviceBreakerSchema.optional(),
  /** Who answers when the breaker is open, the upstream is unreachable or timed out; absent: `fail`. */
  fallback: serviceFallbackConfigSchema.optional(),
  enabled: z.boolean(),
  /** Why the service is off (the variable or file key that turned it off), when it is. */
  disabledBy: z.string().optional(),
  /** Made from a route's `split.canary.urls`: the canary URL set of this service. */
  canaryOf: z.string().optional(),
});
export type ResolvedService = z.output<typeof serviceConfigSchema>;

// --- checks across keys ---

/** The services a route, a fallback or the routing model may name, as far as the input parsed. */
export class KnownServices {
  /** Name to the route service whose canary URL set it is, for canaries. */
  readonly #names = new Map<string, { canaryOf?: string; urls?: string }>();
  /** False when an entry that could have added a service did not parse: then no name is called unknown. */
  complete = true;

  constructor(names: Iterable<string>) {
    for (const name of names) this.#names.set(name, {});
  }
  has(name: string): boolean {
    return this.#names.has(name);
  }
  get(name: string): { canaryOf?: string; urls?: string } | undefined {
    return this.#names.get(name);
  }
  add(name: string, canary: { canaryOf?: string; urls?: string } = {}): void {
    this.#names.set(name, canary);
  }
  /** "unknown service ..." for a name not known, when every name is known; undefined otherwise. */
  unknown(name: string): string | undefined {
    if (this.#names.has(name) || !this.complete) return undefined;
    return `unknown service "${name}" (known: ${[...this.#names.keys()].join(', ')})`;
  }
}

/**
 * A service the file adds needs URLs; a fallback names another configured service. `c` is
 * rooted at the file's `services`; returns the services known so far (undefined when
 * `services` did not parse).
 */
export function checkServices(c: Checker, services: Record<string, ServiceFile>): KnownServices | undefined {
  if (!c.readable()) return undefined;
  const known = new KnownServices(SERVICE_NAMES);
  for (const [name, svc] of Object.entries(services)) {
    if (known.has(name)) continue;
    if (c.readable(name) && c.valid(name, 'urls') && svc.urls === undefined) {
      c.problem([name, 'urls'], `required for a service that is not one of ${SERVICE_NAMES.join(', ')}`);
      continue;
    }
    known.add(name);
  }
  for (const [name, svc] of Object.entries(services)) {
    if (!known.has(name) || !c.valid(name, 'fallback')) continue;
    const f = svc.fallback;
    if (typeof f !== 'string' || !f.startsWith('service:')) continue;
    const target = f.slice('service:'.length);
    if (target === name) c.problem([name, 'fallback'], 'a service cannot fall back to itself');
    else if (!known.has(target)) c.problem([name, 'fallback'], `no service named ${target}`);
  }
  return known;
}

// --- resolution ---

/** Absent for `fail` (the default). */
function resolveFallback(f: ServiceFile['fallback']): { fallback?: z.output<typeof serviceFallbackConfigSchema> } {
  if (f === undefined || f === 'fail') return {};
  if (f === 'stale-cache') return { fallback: { type: 'stale-cache' } };
  if (typeof f === 'string') return { fallback: { type: 'service', service: f.slice('service:'.length) } };
  return { fallback: { type: 'static', status: f.status, body: JSON.stringify(f.body) } };
}

/** The five services (URLs from their *_URL variables unless the file gives some) and those the file adds. */
export function resolveServices(env: ServicesEnv, file: Record<string, ServiceFile>): Record<string, ResolvedService> {
  const services: Record<string, ResolvedService> = {};
  const defaultTimeoutMs = Math.round(env.REQUEST_TIMEOUT * 1000);
  const common = (svc: ServiceFile | undefined) => ({
    healthPath: svc?.healthPath ?? '/health',
    timeoutMs: svc?.timeoutMs ?? defaultTimeoutMs,
    maxInFlight: Math.min(svc?.maxInFlight ?? env.REQUEST_QUEUE_SIZE, env.REQUEST_QUEUE_SIZE),
    ...(svc?.retries !== undefined ? { retries: svc.retries } : {}),
    ...(svc?.breaker !== undefined ? { breaker: svc.breaker } : {}),
    ...resolveFallback(svc?.fallback),
  });
  for (const name of SERVICE_NAMES) {
    const fromFile = file[name];
    const switchKey = (SERVICE_SWITCH_ENV as Partial<Record<string, keyof ServicesEnv>>)[name];
    const switchedOff = switchKey !== undefined && env[switchKey] === false;
    const fileOff = fromFile?.enabled === false;
    services[name] = {
      name,
      urls: fromFile?.urls ?? [env[SERVICE_URL_ENV[name]]],
      ...common(fromFile),
      enabled: !switchedOff && !fileOff,
      ...(switchedOff ? { disabledBy: `${switchKey}=false` } : fileOff ? { disabledBy: `services.${name}.enabled=false` } : {}),
    };
  }
  for (const [name, svc] of Object.entries(file)) {
    if (name in services || svc.urls === undefined) continue;
    services[name] = {
      name,
      urls: svc.urls,
      ...common(svc),
      enabled: svc.enabled ?? true,
      ...(svc.enabled === false ? { disabledBy: `services.${name}.enabled=false` } : {}),
    };
  }
  return services;
}

/** The upstream connection pools and the default upstream timeout. */
export function resolveProxy(env: ServicesEnv) {
  return {
    connectionPoolSize: env.CONNECTION_POOL_SIZE,
    requestQueueSize: env.REQUEST_QUEUE_SIZE,
    requestTimeoutMs: Math.round(env.REQUEST_TIMEOUT * 1000),
  };
}
