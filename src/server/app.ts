import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import type { UpstreamToolCaller } from '../../mcp/clients/types.js';
import { HF_MCP_SERVER } from '../../mcp/integrations/huggingface/reference.js';
import { ModelValidationService } from '../../mcp/integrations/huggingface/model-validation.js';
import { packageModelsDir } from '../routing/model/files.js';
import type { RoutingModel } from '../routing/model/model.js';
import { redactConfig, type GatewayConfig } from '../config/index.js';
import { ERROR_CATALOGUE, errorBody, GatewayError } from '../errors.js';
import { HealthProber } from '../health/prober.js';
import { healthRoutes, publicHealth, readiness } from '../health/routes.js';
import { PressureMonitor } from '../health/pressure.js';
import { metricsSource } from '../metrics/cluster.js';
import metricsPlugin from '../metrics/plugin.js';
import { createMetrics, type GatewayMetrics } from '../metrics/registry.js';
import { acceptableRequestId } from '../proxy/headers.js';
import { proxyPlugin } from '../proxy/plugin.js';
import requestTargetPlugin, { rewriteRequestTarget } from '../proxy/request-target.js';
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
import { IdleHeapReclaimer } from './idle-heap-reclaim.js';
import { Lifecycle } from './lifecycle.js';
import { ProbeListener } from './probe-listener.js';
import { AccessLogController, logDestination, loggerOptions } from './logger.js';
import { ClientTimeouts } from './client-timeouts.js';
import { ConnectionGuard, globalConnectionCap, LISTEN_BACKLOG, trustedProxies } from './connection-guard.js';
import { MetricsService } from '../admin/metrics-service.js';
import { RoutesService } from '../admin/routes-service.js';
import { TOOL_NAMES } from '../../mcp/server/gateway-server.js';
import { gatewayMcpServerFactory } from '../../mcp/server/reuse.js';
import { mcpHttpPlugin, streamLimits } from '../../mcp/server/http.js';
import { mcpHostPolicy, mcpOriginPolicy, protectedResourceMetadata } from '../../mcp/server/auth.js';
import { EventBus, gatewayEvents, trafficShiftKey, type EventChannel, type GatewayEvent } from '../events/index.js';
import { GATEWAY_VERSION } from '../version.js';
import { createStateStore, type StateStore } from '../state/index.js';
import { createRateLimiting, rateLimitClientStage, rateLimitPrincipalStage, type RateLimiting } from '../ratelimit/index.js';
import { adminAccessPolicy, adminRoutes, BlockedClientsService } from '../admin/index.js';
import { routingAdminRoutes, RoutingModelsService } from '../admin/index.js';
import { createAutoRouting, type AutoRouting } from '../routing/auto-routing.js';
import { TrafficSplits } from '../routing/traffic-split.js';
import { TrafficService } from '../admin/traffic-service.js';
import { McpServersService } from '../admin/mcp-servers-service.js';
import { McpClientPool } from '../../mcp/clients/pool.js';
import { LiveConnections } from '../ws/connections.js';
import { webSocketProxy } from '../ws/proxy.js';
import websocketPlugin from '../ws/plugin.js';
import { eventsRoutes } from '../ws/events.js';
import { OperationalMemory } from '../../mcp/integrations/memory/index.js';
import { RoutingAnalyst } from '../../mcp/integrations/sequential-thinking/analyst.js';
import type { Fallback } from '../resilience/fallback.js';
import { countWords } from '../routing/decision-log.js';
import { exampleText, loadDataFiles } from '../routing/model/data.js';
import { Federation } from '../../mcp/federation/federation.js';
import legacyPlugin, { LegacyEndpoints, LegacyUsage } from '../migration/legacy.js';
import { SideStats } from '../migration/side-stats.js';
import { ModelPromotionTracking } from '../migration/model-promotion.js';
import { MigrationController } from '../migration/controller.js';
import type { MigrationBaseline } from '../migration/gates.js';
import type { MigrationTracker } from '../migration/tracker.js';
import { MigrationsService } from '../admin/migrations-service.js';
import { migrationRoutes } from '../admin/migrations-routes.js';
import { McpGithubTracker } from '../../mcp/integrations/github/mcp-tracker.js';

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
  /** The gateway's MCP clients: one supervised connection per mcp.servers entry (mcp/clients). */
  readonly mcpClients: McpClientPool;
  /** Starts background work (health probing) and listens; resolves with the bound URL. */
  listen(): Promise<string>;
  /**
   * Graceful shutdown. With `drainDelayMs` (what SIGTERM uses: server.drainDelayMs), /readyz
   * answers 503 at once while requests are still served normally (with `Connection: close`, so
   * kept-alive clients reconnect elsewhere) for that long; then the listener closes, in-flight
   * requests finish up to server.shutdownTimeoutMs, long-lived streams end, pools close.
   */
  close(options?: { readonly drainDelayMs?: number }): Promise<void>;
}

