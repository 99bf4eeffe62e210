import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import {
  envSchema,
  fileSchema,
  SERVICE_NAMES,
  SERVICE_SWITCH_ENV,
  SERVICE_URL_ENV,
  SCOPE_VALUES,
  VALIDATION_MODES,
  type EnvConfig,
  type FileConfig,
  type HttpMethod,
  serviceRetriesSchema,
  serviceBreakerSchema,
  serviceFallbackSchema,
} from './schema.js';
import { createHash } from 'node:crypto';

export type ServiceRetriesConfig = z.output<typeof serviceRetriesSchema>;
export type ServiceBreakerConfig = z.output<typeof serviceBreakerSchema>;
export type PressureConfig = FileConfig['server']['pressure'];

/** A service's fallback, resolved: the other service's name, or the static answer's body serialized once. */
export type ServiceFallback =
  | { readonly type: 'service'; readonly service: string }
  | { readonly type: 'stale-cache' }
  | { readonly type: 'static'; readonly status: number; readonly body: string };

/** Absent for `fail` (the default). */
function resolveFallback(f: z.output<typeof serviceFallbackSchema> | undefined): { fallback?: ServiceFallback } {
  if (f === undefined || f === 'fail') return {};
  if (f === 'stale-cache') return { fallback: { type: 'stale-cache' } };
  if (typeof f === 'string') return { fallback: { type: 'service', service: f.slice('service:'.length) } };
  return { fallback: { type: 'static', status: f.status, body: JSON.stringify(f.body) } };
}

export interface ServiceConfig {
  readonly name: string;
  readonly urls: readonly string[];
  readonly healthPath: string;
  readonly timeoutMs: number;
  /** Most requests in flight to this service (backpressure); at most REQUEST_QUEUE_SIZE (the default). */
  readonly maxInFlight?: number;
  /** Retries of idempotent requests; absent: the defaults of src/resilience/retry.ts. */
  readonly retries?: ServiceRetriesConfig;
  /** Circuit breaker per upstream host; absent: the schema defaults. */
  readonly breaker?: ServiceBreakerConfig;
  /** Who answers when the breaker is open, the upstream is unreachable or timed out; absent: `fail`. */
  readonly fallback?: ServiceFallback;
  readonly enabled: boolean;
  /** Why the service is off (the variable or file key that turned it off), when it is. */
  readonly disabledBy?: string;
  /** Made from a route's `split.canary.urls`: the canary URL set of this service. */
  readonly canaryOf?: string;
}

export type ValidationMode = (typeof VALIDATION_MODES)[number];
export type ScopeName = (typeof SCOPE_VALUES)[number];

export interface RouteAuthPolicy {
  readonly required: boolean;
  /** One scope for every method; otherwise read for GET/HEAD/OPTIONS and write for the rest. */
  readonly scope?: ScopeName;
  readonly mfa?: boolean;
}

export interface RouteConfig {
  readonly id: string;
  readonly prefix: string;
  readonly service: string;
  /** null: every method. */
  readonly methods: readonly HttpMethod[] | null;
  readonly rewritePrefix?: string;
  readonly auth: RouteAuthPolicy;
  readonly validation: ValidationMode;
  readonly textFields: readonly string[];
  readonly freeTextFields: readonly string[];
  readonly bodyLimitBytes?: number;
  /** The route's own quota (separate budget), or false for none; absent: the global quotas. */
  readonly rateLimit?: RateQuota | false;
  /** Response cache of this route (src/cache); absent: only what upstreams mark cacheable. */
  readonly cache?: RouteCacheConfig | false;
  /** Stable/canary split (src/routing/traffic-split.ts); absent: every request goes to `service`. */
  readonly split?: RouteSplitConfig;
}

export interface SplitWeights {
  readonly stable: number;
  readonly canary: number;
}

export interface RouteSplitConfig {
  /** The service of the canary side: another service, or `<service>-canary` made from a URL set. */
  readonly canaryService: string;
  /** Weights at first start; the live ones are in the state store. */
  readonly weights: SplitWeights;
  readonly sticky: 'cookie' | 'ip';
}

