import { isIP } from 'node:net';
import { z } from 'zod';

/**
 * One zod schema for the whole configuration: environment variables (flat, strings) and the
 * optional YAML file named by GATEWAY_CONFIG (nested, strict: unknown keys are errors).
 * Types are inferred from these schemas; nothing else describes the config.
 */

export const SERVICE_NAMES = ['twin', 'agent-controller', 'knowledge', 'fog', 'p2p'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

const booleanFromEnv = z
  .enum(['true', 'false', '1', '0', 'yes', 'no', 'on', 'off'], {
    error: 'expected true or false',
  })
  .transform((v) => v === 'true' || v === '1' || v === 'yes' || v === 'on');

const intFromEnv = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, 'expected a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

const secondsFromEnv = z
  .string()
  .regex(/^\d+(\.\d+)?$/, 'expected a number of seconds')
  .transform(Number)
  .pipe(z.number().positive().max(3600));

const httpUrl = z
  .string()
  .url({ error: 'expected an http(s) URL' })
  .refine((u) => /^https?:\/\//.test(u), 'expected an http(s) URL');

export const envSchema = z.object({
  GATEWAY_HOST: z.string().min(1).default('0.0.0.0'),
  GATEWAY_PORT: intFromEnv(0, 65535).default(8000),
  ENVIRONMENT: z.enum(['development', 'test', 'staging', 'production']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  API_KEY: z.string().min(1).optional(),
  SECRET_KEY: z.string().min(1).optional(),
  JWT_SECRET_KEY: z.string().min(1).optional(),
  ENABLE_AGENT_FORGE: booleanFromEnv.default(true),
  ENABLE_P2P_FOG: booleanFromEnv.default(true),
  ENABLE_RAG_PIPELINE: booleanFromEnv.default(true),
  ENABLE_WEBSOCKETS: booleanFromEnv.default(true),
  ENABLE_METRICS: booleanFromEnv.default(true),
  CONNECTION_POOL_SIZE: intFromEnv(1, 10_000).default(100),
  REQUEST_QUEUE_SIZE: intFromEnv(1, 1_000_000).default(1000),
  WORKER_THREADS: intFromEnv(1, 256).default(4),
  REQUEST_TIMEOUT: secondsFromEnv.default(30),
  TWIN_SERVICE_URL: httpUrl.default('http://localhost:8001'),
  AGENT_CONTROLLER_URL: httpUrl.default('http://localhost:8002'),
  KNOWLEDGE_SYSTEM_URL: httpUrl.default('http://localhost:8003'),
  FOG_COORDINATOR_URL: httpUrl.default('http://localhost:8004'),
  P2P_BRIDGE_URL: httpUrl.default('http://localhost:8005'),
  REDIS_URL: z
    .string()
    .url()
    .refine((u) => /^rediss?:\/\//.test(u), 'expected a redis:// or rediss:// URL')
    .optional(),
  GATEWAY_CONFIG: z.string().min(1).optional(),
  // --- rate limiting (src/ratelimit): default quota per principal and per client IP ---
  RATE_LIMIT_REQUESTS: intFromEnv(1, 10_000_000).default(1000),
  RATE_LIMIT_WINDOW_SECONDS: intFromEnv(1, 86_400).default(60),
  // --- ML routing: the HuggingFace zero-shot validator of `model validate` (src/routing, mcp/integrations/huggingface) ---
  HF_TOKEN: z.string().min(1).optional(),
  /** A dedicated Inference Endpoint; default: the serverless Inference API. */
  HF_ENDPOINT_URL: httpUrl.optional(),
  // --- MCP server (mcp/server) ---
  /** false: /mcp without credentials, for local development and the conformance suite; refused in production. */
  MCP_REQUIRE_AUTH: booleanFromEnv.default(true),
});

export type EnvConfig = z.output<typeof envSchema>;

/** Environment variable that holds each service's base URL. */
export const SERVICE_URL_ENV = {
  twin: 'TWIN_SERVICE_URL',
  'agent-controller': 'AGENT_CONTROLLER_URL',
  knowledge: 'KNOWLEDGE_SYSTEM_URL',
  fog: 'FOG_COORDINATOR_URL',
  p2p: 'P2P_BRIDGE_URL',
} as const satisfies Record<ServiceName, keyof EnvConfig>;

/** The switch that turns each service off, when it has one. */
export const SERVICE_SWITCH_ENV = {
  'agent-controller': 'ENABLE_AGENT_FORGE',
  knowledge: 'ENABLE_RAG_PIPELINE',
  fog: 'ENABLE_P2P_FOG',
  p2p: 'ENABLE_P2P_FOG',
} as const satisfies Partial<Record<ServiceName, keyof EnvConfig>>;

export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

const serviceNameSchema = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,62}$/, 'service names are lowercase letters, digits and dashes');

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

const routePrefix = z
  .string()
  .regex(/^\/[A-Za-z0-9._~\-/]*$/, 'a path prefix such as /v1/twin')
  .refine((p) => p === '/' || !p.endsWith('/'), 'no trailing slash')
  .refine((p) => !p.includes('//'), 'no empty path segment');

export const SCOPE_VALUES = ['read', 'write', 'admin'] as const;
const scopeSchema = z.enum(SCOPE_VALUES);

export const VALIDATION_MODES = ['strict', 'text', 'off'] as const;

const routeAuthSchema = z.strictObject({
  /** false makes the route public. Default: every route needs credentials. */
  required: z.boolean().default(true),
  /** One scope for every method; default read for GET/HEAD/OPTIONS, write otherwise. */
  scope: scopeSchema.optional(),
  /** Require a second factor (`amr` with mfa/otp). */
  mfa: z.boolean().optional(),
});

// --- rate limiting and suspicious-client detection (src/ratelimit, src/state) ---

/** "10.0.0.0/8", "2001:db8::/32" or a single address (a /32 or /128). */
export const cidrSchema = z.string().refine((v) => parseCidr(v) !== null, 'an IP address or CIDR such as 10.0.0.0/8 or 2001:db8::/32');

/** Parses "addr" or "addr/bits" with node:net; null when it is neither. */
export function parseCidr(value: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | null {
  const slash = value.indexOf('/');
  const address = slash < 0 ? value : value.slice(0, slash);
  const version = isIP(address);
  if (version === 0) return null;
  const max = version === 4 ? 32 : 128;
  if (slash < 0) return { address, prefix: max, family: version === 4 ? 'ipv4' : 'ipv6' };
  const bits = value.slice(slash + 1);
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) return null;
  return { address, prefix: Number(bits), family: version === 4 ? 'ipv4' : 'ipv6' };
}

const rateQuotaSchema = z.strictObject({
  requests: z.number().int().min(1).max(10_000_000),
  windowSeconds: z.number().int().min(1).max(86_400),
});

const threatSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    /** The score halves every this many seconds without new signals. */
    halfLifeSeconds: z.number().positive().max(86_400).default(300),
    /** Score at which each level starts (below medium: low, served normally). */
    levels: z
      .strictObject({
        medium: z.number().positive().default(30),
        high: z.number().positive().default(60),
        critical: z.number().positive().default(100),
      })
      .prefault({})
      .refine((l) => l.medium < l.high && l.high < l.critical, 'levels must grow: medium < high < critical'),
    /** Score added per signal. */
    weights: z
      .strictObject({
        inputRejected: z.number().min(0).max(1000).default(25),
        authFailed: z.number().min(0).max(1000).default(8),
        /** Per distinct path nothing serves (the same missing path again adds nothing). */
        notFound: z.number().min(0).max(1000).default(4),
        rateLimited: z.number().min(0).max(1000).default(0.25),
      })
      .prefault({}),
    /** medium: the client's quotas are multiplied by this. */
    mediumLimitFactor: z.number().gt(0).max(1).default(0.5),
    /** high: each request waits this long first (at most maxTarpitted at once; past that, 429). */
    tarpitMs: z.number().int().min(0).max(30_000).default(1000),
    maxTarpitted: z.number().int().min(0).max(100_000).default(256),
    /** critical: blocked (403) for blockSeconds, doubled on each repeat within strikeMemorySeconds, at most maxBlockSeconds. */
    blockSeconds: z.number().int().min(1).max(86_400).default(60),
    maxBlockSeconds: z.number().int().min(1).max(30 * 86_400).default(86_400),
    strikeMemorySeconds: z.number().int().min(1).max(30 * 86_400).default(86_400),
  })
  .prefault({});

const rateLimitSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** Per API key / JWT subject, after authentication; default RATE_LIMIT_REQUESTS per RATE_LIMIT_WINDOW_SECONDS. */
  principal: rateQuotaSchema.optional(),
  /** Per client IP (IPv6: per /64), before authentication; default as principal. */
  ip: rateQuotaSchema.optional(),
  /**
   * Internal callers never limited, slowed or blocked: API key names and client CIDRs.
   * CIDRs default to loopback outside production only: behind a sidecar proxy every client
   * would otherwise look like 127.0.0.1 and be exempt.
   */
  allowList: z
    .strictObject({
      keys: z.array(z.string().min(1)).default([]),
      cidrs: z.array(cidrSchema).optional(),
    })
    .prefault({}),
  threat: threatSchema,
});

const stateSchema = z.strictObject({
  /** Prefix of every Redis key and of the pub/sub channel (several gateways sharing one Redis). */
  keyPrefix: z.string().regex(/^[A-Za-z0-9_.:-]{0,32}$/, 'up to 32 letters, digits, "_", ".", ":" and "-"').default('ugw:'),
  /** Longest a request waits for Redis before the replica decides alone. */
  commandTimeoutMs: z.number().int().min(5).max(5000).default(50),
});

const fieldNames = z.array(z.string().min(1).max(128)).max(64);