export interface BuildOptions {
  /** A logger to use instead of building one from the config (tests pass a silent one). */
  readonly logger?: FastifyBaseLogger;
  /** Skip prom-client's process metrics (tests that build many gateways in one process). */
  readonly processMetrics?: boolean;
  /** A state store to use instead of the one the config asks for (tests); not closed by the gateway. */
  readonly state?: StateStore;
  /** The wall clock of the migration parts (legacy sunsets, step times); tests inject one. */
  readonly now?: () => number;
  /** The GitHub tracker of migrations (mcp/integrations/github); absent: none, or Octokit when configured. */
  readonly tracker?: MigrationTracker;
  /** The Memory baseline of routes for the migration gates (mcp/integrations, when Memory is configured). */
  readonly baseline?: MigrationBaseline;
  /** Upstream MCP servers the integrations (Memory, Sequential Thinking, GitHub tracking) call instead of the pool of mcp.servers (tests: real servers over stdio). */
  readonly mcpCaller?: UpstreamToolCaller;
}

/** The configured GitHub tracker of migrations, if any (docs/operations.md, "GitHub tracking"). */
async function migrationTracker(
  config: GatewayConfig,
  given: MigrationTracker | undefined,
  caller: UpstreamToolCaller,
  log: { warn(obj: object, msg: string): void },
): Promise<MigrationTracker | undefined> {
  if (given !== undefined) return given;
  const t = config.migration.tracking;
  if (t.backend === 'none') return undefined;
  if (t.repo === undefined) {
    log.warn({ backend: t.backend }, 'migration tracking: migration.tracking.repo is not set; migrations are not tracked');
    return undefined;
  }
  const common = { repo: t.repo, ...(t.configRepo !== undefined ? { configRepo: t.configRepo } : {}), baseBranch: t.baseBranch };
  if (t.backend === 'octokit') {
    // Loaded only when configured: Octokit and its plugins are heap every other gateway would carry.
    const { OctokitTracker } = await import('../../mcp/integrations/github/octokit.js');
    return new OctokitTracker({ ...common, baseUrl: t.baseUrl, ...('token' in t && t.token !== undefined ? { token: t.token } : {}), log });
  }
  // The federated GitHub MCP server (mcp.servers.<mcpServer>, e.g. the github preset) through the pool.
  return new McpGithubTracker(caller, { ...common, server: t.mcpServer });
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
  // Every part that holds something (connections, timers, subscriptions) starts through this
  // list and closes in reverse (src/server/lifecycle.ts); a failed start closes what had started.
  const lifecycle = new Lifecycle({ error: (obj, msg) => process.stderr.write(`${msg}: ${JSON.stringify(obj)}\n`) });
  try {
    return await assembleGateway(config, options, lifecycle);
  } catch (err) {
    await lifecycle.close();
    throw err;
  }
}