/** The gateway as an MCP server (mcp/server). */
export interface McpConfig {
  readonly enabled: boolean;
  /** false only outside production (MCP_REQUIRE_AUTH). */
  readonly requireAuth: boolean;
  readonly maxStreams: number;
  readonly maxStreamsPerPrincipal: number;
  readonly maxStreamsPerAddress: number;
  readonly adminReservedStreams: number;
  readonly sessionIdleSeconds: number;
  readonly streamRetryMs: number;
  /** Browser origins allowed on /mcp; absent: the CORS origins (plus localhost ones outside production). */
  readonly allowedOrigins?: readonly string[];
  /** Host names allowed on /mcp; absent: from resourceUrl (plus localhost names outside production). */
  readonly allowedHosts?: readonly string[];
  readonly resourceUrl?: string;
}

export interface RouteCacheConfig {
  readonly ttlSeconds: number;
  readonly perUser: boolean;
}

export interface ResponseCacheConfig {
  readonly enabled: boolean;
  readonly maxEntryBytes: number;
  readonly maxTotalBytes: number;
  readonly staleSeconds: number;
}

/** N requests per sliding window. */
export interface RateQuota {
  readonly requests: number;
  readonly windowSeconds: number;
}

export interface RateLimitConfig {
  readonly enabled: boolean;
  readonly principal: RateQuota;
  readonly ip: RateQuota;
  readonly allowList: { readonly keys: readonly string[]; readonly cidrs: readonly string[] };
  readonly threat: FileConfig['rateLimit']['threat'];
}

export interface StateConfig {
  readonly keyPrefix: string;
  readonly commandTimeoutMs: number;
}

/** ML routing of /v1/query and /v1/upload (src/routing/model). */
export interface RoutingConfig {
  readonly enabled: boolean;
  /** Absent: the gateway's own routing-models/ folder. */
  readonly modelsDir?: string;
  /** A model file that overrides the active pointer of modelsDir. */
  readonly model?: string;
  readonly shadowModel?: string;
  /** The services the model chooses among (its labels must be exactly these). */
  readonly services: readonly string[];
  readonly confidenceThreshold: number;
  readonly defaultService: string;
  readonly ambiguous: 'default' | '300';
  readonly watchPointer: boolean;
  readonly shadowQueueSize: number;
  /** The HuggingFace zero-shot validator (`model validate`); the token is in `secrets.hfToken`. */
  readonly validator: { readonly model: string; readonly endpointUrl?: string };
}

export interface ApiKeyConfig {
  readonly name: string;
  readonly sha256: string;
  readonly scopes: readonly ScopeName[];
  readonly totpSecret?: string;
}

export interface AuthConfig {
  readonly jwt: FileConfig['auth']['jwt'];
  readonly apiKeys: readonly ApiKeyConfig[];
  readonly tokens: FileConfig['auth']['tokens'];
  readonly requireMfaForAdmin: boolean;
  readonly publicMetrics: boolean;
}

export interface GatewayConfig {
  readonly environment: EnvConfig['ENVIRONMENT'];
  readonly logLevel: EnvConfig['LOG_LEVEL'];
  readonly server: {
    readonly host: string;
    readonly port: number;
    readonly shutdownTimeoutMs: number;
    /** SIGTERM: serve on with /readyz 503 this long before closing the listener. */
    readonly drainDelayMs: number;
    readonly trustProxy: boolean | readonly string[];
    /** Event-loop / heap pressure watched for /readyz (src/health/pressure.ts). */
    readonly pressure: PressureConfig;
  };
  readonly proxy: {
    readonly connectionPoolSize: number;
    readonly requestQueueSize: number;
    readonly requestTimeoutMs: number;
  };
  readonly workerThreads: number;
  readonly websocketsEnabled: boolean;
  readonly metrics: { readonly enabled: boolean; readonly durationBuckets: readonly number[] };
  readonly health: { readonly intervalMs: number; readonly timeoutMs: number };
  readonly services: Readonly<Record<string, ServiceConfig>>;
  readonly routes: readonly RouteConfig[];
  readonly auth: AuthConfig;
  readonly cors: FileConfig['cors'];
  readonly limits: FileConfig['limits'];
  readonly rateLimit: RateLimitConfig;
  readonly state: StateConfig;
  readonly cache: ResponseCacheConfig;
  readonly routing: RoutingConfig;
  readonly mcp: McpConfig;
  /** Secrets: never log this object whole; `redactConfig` gives a loggable view. */
  readonly secrets: {
    readonly apiKey?: string;
    readonly secretKey?: string;
    readonly jwtSecretKey?: string;
    /** HF_TOKEN, for `model validate`. */
    readonly hfToken?: string;
  };
  readonly redisUrl?: string;
  readonly configFile?: string;
}