/** The response cache (src/cache): on by default for what upstreams mark cacheable. */
const responseCacheSchema = z.strictObject({
  /** false: nothing is cached, not even on routes with a `cache` block. */
  enabled: z.boolean().default(true),
  /** Larger responses stream through and are not stored. */
  maxEntryBytes: z.number().int().min(1).max(64 * 1024 * 1024).default(1024 * 1024),
  /** Bound of all stored bodies together (per replica). */
  maxTotalBytes: z.number().int().min(1).max(4 * 1024 * 1024 * 1024).default(64 * 1024 * 1024),
  /** How long an entry is kept past its lifetime for the `stale-cache` fallback (never served fresh then). */
  staleSeconds: z.number().int().min(0).max(7 * 86_400).default(600),
});

/** A route's cache: cache GET/HEAD answers for ttlSeconds even without upstream Cache-Control; false: never cache. */
const routeCacheSchema = z.union([
  z.literal(false),
  z.strictObject({
    ttlSeconds: z.number().int().min(1).max(86_400),
    /** Entries are per principal (the subject is part of the key), also for `private` answers. */
    perUser: z.boolean().default(false),
  }),
]);

/** Integer weights of a split's two sides; they add up to 100. */
export const splitWeightsSchema = z
  .strictObject({
    stable: z.number().int().min(0).max(100),
    canary: z.number().int().min(0).max(100),
  })
  .refine((w) => w.stable + w.canary === 100, 'stable + canary must be 100');

/**
 * A route's traffic split (src/routing/traffic-split.ts): a stable and a canary side. The
 * canary is another configured service, or a second URL set of the route's own service.
 */
const routeSplitSchema = z.strictObject({
  canary: z.union([z.strictObject({ service: serviceNameSchema }), z.strictObject({ urls: z.array(httpUrl).min(1) })], {
    error: 'canary is { service: <name> } or { urls: [<url>, ...] }',
  }),
  /** Weights at first start; the live weights are in the state store (shift_traffic). */
  weights: splitWeightsSchema.default({ stable: 100, canary: 0 }),
  /** Clients without a principal stick to a side by a cookie the gateway sets, or by their IP. */
  sticky: z.enum(['cookie', 'ip']).default('cookie'),
});

const routeFileSchema = z.strictObject({
  id: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/, 'route ids are lowercase letters, digits, "_", "." and "-"').optional(),
  prefix: routePrefix,
  service: serviceNameSchema,
  methods: z.array(z.enum(HTTP_METHODS)).min(1).optional(),
  /** Replace `prefix` with this when forwarding (e.g. "/" strips it). Default: path unchanged. */
  rewritePrefix: z.string().startsWith('/').optional(),
  auth: routeAuthSchema.optional(),
  /** Input validation: strict (default), text (SQL-looking prose allowed), off. */
  validation: z.enum(VALIDATION_MODES).optional(),
  /** JSON body fields checked in `text` mode even when the route is strict. */
  textFields: fieldNames.optional(),
  /** JSON body fields that are free text (code snippets): not inspected. */
  freeTextFields: fieldNames.optional(),
  /** Largest request body this route accepts; default limits.bodyBytes. */
  bodyLimitBytes: z.number().int().positive().optional(),
  /** This route's own quota (a separate budget per principal, or per IP when public); false: not limited. */
  rateLimit: z.union([z.literal(false), rateQuotaSchema]).optional(),
  /** Response cache of this route (src/cache). */
  cache: routeCacheSchema.optional(),
  /** Stable/canary traffic split of this route. */
  split: routeSplitSchema.optional(),
});

const base32Secret = z
  .string()
  .regex(/^[A-Z2-7]+=*$/, 'a base32 secret (A-Z, 2-7)')
  .refine((s) => s.replace(/=+$/, '').length >= 26, 'at least 16 bytes (26 base32 characters)');

