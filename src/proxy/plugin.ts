import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import '../auth/policy.js';
import type { GatewayConfig, HttpMethod, RouteConfig } from '../config/index.js';
import { GatewayError } from '../errors.js';
import type { GatewayMetrics } from '../metrics/registry.js';
import type { ResponseCache } from '../cache/index.js';
import { Resilience } from '../resilience/index.js';
import { AutoRouteDecider, type AutoRouting } from '../routing/auto-routing.js';
import { ALL_METHODS, routePatterns, type RouteTable } from '../routing/route-table.js';
import type { TrafficSplits } from '../routing/traffic-split.js';
import type { SideObserver } from '../migration/side-stats.js';
import { jsonBodyLimit, registerProxyBodyParsers } from './body.js';
import { IdentityAssertions } from './identity.js';
import { RequestPath, type Destination, type LiveSplit, type RoutePlan } from './request-path.js';
import { splitRouteOf } from './split-side.js';
import type { UpstreamRegistry } from './upstreams.js';

export interface ProxyPluginOptions {
  readonly config: GatewayConfig;
  readonly table: RouteTable;
  readonly upstreams: UpstreamRegistry;
  readonly metrics: GatewayMetrics;
  /** POST /v1/query and /v1/upload, whose service the routing model picks (absent: routing.enabled false). */
  readonly autoRouting?: AutoRouting | null;
  /** Backpressure, retries and breakers (src/resilience); created here when not given. The owner closes it. */
  readonly resilience?: Resilience;
  /** The response cache of GET/HEAD routes (src/cache); absent: nothing is cached. */
  readonly cache?: ResponseCache;
  /** Live stable/canary weights of the routes with a `split` (src/routing/traffic-split.ts). */
  readonly splits?: TrafficSplits;
  /** Per-side figures of split routes for the migration gates (src/migration/side-stats.ts). */
  readonly sides?: SideObserver;
  /**
   * WebSocket upgrades on the routes that take them (src/ws, given by the assembly when
   * ENABLE_WEBSOCKETS): made with this plugin's request path, so routing, splits and
   * load balancing are the ones HTTP requests get.
   */
  readonly websocket?: (path: RequestPath, identity: IdentityAssertions) => WebSocketRoutes;
}

/** What a route needs to proxy WebSocket upgrades (src/ws/proxy.ts). */
export interface WebSocketRoutes {
  /** Before the upgrade: may still refuse with HTTP; opens the upstream socket. */
  preHandler(request: FastifyRequest, reply: FastifyReply, plan: RoutePlan): Promise<void>;
  /** After the upgrade: relays the client to its upstream. */
  wsHandler(client: WebSocket, request: FastifyRequest, plan: RoutePlan): void;
}

/** A route as the proxy registers it: its URL patterns and its plan. */
interface ProxiedRoute {
  readonly urls: readonly string[];
  readonly plan: RoutePlan;
}

/**
 * Every proxied route: the table's and the two ML-routed ones, registered by one loop with one
 * handler (src/proxy/request-path.ts) and one answer for a method a route does not accept.
 * Encapsulated (no fastify-plugin) on purpose: it replaces the body parsers with a
 * pass-through so request bodies stream to the upstream untouched, and that must not leak to
 * the gateway's own endpoints.
 */