export type LoadResult = { ok: true; config: GatewayConfig } | { ok: false; problems: string[] };

const ROUTE_DEFAULTS = {
  methods: null,
  auth: { required: true },
  validation: 'strict',
  textFields: [],
  freeTextFields: [],
} as const satisfies Partial<RouteConfig>;

export const DEFAULT_ROUTES: readonly RouteConfig[] = [
  { id: 'twin', prefix: '/v1/twin', service: 'twin', ...ROUTE_DEFAULTS },
  { id: 'agents', prefix: '/v1/agents', service: 'agent-controller', ...ROUTE_DEFAULTS },
  { id: 'knowledge', prefix: '/v1/knowledge', service: 'knowledge', ...ROUTE_DEFAULTS },
  { id: 'fog', prefix: '/v1/fog', service: 'fog', ...ROUTE_DEFAULTS },
  { id: 'p2p', prefix: '/v1/p2p', service: 'p2p', ...ROUTE_DEFAULTS },
];

/** The name of the admin key made from the API_KEY variable (its principal is `key:env-api-key`). */
export const ENV_API_KEY_NAME = 'env-api-key';

const DEFAULT_DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Secrets that ship in examples and must never reach production. */
const KNOWN_DEFAULT_SECRETS = new Set([
  'changeme',
  'change-me',
  'secret',
  'dev-secret',
  'development',
  'your-secret-key',
  'your-jwt-secret',
  'default',
  'test',
]);
const MIN_PRODUCTION_SECRET_LENGTH = 32;

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out;
}

function zodProblems(error: z.ZodError, prefix: string): string[] {
  const problems: string[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) problems.push(`${prefix}${formatPath([...issue.path, key])}: unknown key`);
      continue;
    }
    const where = formatPath(issue.path);
    problems.push(`${prefix}${where === '' ? '(root)' : where}: ${issue.message}`);
  }
  return problems;
}

function readYaml(file: string): { ok: true; value: unknown } | { ok: false; problems: string[] } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return { ok: false, problems: [`${file}: cannot read file (${(err as NodeJS.ErrnoException).code ?? String(err)})`] };
  }
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      problems: doc.errors.map((e) => {
        const pos = e.linePos?.[0];
        const message = (e.message.split('\n')[0] ?? e.message).replace(/ at line \d+, column \d+:?$/, '');
        return `${file}${pos ? `:${pos.line}:${pos.col}` : ''}: ${message}`;
      }),
    };
  }
  return { ok: true, value: doc.toJS() ?? {} };
}

/** Environment variables the schema knows, taken from a process-like environment. */
function pickEnv(env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const picked: Record<string, string> = {};
  for (const key of Object.keys(envSchema.shape)) {
    const value = env[key];
    // An empty variable means "not set", as a shell `FOO= cmd` usually intends.
    if (value !== undefined && value !== '') picked[key] = value;
  }
  return picked;
}