const authSchema = z.strictObject({
  jwt: z
    .strictObject({
      issuer: z.string().min(1).optional(),
      audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
      /** RS/ES/PS/EdDSA tokens are verified against this JWKS (cached, rotation picked up). */
      jwksUrl: httpUrl.optional(),
      algorithms: z.array(z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'EdDSA'])).min(1).default(['RS256', 'ES256']),
      clockToleranceSeconds: z.number().int().min(0).max(300).default(30),
      jwksCacheMaxAgeMs: z.number().int().min(1000).default(600_000),
      jwksCooldownMs: z.number().int().min(0).default(30_000),
    })
    .prefault({}),
  apiKeys: z
    .array(
      z.strictObject({
        name: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/i, 'letters, digits, "_", "." and "-"'),
        /** Hex SHA-256 of the key: `printf %s "$KEY" | sha256sum`. */
        sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, '64 hex characters (SHA-256 of the key)').transform((h) => h.toLowerCase()),
        scopes: z.array(scopeSchema).min(1),
        /** Enrols the key's principal in TOTP: POST /auth/token then needs a current code. */
        totpSecret: base32Secret.optional(),
      }),
    )
    .default([]),
  tokens: z
    .strictObject({
      issuer: z.string().min(1).default('unified-gateway'),
      audience: z.string().min(1).optional(),
      ttlSeconds: z.number().int().min(30).max(86_400).default(900),
      totpToleranceSeconds: z.number().int().min(0).max(120).default(30),
    })
    .prefault({}),
  /** Admin surface needs MFA; default: true when ENVIRONMENT=production. */
  requireMfaForAdmin: z.boolean().optional(),
  /** Serve /metrics without credentials (scrapers); false requires read scope. */
  publicMetrics: z.boolean().default(true),
});

const origin = z
  .string()
  .regex(/^https?:\/\/[^/\s]+$/, 'an origin such as https://app.example.org (scheme and host, no path)');

const corsSchema = z.strictObject({
  /** Allowed browser origins; empty: no cross-origin access. "*" allows any (never with credentials). */
  origins: z.array(z.union([origin, z.literal('*')])).default([]),
  credentials: z.boolean().default(false),
  maxAgeSeconds: z.number().int().min(0).max(86_400).default(600),
  exposedHeaders: z
    .array(z.string().min(1))
    .default([
      'x-request-id',
      'ratelimit',
      'ratelimit-policy',
      'x-ratelimit-limit',
      'x-ratelimit-remaining',
      'x-ratelimit-reset',
      'retry-after',
      'x-routed-to',
      'x-routing-confidence',
      'x-gateway-upstream',
      'x-cache',
    ]),
});

const limitsSchema = z.strictObject({
  /** Largest streamed request body (uploads); 413 past it. */
  bodyBytes: z.number().int().positive().default(128 * 1024 * 1024),
  /** Largest JSON body, which is buffered to be inspected; 413 past it. */
  jsonBodyBytes: z.number().int().positive().max(64 * 1024 * 1024).default(1024 * 1024),
  /** Most request headers accepted; 431 past it. */
  headerCount: z.number().int().min(10).max(1000).default(100),
  /** Largest total header size (Node's maxHeaderSize); 431 past it. */
  headerBytes: z.number().int().min(1024).max(1024 * 1024).default(16 * 1024),
  // Input inspection budget (src/security/detect): the most text inspected in one value and in
  // one request (path, query, headers, body, form fields together), in characters of decoded text
  // (never more than the bytes received). Past it: 413 GW_SECURITY_INPUT_TOO_LARGE, never
  // unbounded work and never a value let through uninspected. The defaults inspect a whole
  // default-size JSON body (jsonBodyBytes, 1 MiB) in a few tens of milliseconds at worst.
  inspectValueBytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(1024 * 1024),
  inspectRequestBytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(1280 * 1024),
});

