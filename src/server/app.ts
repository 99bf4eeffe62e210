import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import { redactConfig, type GatewayConfig } from '../config/index.js';
import { ERROR_CATALOGUE, errorBody, GatewayError } from '../errors.js';
import { HealthProber } from '../health/prober.js';
import { healthRoutes } from '../health/routes.js';
import { PressureMonitor } from '../health/pressure.js';
import metricsPlugin from '../metrics/plugin.js';
import { createMetrics, type GatewayMetrics } from '../metrics/registry.js';
import { acceptableRequestId } from '../proxy/headers.js';
import { proxyPlugin } from '../proxy/plugin.js';
import { ResponseCache, type CacheStored } from '../cache/index.js';
import { Resilience } from '../resilience/index.js';
import { UpstreamRegistry } from '../proxy/upstreams.js';
import { buildRouteTable, type RouteTable } from '../routing/route-table.js';
import compress from '@fastify/compress';
import { constants as zlib } from 'node:zlib';
import { authPlugin, createAuth, PUBLIC, READ_ONLY } from '../auth/index.js';
import type { TokenIssuer } from '../auth/token-issuer.js';
import { createClientErrorHandler } from '../security/client-errors.js';
import securityPlugin from '../security/plugin.js';
import validationPlugin from '../security/validation-plugin.js';
import { AccessLogController, loggerOptions } from './logger.js';
import { MetricsService } from '../admin/metrics-service.js';
import { RoutesService } from '../admin/routes-service.js';
import { createGatewayMcpServer, type SubscribableResource } from '../../mcp/server/gateway-server.js';
import { mcpHttpPlugin, type McpSessionRecord } from '../../mcp/server/http.js';
import { mcpOriginPolicy, protectedResourceMetadata } from '../../mcp/server/auth.js';
import { GATEWAY_VERSION } from '../version.js';
import { createStateStore, type StateStore } from '../state/index.js';
import { createRateLimiting, rateLimitClientStage, rateLimitPrincipalStage, type RateLimiting } from '../ratelimit/index.js';
import { adminRoutes, BlockedClientsService } from '../admin/index.js';
import { routingAdminRoutes, RoutingModelsService } from '../admin/index.js';
import { createAutoRouting, type AutoRouting } from '../routing/auto-routing.js';
import { TrafficSplits } from '../routing/traffic-split.js';
import { TrafficService } from '../admin/traffic-service.js';

export interface Gateway {
  readonly app: FastifyInstance;
  readonly config: GatewayConfig;
  readonly metrics: GatewayMetrics;
  readonly prober: HealthProber;
  readonly upstreams: UpstreamRegistry;
  readonly table: RouteTable;
  /** Issues the gateway's own short-lived tokens (the demo prints one). */
  readonly tokens: TokenIssuer;
  /** Shared state (memory, or Redis with REDIS_URL). */
  readonly state: StateStore;
  /** Rate limiter and suspicious-client detector; `rateLimiting.threats` is the ThreatSink stages report to. */
  readonly rateLimiting: RateLimiting;
  /** Admin services (REST under /admin, MCP tools later). */
  readonly admin: { readonly blockedClients: BlockedClientsService };
  /** ML routing of /v1/query and /v1/upload (null when routing.enabled is false). */
  readonly routing: AutoRouting | null;
  /** Starts background work (health probing) and listens; resolves with the bound URL. */
  listen(): Promise<string>;
  /** Graceful shutdown: stop accepting, drain in-flight requests up to the deadline, close pools. */
  close(): Promise<void>;
}

export interface BuildOptions {
  /** A logger to use instead of building one from the config (tests pass a silent one). */
  readonly logger?: FastifyBaseLogger;
  /** Skip prom-client's process metrics (tests that build many gateways in one process). */
  readonly processMetrics?: boolean;
  /** A state store to use instead of the one the config asks for (tests); not closed by the gateway. */
  readonly state?: StateStore;
}

function mapFrameworkError(err: FastifyError): GatewayError {
  if (err instanceof GatewayError) return err;
  const status = err.statusCode ?? 500;
  if (status === 413) return new GatewayError('GW_REQUEST_BODY_TOO_LARGE');
  if (status >= 400 && status < 500) {
    // Fastify's own 4xx messages describe the request's form, never its content.
    return new GatewayError('GW_REQUEST_INVALID', err.message);
  }
  return new GatewayError('GW_INTERNAL_ERROR', undefined, { cause: err });
}