async function assembleGateway(config: GatewayConfig, options: BuildOptions, lifecycle: Lifecycle): Promise<Gateway> {
  const metrics = createMetrics({ durationBuckets: config.metrics.durationBuckets, defaultMetrics: options.processMetrics !== false });
  // Under WORKER_THREADS, /metrics is every worker's sum (src/metrics/cluster.ts); set up first
  // so this worker answers the primary's aggregation requests while it is still starting.
  const exposition = metricsSource(metrics.registry);
  const table = buildRouteTable(config);
  const upstreams = await lifecycle.start(
    'upstream pools',
    new UpstreamRegistry(Object.values(config.services), {
      connections: config.proxy.connectionPoolSize,
      connectTimeoutMs: Math.min(config.proxy.requestTimeoutMs, 10_000),
    }),
    { close: (pools) => pools.close() },
  );

  // Legacy endpoints (src/migration/legacy.ts): mapped onto their new paths in rewriteUrl, after the canonical target.
  const legacy = new LegacyEndpoints(config.legacy, {
    ...(options.now ? { now: options.now } : {}),
    callerLabels: config.migration.legacyCallerLabels,
    keyNames: config.auth.apiKeys.map((k) => k.name),
  });

  // Slow clients (header, body and send timeouts) and connection caps, on the raw server.
  const clientTimeouts = new ClientTimeouts(config.server, { registry: metrics.registry });
  const app = Fastify({
    ...(options.logger ? { loggerInstance: options.logger } : { logger: { ...loggerOptions(config), stream: logDestination() } }),
    genReqId: (req) => acceptableRequestId(req.headers['x-request-id']) ?? randomUUID(),
    logController: new AccessLogController(config.logging),
    trustProxy: config.server.trustProxy as boolean | string[],
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    ...clientTimeouts.fastifyOptions(),
    http: { maxHeaderSize: config.limits.headerBytes, ...clientTimeouts.httpOptions() },
    clientErrorHandler: createClientErrorHandler({
      responseStarted: (socket) => clientTimeouts.responseStarted(socket),
      onTimeout: (socket) => clientTimeouts.nodeTimedOut(socket),
    }),
    routerOptions: { ignoreTrailingSlash: false, maxParamLength: 500 },
    // One canonical request target, before routing (src/proxy/request-target.ts).
    rewriteUrl: (req) => legacy.rewrite(req, rewriteRequestTarget(req)),
    // Requests the router refuses (malformed percent-encoding in the path, ...) get the
    // catalogue's shape too, instead of Fastify's own.
    frameworkErrors: (error, request, reply) => {
      const code = error.statusCode === 413 ? 'GW_REQUEST_BODY_TOO_LARGE' : 'GW_REQUEST_INVALID';
      const message = (error as { code?: string }).code === 'FST_ERR_BAD_URL' ? 'The request path is not valid percent-encoded UTF-8' : undefined;
      void (reply as unknown as FastifyReply).code(ERROR_CATALOGUE[code].status).send(errorBody(code, request.id, message));
    },
  });

  lifecycle.log = app.log;
  clientTimeouts.attach(app.server, app.log.child({ component: 'clients' }));
  new ConnectionGuard({
    maxPerIp: config.server.maxConnectionsPerIp,
    maxConnections: globalConnectionCap(config.server),
    exempt: trustedProxies(config.server.trustProxy),
    registry: metrics.registry,
  }).attach(app.server, app.log.child({ component: 'clients' }));

  /** /readyz 503 from the first moment of a shutdown; requests are still served. */
  let draining = false;
  /** The listener is closing: requests still arriving on open connections get 503. */
  let shuttingDown = false;
  const prober = new HealthProber({
    services: Object.values(config.services).filter((s) => s.enabled),
    intervalMs: config.health.intervalMs,
    timeoutMs: config.health.timeoutMs,
    metrics,
    logger: app.log.child({ component: 'health' }),
    onServiceUp: (service) => resilience.serviceHealthy(service),
    onHostHealth: (service, origin, up) => upstreams.setHostDown(service, origin, !up),
    // Each replica announces what its own probes see (MCP listeners hear it on every replica).
    onServiceStatusChange: (service, status, cause) =>
      void gatewayEventsChannel?.publish({ type: 'service.health', service, status, ...(cause !== undefined ? { cause: cause.slice(0, 64) } : {}) }).catch(() => {}),
  });
  /** The event bus's gateway channel (src/events), once the state store exists. */
  let gatewayEventsChannel: EventChannel<GatewayEvent> | undefined;
  // Backpressure, retries and circuit breakers of the proxied routes (src/resilience).
  /** The operational memory (mcp/integrations/memory), once built; breaker changes reach it through this. */
  let memory: OperationalMemory | undefined;
  const resilience = await lifecycle.start(
    'resilience',
    new Resilience(config, {
      log: app.log.child({ component: 'resilience' }),
      metrics,
      upstreams,
      onBreakerChange: (change) => {
        // Each replica announces its own breakers (/v1/events) and remembers them (Memory).
        void gatewayEventsChannel?.publish({ type: 'breaker.state', service: change.service, upstream: change.origin, state: change.to }).catch(() => {});
        memory?.breakerChanged(change);
      },
    }),
    { close: (r) => r.close() },
  );

  // Shared state first: the rate limiter and the threat detector live on it, and the
  // detector is the ThreatSink the stages below report to.
  // A store the caller passed in (tests) is the caller's to close.
  const state =
    options.state ??
    (await lifecycle.start('state store', await createStateStore(config, { log: app.log.child({ component: 'state' }), metrics }), { close: (store) => store.close() }));
  // The event bus (src/events) on the state store's pub/sub: MCP notifications on every replica.
  const events = await lifecycle.start('event bus', new EventBus(state, { log: app.log.child({ component: 'events' }) }), { close: (bus) => bus.close() });
  gatewayEventsChannel = gatewayEvents(events);
  const rateLimiting = await lifecycle.start(
    'rate limiting',
    createRateLimiting(config, state, {
      metrics,
      log: app.log.child({ component: 'ratelimit' }),
      onClientBlocked: (info) =>
        void gatewayEventsChannel?.publish({ type: 'client.blocked', client: info.client.slice(0, 128), reason: info.reason.slice(0, 200), seconds: info.durationSeconds }).catch(() => {}),
    }),
    {
      start: (r) => r.start(),
      close: (r) => r.close(),
    },
  );
  const blockedClients = new BlockedClientsService(rateLimiting.threats, () => state.up && state.backend === 'redis');
  // ML routing: the models load now (a model that cannot be used stops start-up) and follow
  // swaps of the other replicas through the state store.
  const routing: AutoRouting | null = config.routing.enabled
    ? await lifecycle.start(
        'routing models',
        createAutoRouting(config, {
          state,
          metrics,
          log: app.log.child({ component: 'routing' }),
          onModelActivated: (model, previous) => void gatewayEventsChannel?.publish({ type: 'model.promoted', model: model.slice(0, 256), previous: previous.slice(0, 256) }).catch(() => {}),
        }),
        {
          start: (r) => r.start(),
          close: (r) => r.close(),
        },
      )
    : null;
  // Stable/canary weights of the split routes, shared through the state store.
  const splits = await lifecycle.start('traffic splits', new TrafficSplits(config.routes, state, app.log.child({ component: 'traffic' })), {
    start: (s) => s.start(),
    close: (s) => s.close(),
  });
  const traffic = new TrafficService(config, splits);
  // Upstream MCP servers (mcp/clients): built now, connected in the background once the gateway
  // listens (listen() below), closed after the HTTP server (in-flight calls finish first).
  const mcpClients = await lifecycle.start(
    'mcp clients',
    new McpClientPool(config.mcp, { log: app.log.child({ component: 'mcp-clients' }), registry: metrics.registry }),
    { close: (pool) => pool.close() },
  );
  const mcpServers = new McpServersService(mcpClients);
  /** What the integrations (Memory, Sequential Thinking) call upstream tools through: the pool, or the caller a test passes. */
  const mcpCaller: UpstreamToolCaller = options.mcpCaller ?? mcpClients;

  // Migrations (src/migration): per-side figures of split routes shared by the replicas, and the one controller.
  const sides = await lifecycle.start('split figures', new SideStats(state, app.log.child({ component: 'migration' })), {
    start: (s) => s.start(),
    close: (s) => s.close(),
  });
  // The GitHub tracker of migrations and model promotions (one, when configured).
  const tracker = await migrationTracker(config, options.tracker, mcpCaller, app.log.child({ component: 'migration' }));
  const migrationController = await lifecycle.start(
    'migration controller',
    new MigrationController({
      config: config.migration,
      splits,
      stats: sides,
      store: state,
      log: app.log.child({ component: 'migration' }),
      metrics,
      legacy: config.legacy,
      publish: (event, key) => void gatewayEventsChannel?.publish(event, { key }).catch(() => {}),
      ...(tracker !== undefined ? { tracker } : {}),
      ...(options.baseline !== undefined ? { baseline: options.baseline } : {}),
      ...(options.now !== undefined ? { now: options.now } : {}),
    }),
    { start: (c) => c.start(), close: (c) => c.close() },
  );
  const migrations = new MigrationsService(migrationController, (route) => splits.state(route)?.weights);
  // A routing model made active opens a pull request with its model card (when tracking is configured).
  const modelPromotions =
    routing !== null && tracker !== undefined
      ? await lifecycle.start(
          'model promotion tracking',
          new ModelPromotionTracking(tracker, config.migration.tracking, state, routing.modelsDir, app.log.child({ component: 'migration' }), options.now),
          { start: (t) => t.start(), close: (t) => t.close() },
        )
      : undefined;
  // Every replica applies a shift and announces it; the key makes it one event for listeners.
  splits.onChange((split) =>
    void gatewayEventsChannel?.publish({ type: 'traffic.shifted', route: split.route, version: split.version, canary: split.weights.canary }, { key: trafficShiftKey(split.route, split.version, split.updatedAt) }).catch(() => {}),
  );

  // Callback-style where the work is synchronous (here and in the stages below): an async hook
  // costs a promise and a microtask hop per request for nothing (issue 18's profile).
  // Requests received so far: the idle heap reclaim (below) waits for an interval without any.
  let requestsReceived = 0;
  app.addHook('onRequest', (request, reply, done) => {
    requestsReceived += 1;
    reply.header('x-request-id', request.id);
    if (draining) reply.header('connection', 'close');
    if (shuttingDown) {
      reply.header('connection', 'close');
      throw new GatewayError('GW_GATEWAY_SHUTTING_DOWN', undefined, { headers: { 'retry-after': '1' } });
    }
    done();
  });

  // First of the gateway's stages: a request target the canonical form refuses, or that its
  // route does not accept, is 400 GW_REQUEST_PATH_INVALID before anything else looks at it.
  await app.register(requestTargetPlugin, {
    routes: [...table.active, ...table.disabled.map((d) => d.route), ...(routing?.routes ?? [])],
  });

  // Legacy endpoints: deprecation headers, or 410 after the sunset, before any other stage.
  const legacyUsage = new LegacyUsage(legacy, state, app.log.child({ component: 'legacy' }));
  await app.register(legacyPlugin, { legacy, usage: legacyUsage, counter: metrics.legacyRequests });

  app.setErrorHandler((err: FastifyError, request, reply) => {
    const error = mapFrameworkError(err);
    if (error.statusCode >= 500 && error.code === 'GW_INTERNAL_ERROR') request.log.error({ err }, 'unhandled error');
    // Authentication failures by reason (the Security dashboard): the catalogue bounds the label.
    if (error.code.startsWith('GW_AUTH_')) metrics.authFailures.inc({ reason: error.code });
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
  // WebSockets (src/ws): upgrades go through the stages below like any request; this one
  // first refuses upgrades on routes without WebSockets and foreign Origins.
  const liveConnections = new LiveConnections();
  if (config.websocketsEnabled) await app.register(websocketPlugin, { config });
  // Shutdown, after the drain delay: live WebSockets end with 1001, event streams with a notice.
  app.addHook('preClose', async () => liveConnections.shutdown(config.websockets.closeGraceMs));
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
  const auth = createAuth(config, app.log, state);
  await app.register(authPlugin, auth);
  // The per-principal (or per-route) quota, once the principal is known.
  await app.register(rateLimitPrincipalStage, rateLimiting);
  await app.register(metricsPlugin, {
    metrics,
    expose: config.metrics.enabled,
    authPolicy: config.auth.publicMetrics ? PUBLIC : READ_ONLY,
    source: exposition,
  });
  // Sustained event-loop / heap pressure: only /readyz reflects it (src/health/pressure.ts).
  const pressure = new PressureMonitor(config.server.pressure, { log: app.log.child({ component: 'pressure' }) });
  // The heap a load grew, given back once the gateway is idle (src/server/idle-heap-reclaim.ts).
  const idleHeap = new IdleHeapReclaimer(config.server.idleHeapReclaim, {
    log: app.log.child({ component: 'memory' }),
    registry: metrics.registry,
    requestsReceived: () => requestsReceived,
  });
  await app.register(healthRoutes, {
    prober,
    metrics,
    isShuttingDown: () => draining,
    breakers: () => resilience.breakerReport(),
    mcpServers: () => mcpClients.servers(),
    pressure,
    // Upstream addresses only for an admin credential (MFA as for /admin); public /healthz has none.
    showsAddresses: (request) => auth.authenticator.satisfies(request.headers, adminAccessPolicy(config.auth.requireMfaForAdmin)),
  });
  await app.register(adminRoutes, {
    blockedClients,
    traffic,
    mcpServers,
    legacyUsage,
    authPolicy: adminAccessPolicy(config.auth.requireMfaForAdmin),
  });
  await app.register(migrationRoutes, { migrations, authPolicy: adminAccessPolicy(config.auth.requireMfaForAdmin) });
  if (routing) {
    await app.register(routingAdminRoutes, {
      service: new RoutingModelsService(routing.manager, (model) => void modelPromotions?.promoted(model, 'admin').catch(() => {})),
      authPolicy: adminAccessPolicy(config.auth.requireMfaForAdmin),
    });
  }
  // GET /v1/events: the event bus as a WebSocket (or SSE), every replica's events (src/ws/events.ts).
  await app.register(eventsRoutes, {
    channel: gatewayEventsChannel,
    connections: liveConnections,
    metrics,
    limits: config.websockets,
    websocket: config.websocketsEnabled,
  });
  // MCP Streamable HTTP at /mcp: read scope to connect; tools check their own needs.
  const routesService = new RoutesService(config, table, prober, splits);
  const metricsService = await lifecycle.start('metrics sampler', new MetricsService(metrics.registry), { start: (m) => m.start(), close: (m) => m.stop() });
  if (config.mcp.enabled) {
    if (!config.mcp.requireAuth) app.log.warn('MCP_REQUIRE_AUTH=false: /mcp accepts requests without credentials (read tools only; a valid credential is still used); never in production');
    const hostAllowed = mcpHostPolicy(config);
    if (hostAllowed === null) app.log.warn('mcp: the Host of /mcp requests is not checked; set mcp.allowedHosts (or mcp.resourceUrl) to the names clients use');
    const thinking = config.mcp.sequentialThinking;
    // analyze_routing / review_routing: built with ML routing; recorded through the sequential-thinking server when configured.
    const routingAnalyst = routing
      ? new RoutingAnalyst({
          ...(options.mcpCaller !== undefined || thinking.server in config.mcp.servers ? { caller: mcpCaller } : {}),
          settings: thinking,
          routing: config.routing,
          decisions: routing.decisionLog,
          model: () => routing.manager.active,
          modelStatus: () => {
            const st = routing.manager.status();
            const confusion = routing.manager.active.file.evaluation?.confusion;
            return { active: { labels: routing.manager.active.labels, ...(confusion ? { evaluationConfusion: confusion } : {}) }, shadow: st.shadow, shadowAgreement: st.shadowAgreement };
          },
          health: (service) => prober.snapshot().services[service]?.status ?? (service in config.services ? 'disabled' : 'not configured'),
          breaker: (service) => resilience.breakerReport()[service]?.state ?? 'closed (no traffic yet)',
          split: (service) => {
            const found = splits.all().find((x) => x.route.service === service || x.split.canaryService === service);
            if (found === undefined) return undefined;
            const w = found.state.weights;
            const side = found.route.service === service ? 'stable' : 'canary';
            return `route ${found.route.id} splits stable ${w.stable} / canary ${w.canary} (canary service ${found.split.canaryService}, sticky by ${found.split.sticky}); ${service} is its ${side} side, so ${side === 'stable' ? w.stable : w.canary}% of clients land there`;
          },
          fallback: (service) => describeFallback(resilience.fallbackFor(service)),
          trainingWords: trainingWordCounts(routing.modelsDir),
          remember: (text) => memory?.recorder.record({ kind: 'observe', entity: 'routing-reviews', entityType: 'gateway-routing-review', text }),
        })
      : undefined;
    // Upstream MCP servers offered to agents (mcp/federation) when any is configured to be.
    const federation = Object.values(config.mcp.servers).some((s) => s.enabled && s.federate)
      ? await lifecycle.start(
          'mcp federation',
          new Federation({
            upstreams: mcpClients,
            reserved: { tools: TOOL_NAMES, prompts: ['diagnose_service', 'plan_canary_rollout'] },
            rateCheck: async (identity, server, tool, quota) => (await rateLimiting.limiter.checkTool(identity, server, tool, quota)).decision.allowed,
            log: app.log.child({ component: 'mcp-federation' }),
          }),
          { close: (f) => f.close() },
        )
      : undefined;
    const mcpDeps = {
      ...(routingAnalyst ? { routingAnalyst } : {}),
      ...(federation ? { federation } : {}),
      routes: routesService,
      metrics: metricsService,
      blockedClients,
      traffic,
      mcpServers,
      migrations,
      legacyUsage,
      ...(routing ? { routingModel: () => routing.manager.active, modelValidation: modelValidationService(config, routing.modelsDir, () => routing.manager.active, mcpCaller) } : {}),
      resetBreakers: (service: string) => resilience.resetBreakers(service),
      serviceNames: Object.keys(config.services),
      requireMfaForAdmin: config.auth.requireMfaForAdmin,
      redactedConfig: () => redactConfig(config),
      version: GATEWAY_VERSION,
    };
    await app.register(mcpHttpPlugin, {
      createServer: gatewayMcpServerFactory(mcpDeps).create,
      limits: streamLimits(config.mcp),
      audit: (entry) => app.log.info({ audit: entry }, entry.phase === 'arrived' ? 'mcp tool call' : 'mcp tool call ended'),
      sessionIdleMs: config.mcp.sessionIdleSeconds * 1000,
      retryMs: config.mcp.streamRetryMs,
      authPolicy: config.mcp.requireAuth ? { required: true, scope: 'read' } : PUBLIC,
      authenticator: auth.authenticator,
      originAllowed: mcpOriginPolicy(config),
      hostAllowed,
      sessionRecords: state.cache('mcp-sessions', { maxEntries: 100_000 }),
      sessionTombstones: state.cache('mcp-sessions-ended', { maxEntries: 100_000 }),
      storeUp: () => state.up,
      bus: events,
      metrics,
      ...(federation
        ? { federation: { onListChanged: (l: Parameters<Federation['onListChanged']>[0]) => federation.onListChanged(l), serverOf: (tool: string) => federation.catalogue().tools.get(tool)?.server } }
        : {}),
    });
    if (config.auth.jwt.issuer !== undefined) await app.register(protectedResourceMetadata, { config });
  }
  // Response cache of GET/HEAD routes (src/cache), in the state store's Keyv.
  const cache = config.cache.enabled
    ? await lifecycle.start('response cache', new ResponseCache(config.cache, state.cache<CacheStored>('responses', { maxEntries: 100_000 }), metrics, state), {
        close: (c) => c.close(),
      })
    : undefined;
  await app.register(proxyPlugin, {
    config,
    table,
    upstreams,
    metrics,
    autoRouting: routing,
    resilience,
    splits,
    sides,
    ...(cache ? { cache } : {}),
    ...(config.websocketsEnabled
      ? { websocket: (path, identity) => webSocketProxy({ path, identity, resilience, metrics, limits: config.websockets, connections: liveConnections }) }
      : {}),
  });
  // The operational memory (issue 15): built now, started in listen() before the probes, so the
  // warm start can show remembered health states until the first probe decides. It calls the
  // memory server through the pool of upstream MCP servers (mcp.servers, started above).
  if (config.mcp.memory.enabled && (options.mcpCaller !== undefined || config.mcp.memory.server in config.mcp.servers)) {
    memory = new OperationalMemory({
      caller: mcpCaller,
      settings: { ...config.mcp.memory, lowConfidence: config.mcp.sequentialThinking.lowConfidence },
      registry: metrics.registry,
      counter: metrics.memoryEvents,
      log: app.log.child({ component: 'memory' }),
      events: gatewayEventsChannel,
      seedHealth: (states) => prober.seedFromMemory(states),
      ...(routing ? { decisions: routing.decisionLog, modelStatus: () => routing.manager.status() } : {}),
      topology: {
        routes: table.active.map((r) => ({ id: r.id, prefix: r.prefix, services: [r.service, ...(r.split ? [r.split.canaryService] : [])] })),
        modelRoutes: routing?.routes.map((r) => r.id) ?? [],
      },
    });
  }
  // Last on the list, so first to close: stop accepting and finish in-flight requests before
  // anything they use goes away. (Fastify's own onClose hooks run inside app.close().)
  // (The Fastify instance is a thenable: it is closed over, never passed as the value.)
  await lifecycle.start('http server', null, { close: () => app.close() });

  // GATEWAY_PROBE_PORT: the probes on a thread of their own (src/server/probe-listener.ts), from the same answers as the routes above.
  const probeConfig = config.server.probe;
  const publicHealthAnswer = publicHealth({ prober, breakers: () => resilience.breakerReport() });
  const probeListener =
    probeConfig === undefined
      ? undefined
      : new ProbeListener({
          host: probeConfig.host,
          port: probeConfig.port,
          state: () => {
            const ready = readiness({ prober, isShuttingDown: () => draining, pressure });
            const health = publicHealthAnswer();
            return { readyz: { status: ready.status, body: JSON.stringify(ready.body) }, healthz: { status: health.status, body: health.json } };
          },
        });

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
    mcpClients,
    async listen() {
      try {
        if (memory) {
          // The warm start reads the memory server before the first probe round: its connection
          // starts now (in the background, as after listening), and the warm start waits for it
          // at most mcp.memory.warmStartWaitMs, at start-up only.
          mcpClients.start();
          await lifecycle.start('operational memory', memory, { start: (m) => m.start(), close: (m) => m.close() });
        }
        await lifecycle.start('health prober', prober, { start: (p) => p.start(), close: (p) => p.stop() });
        await lifecycle.start('pressure monitor', pressure, { start: (p) => p.start(), close: (p) => p.stop() });
        await lifecycle.start('idle heap reclaim', idleHeap, { start: (r) => r.start(), close: (r) => r.stop() });
        if (probeListener !== undefined) {
          await lifecycle.start('probe listener', probeListener, { start: (p) => p.start(), close: (p) => p.stop() });
          app.log.info({ url: probeListener.url }, 'probe listener (/livez, /readyz, /healthz) listening');
        }
        const url = await app.listen({ host: config.server.host, port: config.server.port, backlog: LISTEN_BACKLOG });
        // After listening: upstream MCP servers connect in the background, never delaying start-up.
        mcpClients.start();
        return url;
      } catch (err) {
        await lifecycle.close(); // e.g. the port is taken: close what had started
        throw err;
      }
    },
    close(closeOptions = {}) {
      closing ??= (async () => {
        draining = true;
        probeListener?.refresh();
        const drainDelayMs = closeOptions.drainDelayMs ?? 0;
        if (drainDelayMs > 0) {
          app.log.info({ drainDelayMs }, 'draining: /readyz is 503, still serving until load balancers move away');
          await new Promise((resolveDrain) => setTimeout(resolveDrain, drainDelayMs));
        }
        shuttingDown = true;
        const deadline = setTimeout(() => {
          app.log.warn({ deadlineMs: config.server.shutdownTimeoutMs }, 'shutdown deadline reached; closing remaining connections');
          app.server.closeAllConnections();
          void upstreams.destroy();
        }, config.server.shutdownTimeoutMs);
        deadline.unref();
        try {
          // In reverse start order: probes, the HTTP server (in-flight requests finish), the
          // cache, routing, limits, the state store, upstream pools last.
          await lifecycle.close();
        } finally {
          clearTimeout(deadline);
        }
      })();
      return closing;
    },
  };
}

/**
 * Words per text of the training set (modelsDir/data/train.jsonl), read once when the first
 * review asks (a tool call, never a request); undefined when the file is not there or invalid.
 */
function trainingWordCounts(modelsDir: string): () => readonly number[] | undefined {
  let counts: readonly number[] | undefined | null = null;
  return () => {
    if (counts === null) {
      try {
        counts = loadDataFiles([join(modelsDir, 'data', 'train.jsonl')]).examples.filter((e) => e.request.path === '/v1/query').map((e) => countWords(exampleText(e)));
      } catch {
        counts = undefined;
      }
    }
    return counts;
  };
}

/** A service's fallback in words (analyze_routing). */
function describeFallback(f: Fallback | undefined): string | undefined {
  if (f === undefined) return undefined;
  if (f.type === 'service') return `on failure the ${f.service} service answers`;
  if (f.type === 'static') return `on failure a fixed ${f.status} answer`;
  return 'on failure the last cached good answer (stale cache)';
}

/** `validate_routing_model`: the active model on the validation split of its folder (else the shipped one), HuggingFace through MCP and the Inference API. */
function modelValidationService(config: GatewayConfig, modelsDir: string, model: () => RoutingModel, mcp: UpstreamToolCaller | undefined): ModelValidationService {
  const own = join(modelsDir, 'data', 'validation.jsonl');
  return new ModelValidationService({
    model,
    dataFile: existsSync(own) ? own : join(packageModelsDir(), 'data', 'validation.jsonl'),
    ...(mcp !== undefined ? { mcp } : {}),
    hfServer: HF_MCP_SERVER,
    zeroShot: {
      model: config.routing.validator.model,
      ...(config.secrets.hfToken !== undefined ? { token: config.secrets.hfToken } : {}),
      ...(config.routing.validator.endpointUrl !== undefined ? { endpointUrl: config.routing.validator.endpointUrl } : {}),
      timeoutMs: 30_000,
    },
  });
}