export async function proxyPlugin(app: FastifyInstance, opts: ProxyPluginOptions): Promise<void> {
  const { config, table, upstreams, metrics, cache, splits } = opts;
  registerProxyBodyParsers(app);
  const resilience = opts.resilience ?? new Resilience(config, { log: app.log, metrics, upstreams });
  if (opts.resilience === undefined) app.addHook('onClose', async () => resilience.close());

  /** A route's split as applied here: a split whose canary service is disabled sends everything to stable. */
  const liveSplit = (route: RouteConfig | undefined): LiveSplit | undefined => {
    if (route?.split === undefined || splits?.has(route.id) !== true) return undefined;
    const canary = config.services[route.split.canaryService];
    return canary?.enabled === true ? { route, config: route.split, canary } : undefined;
  };
  // Where the routing model's choice goes: each enabled service, with the split its table route has.
  const destinations = new Map<string, Destination>();
  for (const service of Object.values(config.services)) {
    if (!service.enabled) continue;
    const { route, ambiguous } = splitRouteOf(service.name, table.active);
    if (ambiguous.length > 0) {
      app.log.warn({ service: service.name, routes: ambiguous }, 'routing: several routes of this service have a split and none is named after it; ML-routed requests take no split');
    }
    const split = liveSplit(route);
    destinations.set(service.name, split === undefined ? { service } : { service, split });
  }

  // The verified identity passed upstream instead of the client's credentials (src/proxy/identity.ts).
  const identity = new IdentityAssertions({ secretKey: config.secrets.secretKey, issuer: config.auth.tokens.issuer });
  const path = new RequestPath({
    config,
    upstreams,
    metrics,
    resilience,
    ...(cache !== undefined ? { cache } : {}),
    ...(splits !== undefined ? { splits } : {}),
    ...(opts.sides !== undefined ? { sides: opts.sides } : {}),
    destinations,
    identity,
    secureCookie: config.environment === 'production',
  });

  const plan = (route: RouteConfig): Omit<RoutePlan, 'destination' | 'decide'> => {
    const methods = route.methods ?? ALL_METHODS;
    return {
      route,
      bodyLimitBytes: route.bodyLimitBytes ?? config.limits.bodyBytes,
      // Only GET and HEAD answers are ever cached (the ML-routed routes accept POST only).
      cached: cache !== undefined && cache.handles(route) && (methods.includes('GET') || methods.includes('HEAD')),
    };
  };
  const decider = opts.autoRouting ? new AutoRouteDecider({
        config,
        manager: opts.autoRouting.manager,
        metrics,
        decisionLog: opts.autoRouting.decisionLog,
        ...(opts.autoRouting.principalHash ? { principalHash: opts.autoRouting.principalHash } : {}),
      }) : undefined;
  const routes: ProxiedRoute[] = [
    ...table.active.map((route) => {
      const split = liveSplit(route);
      const destination: Destination = split === undefined ? { service: config.services[route.service]! } : { service: config.services[route.service]!, split };
      return { urls: routePatterns(route.prefix), plan: { ...plan(route), destination } };
    }),
    // The ML-routed endpoints: their exact path only.
    ...(opts.autoRouting?.routes ?? []).map((route) => ({ urls: [route.prefix], plan: { ...plan(route), decide: decider!.for(route) } })),
  ];

  const websocket = opts.websocket?.(path, identity);
  for (const { urls, plan } of routes) {
    const { route } = plan;
    const methods = route.methods ?? ALL_METHODS;
    const routeConfig = { gatewayRoute: route, authPolicy: route.auth };
    const others = ALL_METHODS.filter((m) => !methods.includes(m));
    const allow = methods.join(', ');
    // WebSocket upgrades (GET) on this route: on by default, `websocket: false` turns them off.
    const upgrades = websocket !== undefined && plan.decide === undefined && route.websocket?.enabled !== false && methods.includes('GET');
    for (const url of urls) {
      const handler = (request: FastifyRequest, reply: FastifyReply) => path.handle(request, reply, plan);
      const plain = upgrades ? methods.filter((m) => m !== 'GET') : [...methods];
      if (plain.length > 0) {
        app.route({
          method: plain,
          url,
          config: routeConfig,
          // Bodies stream to the upstream as sent, compressed or not.
          decompress: false,
          bodyLimit: jsonBodyLimit(config.limits.jsonBodyBytes, route.bodyLimitBytes),
          handler,
        });
      }
      if (upgrades) {
        app.route({
          method: 'GET',
          url,
          exposeHeadRoute: false,
          config: { ...routeConfig, websocket: true },
          decompress: false,
          handler,
          // A callback: the GETs that are not upgrades (nearly all) pay no promise here.
          preHandler: (request, reply, done) => {
            if (!request.ws) return done();
            websocket.preHandler(request, reply, plan).then(() => done(), done);
          },
          wsHandler: (client, request) => websocket.wsHandler(client, request, plan),
        });
      }
      if (others.length > 0) {
        app.route({
          method: [...others] as HttpMethod[],
          url,
          config: routeConfig,
          handler: () => {
            throw new GatewayError('GW_ROUTE_METHOD_NOT_ALLOWED', `${route.prefix} accepts ${allow}`, { headers: { allow } });
          },
        });
      }
    }
  }

  for (const { route, reason } of table.disabled) {
    for (const url of routePatterns(route.prefix)) {
      app.route({
        method: [...ALL_METHODS],
        url,
        config: { gatewayRoute: route },
        handler: () => {
          throw new GatewayError('GW_SERVICE_DISABLED', `The ${route.service} service is disabled on this gateway (${reason})`);
        },
      });
    }
  }
}