export async function buildGateway(config: GatewayConfig, options: BuildOptions = {}): Promise<Gateway> {
  const metrics = createMetrics({ durationBuckets: config.metrics.durationBuckets, defaultMetrics: options.processMetrics !== false });
  const table = buildRouteTable(config);
  const upstreams = new UpstreamRegistry(Object.values(config.services), {
    connections: config.proxy.connectionPoolSize,
    connectTimeoutMs: Math.min(config.proxy.requestTimeoutMs, 10_000),
  });

  const app = Fastify({
    ...(options.logger ? { loggerInstance: options.logger } : { logger: loggerOptions(config) }),
    genReqId: (req) => acceptableRequestId(req.headers['x-request-id']) ?? randomUUID(),
    logController: new AccessLogController(),
    trustProxy: config.server.trustProxy as boolean | string[],
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    http: { maxHeaderSize: config.limits.headerBytes },
    clientErrorHandler: createClientErrorHandler(),
    routerOptions: { ignoreTrailingSlash: false, maxParamLength: 500 },
    // Requests the router refuses (malformed percent-encoding in the path, ...) get the
    // catalogue's shape too, instead of Fastify's own.
    frameworkErrors: (error, request, reply) => {
      const code = error.statusCode === 413 ? 'GW_REQUEST_BODY_TOO_LARGE' : 'GW_REQUEST_INVALID';
      const message = (error as { code?: string }).code === 'FST_ERR_BAD_URL' ? 'The request path is not valid percent-encoded UTF-8' : undefined;
      void (reply as unknown as FastifyReply).code(ERROR_CATALOGUE[code].status).send(errorBody(code, request.id, message));
    },
  });

  let shuttingDown = false;
  const prober = new HealthProber({
    services: Object.values(config.services).filter((s) => s.enabled),
    intervalMs: config.health.intervalMs,
    timeoutMs: config.health.timeoutMs,
    metrics,
    logger: app.log.child({ component: 'health' }),
    onServiceUp: (service) => resilience.serviceHealthy(service),
    onHostHealth: (service, origin, up) => upstreams.setHostDown(service, origin, !up),
    onServiceStatusChange: () => emitResourceChange('gateway://services'),
  });
  // MCP sessions subscribed to gateway://routes or gateway://services hear of changes.
  const resourceListeners = new Set<(uri: SubscribableResource) => void>();
  const emitResourceChange = (uri: SubscribableResource) => {
    for (const listener of resourceListeners) listener(uri);
  };
  // Backpressure, retries and circuit breakers of the proxied routes (src/resilience).
  const resilience = new Resilience(config, { log: app.log.child({ component: 'resilience' }), metrics, upstreams });

  // Shared state first: the rate limiter and the threat detector live on it, and the
  // detector is the ThreatSink the stages below report to.
  const state = options.state ?? (await createStateStore(config, { log: app.log.child({ component: 'state' }), metrics }));
  const rateLimiting = createRateLimiting(config, state, { metrics, log: app.log.child({ component: 'ratelimit' }) });
  await rateLimiting.start();
  const blockedClients = new BlockedClientsService(rateLimiting.threats, () => state.up && state.backend === 'redis');
  // ML routing: the models load now (a model that cannot be used stops start-up) and follow
  // swaps of the other replicas through the state store.
  let routing: AutoRouting | null;
  try {
    routing = config.routing.enabled ? createAutoRouting(config, { state, metrics, log: app.log.child({ component: 'routing' }) }) : null;
  } catch (err) {
    await rateLimiting.close();
    if (options.state === undefined) await state.close();
    throw err;
  }
  await routing?.start();
  // Stable/canary weights of the split routes, shared through the state store.
  const splits = new TrafficSplits(config.routes, state, app.log.child({ component: 'traffic' }));
  await splits.start();
  const traffic = new TrafficService(config, splits);
  splits.onChange(() => emitResourceChange('gateway://routes'));

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    if (shuttingDown) {
      reply.header('connection', 'close');
      throw new GatewayError('GW_GATEWAY_SHUTTING_DOWN', undefined, { headers: { 'retry-after': '1' } });
    }
  });

  app.setErrorHandler((err: FastifyError, request, reply) => {
    const error = mapFrameworkError(err);
    if (error.statusCode >= 500 && error.code === 'GW_INTERNAL_ERROR') request.log.error({ err }, 'unhandled error');
    return reply.code(error.statusCode).headers(error.headers).send(errorBody(error.code, request.id, error.message));
  });

  app.setNotFoundHandler((request, reply) => {
    const error = new GatewayError('GW_ROUTE_NOT_FOUND', `No route for ${request.method} ${request.url.split('?', 1)[0]}`);
    return reply.code(error.statusCode).send(errorBody(error.code, request.id, error.message));
  });

  // The request path, in lifecycle order (see DESIGN.md): CORS, compression, security
  // headers and limits, the client stage (blocked / suspicious clients, per-IP quota), input
  // validation, authentication, the per-principal quota; routing and proxying come last.
  await app.register(securityPlugin, { config });
  await app.register(compress, {
    global: true,
    threshold: 1024,
    encodings: ['br', 'gzip', 'deflate'],
    // Quality 4 keeps brotli's CPU cost near gzip's; the default (11) is for static assets.
    brotliOptions: { params: { [zlib.BROTLI_PARAM_QUALITY]: 4 } },
  });
  // Blocked and suspicious clients, and the per-IP quota, before anything costly.
  await app.register(rateLimitClientStage, rateLimiting);
  await app.register(validationPlugin, {
    routes: [...config.routes, ...(routing?.routes ?? [])],
    metrics,
    threats: rateLimiting.threats,
    inspection: { valueChars: config.limits.inspectValueBytes, requestChars: config.limits.inspectRequestBytes },
  });
  const auth = createAuth(config, app.log);
  await app.register(authPlugin, auth);
  // The per-principal (or per-route) quota, once the principal is known.
  await app.register(rateLimitPrincipalStage, rateLimiting);
  await app.register(metricsPlugin, {
    metrics,
    expose: config.metrics.enabled,
    authPolicy: config.auth.publicMetrics ? PUBLIC : READ_ONLY,
  });
  // Sustained event-loop / heap pressure: only /readyz reflects it (src/health/pressure.ts).
  const pressure = new PressureMonitor(config.server.pressure, { log: app.log.child({ component: 'pressure' }) });
  await app.register(healthRoutes, { prober, metrics, isShuttingDown: () => shuttingDown, breakers: () => resilience.breakerReport(), pressure });
  await app.register(adminRoutes, {
    blockedClients,
    traffic,
    authPolicy: { required: true, scope: 'admin', mfa: config.auth.requireMfaForAdmin },
  });
  if (routing) {
    await app.register(routingAdminRoutes, {
      service: new RoutingModelsService(routing.manager),
      authPolicy: { required: true, scope: 'admin', mfa: config.auth.requireMfaForAdmin },
    });
  }
  // MCP Streamable HTTP at /mcp: read scope to connect; tools check their own needs.
  const routesService = new RoutesService(config, table, prober, splits);
  const metricsService = new MetricsService(metrics.registry);
  metricsService.start();
  app.addHook('onClose', async () => metricsService.stop());
  if (config.mcp.enabled) {
    if (!config.mcp.requireAuth) app.log.warn('MCP_REQUIRE_AUTH=false: /mcp accepts requests without credentials (read tools only); never in production');
    await app.register(mcpHttpPlugin, {
      createServer: (request, session) =>
        createGatewayMcpServer({
          routes: routesService,
          metrics: metricsService,
          blockedClients,
          traffic,
          ...(routing ? { routingModel: () => routing.manager.active } : {}),
          resetBreakers: (service) => resilience.resetBreakers(service),
          serviceNames: Object.keys(config.services),
          principal: request.principal,
          requireMfaForAdmin: config.auth.requireMfaForAdmin,
          redactedConfig: () => redactConfig(config),
          resourceChanges: (listener) => {
            resourceListeners.add(listener);
            return () => resourceListeners.delete(listener);
          },
          subscriptions: session.subscriptions,
          onSubscriptionsChange: session.onSubscriptionsChange,
          refused: session.refused,
          version: GATEWAY_VERSION,
        }),
      maxSessions: config.mcp.maxSessions,
      maxSessionsPerPrincipal: config.mcp.maxSessionsPerPrincipal,
      audit: (entry) => app.log.info({ audit: entry }, 'mcp tool call'),
      sessionIdleMs: config.mcp.sessionIdleSeconds * 1000,
      authPolicy: config.mcp.requireAuth ? { required: true, scope: 'read' } : PUBLIC,
      originAllowed: mcpOriginPolicy(config),
      sessionStore: state.cache<McpSessionRecord>('mcp-sessions'),
      metrics,
    });
    if (config.auth.jwt.issuer !== undefined) await app.register(protectedResourceMetadata, { config });
  }
  // Response cache of GET/HEAD routes (src/cache), in the state store's Keyv.
  const cache = config.cache.enabled ? new ResponseCache(config.cache, state.cache<CacheStored>('responses', { maxEntries: 100_000 }), metrics, state) : undefined;
  if (cache !== undefined) app.addHook('onClose', async () => cache.close());
  await app.register(proxyPlugin, { config, table, upstreams, metrics, autoRouting: routing, resilience, splits, ...(cache ? { cache } : {}) });

  let closing: Promise<void> | undefined;
  return {
    app,
    config,
    metrics,
    prober,
    upstreams,
    table,
    tokens: auth.issuer,
    state,
    rateLimiting,
    admin: { blockedClients },
    routing,
    async listen() {
      prober.start();
      pressure.start();
      return app.listen({ host: config.server.host, port: config.server.port });
    },
    close() {
      closing ??= (async () => {
        shuttingDown = true;
        const deadline = setTimeout(() => {
          app.log.warn({ deadlineMs: config.server.shutdownTimeoutMs }, 'shutdown deadline reached; closing remaining connections');
          app.server.closeAllConnections();
          void upstreams.destroy();
        }, config.server.shutdownTimeoutMs);
        deadline.unref();
        try {
          await app.close();
        } finally {
          clearTimeout(deadline);
          await Promise.allSettled([prober.stop(), upstreams.close()]);
          pressure.stop();
          resilience.close();
          await rateLimiting.close();
          await routing?.close();
          splits.close();
          if (options.state === undefined) await state.close();
        }
      })();
      return closing;
    },
  };
}
