import { z } from 'zod';
import { checkApiKeys, authSchema, resolveAuth } from './auth.js';
import { responseCacheSchema } from './cache.js';
import { Checker } from './check.js';
import { checkDeployment, deploymentEnv, resolveSecrets } from './env.js';
import { deepFreeze } from './frozen.js';
import { checkMcpEnv, checkMcpServers, mcpEnv, mcpSchema, resolveMcp } from './mcp.js';
import { legacySchema, migrationEnv, migrationSchema, resolveMigration } from './migration.js';
import { loggingSchema, metricsSchema, observabilityEnv, resolveMetrics } from './observability.js';
import { checkRateLimit, rateLimitEnv, rateLimitSchema, resolveRateLimit } from './ratelimit.js';
import { checkRoutes, resolveRoutes, routesFileSchema } from './routes.js';
import { checkRouting, resolveRouting, routingEnv, routingSchema } from './routing.js';
import { corsSchema, limitsSchema, resolveServer, serverEnv, serverFileSchema } from './server.js';
import { checkServices, healthSchema, resolveProxy, resolveServices, servicesEnv, servicesFileSchema } from './services.js';
import { stateEnv, stateSchema } from './state.js';
import { websocketsSchema } from './websockets.js';

/*
 * The whole configuration as one zod pipeline: the environment variables (flat strings) and
 * the optional YAML file named by GATEWAY_CONFIG (nested, strict: unknown keys are errors)
 * are parsed together, the checks across keys run in the same pass, and a transform builds
 * the frozen config the gateway receives. Every config type is inferred from it; each area's
 * schema, checks and resolution live in its own file.
 */

export const envSchema = z.object({
  ...serverEnv.shape,
  ...deploymentEnv.shape,
  ...servicesEnv.shape,
  ...stateEnv.shape,
  ...rateLimitEnv.shape,
  ...routingEnv.shape,
  ...mcpEnv.shape,
  ...observabilityEnv.shape,
  ...migrationEnv.shape,
});
export type EnvConfig = z.output<typeof envSchema>;

export const fileSchema = z.strictObject({
  services: servicesFileSchema,
  routes: routesFileSchema,
  health: healthSchema,
  server: serverFileSchema,
  auth: authSchema,
  cors: corsSchema,
  limits: limitsSchema,
  rateLimit: rateLimitSchema,
  state: stateSchema,
  cache: responseCacheSchema,
  routing: routingSchema,
  mcp: mcpSchema,
  logging: loggingSchema,
  metrics: metricsSchema,
  websockets: websocketsSchema,
  // Migration (src/migration): legacy endpoints, progressive moves, GitHub tracking.
  legacy: legacySchema,
  migration: migrationSchema,
});
export type FileConfig = z.output<typeof fileSchema>;
export type FileConfigInput = z.input<typeof fileSchema>;

/** What the loader hands the pipeline: the environment's variables, the file's content (`{}` without one) and its name. */
const sourcesSchema = z.object({
  env: envSchema,
  file: fileSchema,
  configFile: z.string().optional(),
  /** The whole environment, for `${VAR}` references of mcp.servers (env, headers) and a stdio child's basics (PATH, HOME); never kept in the config as such. */
  vars: z.record(z.string(), z.string()).default({}),
});
type Sources = z.output<typeof sourcesSchema>;

/** Checks across keys and areas; each reads only keys that parsed (see check.ts). */
function checkAcrossAreas({ env, file, vars }: Sources, c: Checker): void {
  checkDeployment(c.at('env'), env);
  checkMcpEnv(c.at('env'), env);
  const f = c.at('file');
  if (!f.readable()) return;
  const keyNames = f.readable('auth') ? checkApiKeys(f.at('auth', 'apiKeys'), file.auth.apiKeys, c.valid('env', 'API_KEY') && env.API_KEY !== undefined) : undefined;
  if (f.readable('rateLimit')) checkRateLimit(f.at('rateLimit'), file.rateLimit, keyNames);
  const known = checkServices(f.at('services'), file.services);
  checkRoutes(f.at('routes'), file.routes, known);
  if (f.readable('routing')) checkRouting(f.at('routing'), file.routing, known);
  if (f.readable('mcp')) checkMcpServers(f.at('mcp'), file.mcp, vars);
}