function productionSecretProblems(env: EnvConfig): string[] {
  if (env.ENVIRONMENT !== 'production') return [];
  const problems: string[] = [];
  for (const key of ['SECRET_KEY', 'JWT_SECRET_KEY', 'API_KEY'] as const) {
    const value = env[key];
    if (value === undefined) {
      if (key !== 'API_KEY') problems.push(`${key}: required when ENVIRONMENT=production`);
      continue;
    }
    if (KNOWN_DEFAULT_SECRETS.has(value.toLowerCase())) problems.push(`${key}: is a well-known default value; set a random secret`);
    else if (value.length < MIN_PRODUCTION_SECRET_LENGTH)
      problems.push(`${key}: must be at least ${MIN_PRODUCTION_SECRET_LENGTH} characters when ENVIRONMENT=production`);
  }
  return problems;
}

function resolveServices(env: EnvConfig, file: FileConfig, problems: string[]): Record<string, ServiceConfig> {
  const services: Record<string, ServiceConfig> = {};
  const defaultTimeoutMs = Math.round(env.REQUEST_TIMEOUT * 1000);
  for (const name of SERVICE_NAMES) {
    const fromFile = file.services[name];
    const switchKey = (SERVICE_SWITCH_ENV as Partial<Record<string, keyof EnvConfig>>)[name];
    const switchedOff = switchKey !== undefined && env[switchKey] === false;
    const fileOff = fromFile?.enabled === false;
    services[name] = {
      name,
      urls: fromFile?.urls ?? [env[SERVICE_URL_ENV[name]]],
      healthPath: fromFile?.healthPath ?? '/health',
      timeoutMs: fromFile?.timeoutMs ?? defaultTimeoutMs,
      maxInFlight: Math.min(fromFile?.maxInFlight ?? env.REQUEST_QUEUE_SIZE, env.REQUEST_QUEUE_SIZE),
      ...(fromFile?.retries !== undefined ? { retries: fromFile.retries } : {}),
      ...(fromFile?.breaker !== undefined ? { breaker: fromFile.breaker } : {}),
      ...resolveFallback(fromFile?.fallback),
      enabled: !switchedOff && !fileOff,
      ...(switchedOff ? { disabledBy: `${switchKey}=false` } : fileOff ? { disabledBy: `services.${name}.enabled=false` } : {}),
    };
  }
  for (const [name, svc] of Object.entries(file.services)) {
    if (name in services) continue;
    if (svc.urls === undefined) {
      problems.push(`services.${name}.urls: required for a service that is not one of ${SERVICE_NAMES.join(', ')}`);
      continue;
    }
    services[name] = {
      name,
      urls: svc.urls,
      healthPath: svc.healthPath,
      timeoutMs: svc.timeoutMs ?? defaultTimeoutMs,
      maxInFlight: Math.min(svc.maxInFlight ?? env.REQUEST_QUEUE_SIZE, env.REQUEST_QUEUE_SIZE),
      ...(svc.retries !== undefined ? { retries: svc.retries } : {}),
      ...(svc.breaker !== undefined ? { breaker: svc.breaker } : {}),
      ...resolveFallback(svc.fallback),
      enabled: svc.enabled ?? true,
      ...(svc.enabled === false ? { disabledBy: `services.${name}.enabled=false` } : {}),
    };
  }
  for (const svc of Object.values(services)) {
    const f = svc.fallback;
    if (f?.type !== 'service') continue;
    if (f.service === svc.name) problems.push(`services.${svc.name}.fallback: a service cannot fall back to itself`);
    else if (services[f.service] === undefined) problems.push(`services.${svc.name}.fallback: no service named ${f.service}`);
  }
  return services;
}