// --- ML routing (src/routing/model, routing-models/) ---
const routingSchema = z.strictObject({
  /** Serve POST /v1/query and /v1/upload, whose service the routing model chooses. */
  enabled: z.boolean().default(true),
  /** The operators' folder (models/, active.json); default: routing-models/ of the installed gateway. */
  modelsDir: z.string().min(1).optional(),
  /** A model file to use instead of the active pointer of modelsDir. */
  model: z.string().min(1).optional(),
  /** A candidate model run beside the active one on live traffic (shadow mode), off the hot path. */
  shadowModel: z.string().min(1).optional(),
  /** The services the model chooses among; a model's labels must be exactly these. Default: the five. */
  services: z.array(serviceNameSchema).min(2).optional(),
  /** Below this probability the model's choice is not trusted (see `ambiguous`). */
  confidenceThreshold: z.number().min(0).max(1).default(0.5),
  defaultService: serviceNameSchema.default('knowledge'),
  /** Below the threshold: forward to defaultService, or answer 300 GW_ROUTING_AMBIGUOUS with the candidates. */
  ambiguous: z
    .union([z.literal('default'), z.literal('300'), z.literal(300)])
    .transform((v): 'default' | '300' => (v === 'default' ? 'default' : '300'))
    .default('default'),
  /** Follow active.json: switch models at runtime when `model promote`/`rollback` changes it. */
  watchPointer: z.boolean().default(true),
  /** Requests waiting for the shadow model; past it, requests are not shadowed. */
  shadowQueueSize: z.number().int().min(1).max(100_000).default(1024),
  /** Zero-shot-classification model of `model validate` (HF_TOKEN / HF_ENDPOINT_URL from the environment). */
  validatorModel: z.string().min(1).default('facebook/bart-large-mnli'),
});

// --- The gateway as an MCP server (mcp/server) ---
const mcpSchema = z.strictObject({
  /** Serve MCP at /mcp. */
  enabled: z.boolean().default(true),
  /** Open sessions per replica at most; past it, initialize gets 503. */
  maxSessions: z.number().int().min(1).max(100_000).default(100),
  /** Open sessions of one authenticated principal per replica at most. */
  maxSessionsPerPrincipal: z.number().int().min(1).max(100_000).default(20),
  /** Sessions idle this long are closed (their state store record expires too). */
  sessionIdleSeconds: z.number().int().min(2).max(86_400).default(1800),
  /**
   * Browser origins allowed to call /mcp (DNS-rebinding protection). Requests without Origin
   * (non-browser clients) pass; default: the CORS origins plus localhost ones.
   */
  allowedOrigins: z.array(origin).optional(),
  /** This gateway's public /mcp URL, named in the RFC 9728 metadata; default: from the request's Host. */
  resourceUrl: httpUrl.optional(),
});

export const fileSchema = z.strictObject({
  services: z.record(serviceNameSchema, serviceFileSchema).default({}),
  routes: z.array(routeFileSchema).default([]),
  health: z
    .strictObject({
      intervalMs: z.number().int().min(100).max(3_600_000).default(5000),
      timeoutMs: z.number().int().min(10).max(60_000).default(2000),
    })
    .prefault({}),
  server: z
    .strictObject({
      /** How long graceful shutdown waits for in-flight requests before cutting them. */
      shutdownTimeoutMs: z.number().int().min(0).max(600_000).default(10_000),
      /** Addresses allowed to set X-Forwarded-* (Fastify trustProxy); none by default. */
      trustProxy: z
        .union([z.boolean(), z.array(z.union([cidrSchema, z.enum(['loopback', 'linklocal', 'uniquelocal'])]))])
        .default(false),
      /**
       * Sustained event-loop or heap pressure turns /readyz 503 (only /readyz: traffic is still
       * served) so a load balancer sends new requests to other replicas.
       */
      pressure: z
        .strictObject({
          enabled: z.boolean().default(true),
          /** Mean event-loop delay over one sample above which the sample counts as pressure. */
          maxEventLoopDelayMs: z.number().int().min(1).max(60_000).default(1000),
          /** Heap used above which a sample counts as pressure; 0 does not watch the heap. */
          maxHeapUsedBytes: z.number().int().min(0).default(0),
          sampleIntervalMs: z.number().int().min(20).max(60_000).default(1000),
          /** Consecutive samples under pressure before /readyz turns 503 (one good sample clears it). */
          sustainedSamples: z.number().int().min(1).max(1000).default(5),
        })
        .prefault({}),
    })
    .prefault({}),
  auth: authSchema.prefault({}),
  cors: corsSchema.prefault({}),
  limits: limitsSchema.prefault({}),
  rateLimit: rateLimitSchema.prefault({}),
  state: stateSchema.prefault({}),
  cache: responseCacheSchema.prefault({}),
  routing: routingSchema.prefault({}),
  mcp: mcpSchema.prefault({}),
  metrics: z
    .strictObject({
      /** Histogram buckets for request durations, in seconds. */
      durationBuckets: z.array(z.number().positive()).min(1).optional(),
    })
    .prefault({}),
});

export type FileConfig = z.output<typeof fileSchema>;
export type FileConfigInput = z.input<typeof fileSchema>;