function resolve({ env, file, configFile, vars }: Sources) {
  const { routes, services } = resolveRoutes(file.routes, resolveServices(env, file.services));
  return {
    environment: env.ENVIRONMENT,
    logLevel: env.LOG_LEVEL,
    server: resolveServer(env, file.server),
    proxy: resolveProxy(env),
    workerThreads: env.WORKER_THREADS,
    websocketsEnabled: env.ENABLE_WEBSOCKETS,
    /** WebSocket limits, handshake deadline and tickets (src/ws). */
    websockets: file.websockets,
    metrics: resolveMetrics(env, file.metrics),
    health: file.health,
    services,
    routes,
    auth: resolveAuth(env, file.auth),
    cors: file.cors,
    limits: file.limits,
    rateLimit: resolveRateLimit(env, file.rateLimit),
    state: file.state,
    cache: file.cache,
    routing: resolveRouting(env, file.routing),
    mcp: resolveMcp(env, file.mcp, vars),
    /** Access log (src/server/logger.ts). */
    logging: file.logging,
    // Migration (src/migration): legacy endpoints, progressive moves, GitHub tracking.
    legacy: file.legacy,
    migration: resolveMigration(env, file.migration),
    secrets: resolveSecrets(env),
    ...(env.REDIS_URL !== undefined ? { redisUrl: env.REDIS_URL } : {}),
    ...(configFile !== undefined ? { configFile } : {}),
  };
}

/** Sources in, the frozen config out; every problem, of shape or across keys, in one pass. */
export const gatewayConfigSchema = sourcesSchema
  .superRefine((sources, ctx) => checkAcrossAreas(sources, new Checker(ctx as z.core.$RefinementCtx<unknown>)), { when: () => true })
  .transform((sources) => deepFreeze(resolve(sources)));

// --- the config's types, all inferred from the pipeline ---

export type GatewayConfig = z.output<typeof gatewayConfigSchema>;
export type ServiceConfig = GatewayConfig['services'][string];
export type ServiceRetriesConfig = NonNullable<ServiceConfig['retries']>;
export type ServiceBreakerConfig = NonNullable<ServiceConfig['breaker']>;
export type ServiceFallback = NonNullable<ServiceConfig['fallback']>;
export type RouteConfig = GatewayConfig['routes'][number];
export type RouteAuthPolicy = RouteConfig['auth'];
export type RouteSplitConfig = NonNullable<RouteConfig['split']>;
export type SplitWeights = RouteSplitConfig['weights'];
export type RouteCacheConfig = Exclude<RouteConfig['cache'], false | undefined>;
export type AuthConfig = GatewayConfig['auth'];
export type ApiKeyConfig = AuthConfig['apiKeys'][number];
export type RateLimitConfig = GatewayConfig['rateLimit'];
/** N requests per sliding window. */
export type RateQuota = RateLimitConfig['principal'];
export type StateConfig = GatewayConfig['state'];
export type ResponseCacheConfig = GatewayConfig['cache'];
/** ML routing of /v1/query and /v1/upload (src/routing/model). */
export type RoutingConfig = GatewayConfig['routing'];
/** The gateway as an MCP server (mcp/server). */
export type McpConfig = GatewayConfig['mcp'];
/** One upstream MCP server (mcp.servers.<name>), resolved: preset expanded, `${VAR}` substituted (mcp/clients). */
export type McpServerConfig = McpConfig['servers'][string];
/** WebSocket proxying and /v1/events (src/ws). */
export type WebsocketsConfig = GatewayConfig['websockets'];
export type RouteWebsocketConfig = NonNullable<RouteConfig['websocket']>;
/** Migration (src/migration). */
export type MigrationConfig = GatewayConfig['migration'];
export type LegacyEndpoint = GatewayConfig['legacy'][number];
/** Event-loop / heap pressure watched for /readyz (src/health/pressure.ts). */
export type PressureConfig = GatewayConfig['server']['pressure'];
export type IdleHeapReclaimConfig = GatewayConfig['server']['idleHeapReclaim'];
/** Client timeouts and connection caps (src/server/client-timeouts.ts, connection-guard.ts). */
export type ClientConnectionsConfig = Pick<
  GatewayConfig['server'],
  | 'clientHeaderTimeoutMs'
  | 'clientBodyTimeoutMs'
  | 'clientBodyMinBytesPerSecond'
  | 'clientSendTimeoutMs'
  | 'requestTimeoutMs'
  | 'keepAliveTimeoutMs'
  | 'maxConnectionsPerIp'
  | 'maxConnections'
>;

// Imported from this module by name elsewhere (src/resilience, tests).
export { SERVICE_NAMES, SERVICE_URL_ENV, serviceBreakerSchema, serviceRetriesSchema } from './services.js';