function resolveRoutes(file: FileConfig, services: Record<string, ServiceConfig>, problems: string[]): RouteConfig[] {
  const byPrefix = new Map<string, RouteConfig>();
  for (const route of DEFAULT_ROUTES) byPrefix.set(route.prefix, route);
  const ids = new Map<string, number>();
  file.routes.forEach((r, i) => {
    if (!(r.service in services)) {
      problems.push(`routes[${i}].service: unknown service "${r.service}" (known: ${Object.keys(services).join(', ')})`);
      return;
    }
    const id = r.id ?? (r.prefix.replace(/^\//, '').replace(/[^a-z0-9_.-]+/gi, '-').toLowerCase() || 'root');
    const seen = ids.get(id);
    if (seen !== undefined) {
      problems.push(`routes[${i}].id: "${id}" is already used by routes[${seen}]`);
      return;
    }
    ids.set(id, i);
    // A file route with a default prefix replaces the default route.
    byPrefix.set(r.prefix, {
      id,
      prefix: r.prefix,
      service: r.service,
      methods: r.methods ? [...new Set(r.methods)] : null,
      ...(r.rewritePrefix !== undefined ? { rewritePrefix: r.rewritePrefix } : {}),
      auth: r.auth ?? ROUTE_DEFAULTS.auth,
      validation: r.validation ?? 'strict',
      textFields: r.textFields ?? [],
      freeTextFields: r.freeTextFields ?? [],
      ...(r.bodyLimitBytes !== undefined ? { bodyLimitBytes: r.bodyLimitBytes } : {}),
      ...(r.rateLimit !== undefined ? { rateLimit: r.rateLimit } : {}),
      ...(r.cache !== undefined ? { cache: r.cache } : {}),
      ...(r.split !== undefined ? { split: resolveSplit(r.split, r.service, i, services, problems) } : {}),
    });
  });
  return [...byPrefix.values()];
}

/**
 * A route's split: a canary service must exist and differ from the route's; a canary URL set
 * becomes the service `<service>-canary` (the stable service's settings, those URLs), so it is
 * probed, balanced and broken like any service and shows in metrics under its own name.
 */
function resolveSplit(
  split: NonNullable<FileConfig['routes'][number]['split']>,
  service: string,
  index: number,
  services: Record<string, ServiceConfig>,
  problems: string[],
): RouteSplitConfig {
  const where = `routes[${index}].split.canary`;
  let canaryService: string;
  if ('service' in split.canary) {
    canaryService = split.canary.service;
    if (canaryService === service) problems.push(`${where}.service: the canary must be another service than the route's own`);
    else if (!(canaryService in services)) problems.push(`${where}.service: unknown service "${canaryService}" (known: ${Object.keys(services).join(', ')})`);
  } else {
    canaryService = `${service}-canary`;
    const existing = services[canaryService];
    const stable = services[service]!;
    if (existing !== undefined && (existing.canaryOf !== service || existing.urls.join(' ') !== split.canary.urls.join(' '))) {
      problems.push(`${where}.urls: the service "${canaryService}" already exists with other URLs (one canary URL set per service)`);
    } else {
      services[canaryService] = { ...stable, name: canaryService, urls: split.canary.urls, canaryOf: service };
    }
  }
  return { canaryService, weights: split.weights, sticky: split.sticky };
}

function resolveRouting(env: EnvConfig, file: FileConfig, services: Record<string, ServiceConfig>, problems: string[]): RoutingConfig {
  const r = file.routing;
  const routed = r.services ?? [...SERVICE_NAMES];
  r.services?.forEach((name, i) => {
    if (!(name in services)) problems.push(`routing.services[${i}]: unknown service "${name}" (known: ${Object.keys(services).join(', ')})`);
  });
  if (new Set(routed).size !== routed.length) problems.push('routing.services: a service is listed twice');
  if (!routed.includes(r.defaultService)) {
    problems.push(`routing.defaultService: "${r.defaultService}" is not one of routing.services (${routed.join(', ')})`);
  }
  return {
    enabled: r.enabled,
    ...(r.modelsDir !== undefined ? { modelsDir: r.modelsDir } : {}),
    ...(r.model !== undefined ? { model: r.model } : {}),
    ...(r.shadowModel !== undefined ? { shadowModel: r.shadowModel } : {}),
    services: routed,
    confidenceThreshold: r.confidenceThreshold,
    defaultService: r.defaultService,
    ambiguous: r.ambiguous,
    watchPointer: r.watchPointer,
    shadowQueueSize: r.shadowQueueSize,
    validator: { model: r.validatorModel, ...(env.HF_ENDPOINT_URL !== undefined ? { endpointUrl: env.HF_ENDPOINT_URL } : {}) },
  };
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/**
 * Validate the environment and (when given) the YAML file together, and build the frozen
 * config the rest of the gateway receives. Never throws for bad input: every problem is one
 * line naming the key.
 */
export function loadConfig(
  rawEnv: Readonly<Record<string, string | undefined>>,
  options: { file?: string } = {},
): LoadResult {
  const problems: string[] = [];
  const envResult = envSchema.safeParse(pickEnv(rawEnv));
  if (!envResult.success) problems.push(...zodProblems(envResult.error, ''));

  const filePath = options.file ?? (envResult.success ? envResult.data.GATEWAY_CONFIG : undefined);
  let file: FileConfig = fileSchema.parse({});
  if (filePath !== undefined) {
    const yaml = readYaml(filePath);
    if (!yaml.ok) problems.push(...yaml.problems);
    else {
      const parsed = fileSchema.safeParse(yaml.value);
      if (!parsed.success) problems.push(...zodProblems(parsed.error, `${filePath}: `));
      else file = parsed.data;
    }
  }
  if (!envResult.success || problems.length > 0) return { ok: false, problems };
  const env = envResult.data;
  problems.push(...productionSecretProblems(env));
  if (env.ENVIRONMENT === 'production' && !env.MCP_REQUIRE_AUTH) {
    problems.push('MCP_REQUIRE_AUTH: cannot be false when ENVIRONMENT=production (it serves /mcp without credentials)');
  }

  const fileProblems: string[] = [];
  if (file.cors.credentials && file.cors.origins.includes('*')) {
    fileProblems.push('cors.credentials: true needs an explicit origin list, not "*"');
  }
  const keyNames = new Set<string>();
  file.auth.apiKeys.forEach((k, i) => {
    if (keyNames.has(k.name)) fileProblems.push(`auth.apiKeys[${i}].name: "${k.name}" is used twice`);
    keyNames.add(k.name);
  });
  if (env.API_KEY !== undefined) keyNames.add(ENV_API_KEY_NAME);
  file.rateLimit.allowList.keys.forEach((name, i) => {
    if (!keyNames.has(name)) {
      fileProblems.push(`rateLimit.allowList.keys[${i}]: no API key is named "${name}" (known: ${[...keyNames].join(', ') || 'none'})`);
    }
  });
  const services = resolveServices(env, file, fileProblems);
  const routes = resolveRoutes(file, services, fileProblems);
  const routing = resolveRouting(env, file, services, fileProblems);
  problems.push(...fileProblems.map((p) => (filePath ? `${filePath}: ${p}` : p)));
  if (problems.length > 0) return { ok: false, problems };

  const config: GatewayConfig = {
    environment: env.ENVIRONMENT,
    logLevel: env.LOG_LEVEL,
    server: {
      host: env.GATEWAY_HOST,
      port: env.GATEWAY_PORT,
      shutdownTimeoutMs: file.server.shutdownTimeoutMs,
      drainDelayMs: env.GATEWAY_DRAIN_DELAY_MS ?? file.server.drainDelayMs,
      trustProxy: file.server.trustProxy,
      pressure: file.server.pressure,
    },
    proxy: {
      connectionPoolSize: env.CONNECTION_POOL_SIZE,
      requestQueueSize: env.REQUEST_QUEUE_SIZE,
      requestTimeoutMs: Math.round(env.REQUEST_TIMEOUT * 1000),
    },
    workerThreads: env.WORKER_THREADS,
    websocketsEnabled: env.ENABLE_WEBSOCKETS,
    metrics: { enabled: env.ENABLE_METRICS, durationBuckets: file.metrics.durationBuckets ?? DEFAULT_DURATION_BUCKETS },
    health: { intervalMs: file.health.intervalMs, timeoutMs: file.health.timeoutMs },
    services,
    routes,
    auth: {
      jwt: file.auth.jwt,
      apiKeys: [
        ...file.auth.apiKeys,
        // API_KEY from the environment is one admin key, hashed here like the configured ones.
        ...(env.API_KEY !== undefined
          ? [{ name: ENV_API_KEY_NAME, sha256: createHash('sha256').update(env.API_KEY, 'utf8').digest('hex'), scopes: ['admin' as const] }]
          : []),
      ],
      tokens: file.auth.tokens,
      requireMfaForAdmin: file.auth.requireMfaForAdmin ?? env.ENVIRONMENT === 'production',
      publicMetrics: file.auth.publicMetrics,
    },
    cors: file.cors,
    limits: file.limits,
    rateLimit: {
      enabled: file.rateLimit.enabled,
      principal: file.rateLimit.principal ?? { requests: env.RATE_LIMIT_REQUESTS, windowSeconds: env.RATE_LIMIT_WINDOW_SECONDS },
      ip: file.rateLimit.ip ?? { requests: env.RATE_LIMIT_REQUESTS, windowSeconds: env.RATE_LIMIT_WINDOW_SECONDS },
      allowList: {
        keys: file.rateLimit.allowList.keys,
        cidrs: file.rateLimit.allowList.cidrs ?? (env.ENVIRONMENT === 'production' ? [] : ['127.0.0.0/8', '::1/128']),
      },
      threat: file.rateLimit.threat,
    },
    state: file.state,
    cache: file.cache,
    routing,
    mcp: {
      enabled: file.mcp.enabled,
      requireAuth: env.MCP_REQUIRE_AUTH,
      maxStreams: file.mcp.maxStreams,
      maxStreamsPerPrincipal: file.mcp.maxStreamsPerPrincipal,
      maxStreamsPerAddress: file.mcp.maxStreamsPerAddress,
      adminReservedStreams: file.mcp.adminReservedStreams ?? Math.min(Math.ceil(file.mcp.maxStreams / 10), file.mcp.maxStreams - 1),
      sessionIdleSeconds: file.mcp.sessionIdleSeconds,
      streamRetryMs: file.mcp.streamRetryMs,
      ...(file.mcp.allowedOrigins !== undefined ? { allowedOrigins: file.mcp.allowedOrigins } : {}),
      ...(file.mcp.allowedHosts !== undefined ? { allowedHosts: file.mcp.allowedHosts } : {}),
      ...(file.mcp.resourceUrl !== undefined ? { resourceUrl: file.mcp.resourceUrl } : {}),
    },
    secrets: {
      ...(env.API_KEY !== undefined ? { apiKey: env.API_KEY } : {}),
      ...(env.SECRET_KEY !== undefined ? { secretKey: env.SECRET_KEY } : {}),
      ...(env.JWT_SECRET_KEY !== undefined ? { jwtSecretKey: env.JWT_SECRET_KEY } : {}),
      ...(env.HF_TOKEN !== undefined ? { hfToken: env.HF_TOKEN } : {}),
    },
    ...(env.REDIS_URL !== undefined ? { redisUrl: env.REDIS_URL } : {}),
    ...(filePath !== undefined ? { configFile: filePath } : {}),
  };
  return { ok: true, config: deepFreeze(config) };
}

/** A view of the config that is safe to log or show: secrets replaced, credentials in URLs hidden. */
export function redactConfig(config: GatewayConfig): unknown {
  const hideUrlCredentials = (u: string) => u.replace(/\/\/[^@/]*@/, '//***@');
  return {
    ...config,
    secrets: Object.fromEntries(Object.keys(config.secrets).map((k) => [k, '***'])),
    auth: {
      ...config.auth,
      apiKeys: config.auth.apiKeys.map((k) => ({ ...k, sha256: `${k.sha256.slice(0, 8)}…`, ...(k.totpSecret ? { totpSecret: '***' } : {}) })),
    },
    ...(config.redisUrl ? { redisUrl: hideUrlCredentials(config.redisUrl) } : {}),
    services: Object.fromEntries(
      Object.entries(config.services).map(([k, s]) => [k, { ...s, urls: s.urls.map(hideUrlCredentials) }]),
    ),
  };
}
