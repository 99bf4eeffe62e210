import type { FastifyInstance } from 'fastify';
import type { GatewayConfig, HttpMethod } from '../config/index.js';
import '../auth/policy.js';
import '../routing/route-table.js';
import { GatewayError } from '../errors.js';
import type { GatewayMetrics } from '../metrics/registry.js';
import { ALL_METHODS, routePatterns, type RouteTable } from '../routing/route-table.js';
import { jsonBodyLimit, registerProxyBodyParsers } from './body.js';
import { forward } from './forward.js';
import { IdentityAssertions } from './identity.js';
import type { Upstream, UpstreamRegistry } from './upstreams.js';
import { registerAutoRoutes, type AutoRouting } from '../routing/auto-routing.js';
import { Resilience } from '../resilience/index.js';
import type { ResponseCache } from '../cache/index.js';
import type { Side, TrafficSplits } from '../routing/traffic-split.js';
import { chooseSide } from './split-side.js';
import type { FastifyReply, FastifyRequest } from 'fastify';

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
}


/**
 * The proxied routes. Encapsulated (no fastify-plugin) on purpose: it replaces the body
 * parsers with a pass-through so request bodies stream to the upstream untouched, and that
 * must not leak to the gateway's own endpoints.
 */
export async function proxyPlugin(app: FastifyInstance, opts: ProxyPluginOptions): Promise<void> {
  const { config, table, upstreams, metrics, cache } = opts;
  registerProxyBodyParsers(app);
  const resilience = opts.resilience ?? new Resilience(config, { log: app.log, metrics, upstreams });
  if (opts.resilience === undefined) app.addHook('onClose', async () => resilience.close());

  // The verified identity passed upstream instead of the client's credentials (src/proxy/identity.ts).
  const identity = new IdentityAssertions({ secretKey: config.secrets.secretKey, issuer: config.auth.tokens.issuer });
  const secureCookie = config.environment === 'production';
  for (const route of table.active) {
    const service = config.services[route.service]!;
    const methods = route.methods ?? ALL_METHODS;
    const routeConfig = { gatewayRoute: route, authPolicy: route.auth };
    const bodyLimitBytes = route.bodyLimitBytes ?? config.limits.bodyBytes;
    // A split whose canary service is disabled here sends everything to stable.
    const canaryService = route.split !== undefined && opts.splits?.has(route.id) ? config.services[route.split.canaryService] : undefined;
    const split = canaryService?.enabled === true ? route.split : undefined;
    /** Which side serves this request (said in x-gateway-upstream); stable for routes without a split. */
    const sideOf = (request: FastifyRequest, reply: FastifyReply): Side => {
      if (split === undefined) return 'stable';
      const side = chooseSide(request, reply, route, split, opts.splits!, secureCookie);
      reply.header('x-gateway-upstream', side);
      return side;
    };
    /** The upstream host of a side, picked only when a request goes out (not for cache hits). */
    const upstreamOf = (side: Side): { side: Side; upstream: Upstream; timeoutMs: number } => {
      const target = side === 'canary' ? canaryService! : service;
      const upstream = upstreams.pick(target.name);
      if (upstream === undefined) throw new GatewayError('GW_SERVICE_DISABLED');
      return { side, upstream, timeoutMs: target.timeoutMs };
    };
    for (const url of routePatterns(route.prefix)) {
      app.route({
        method: [...methods],
        url,
        config: routeConfig,
        // Bodies stream to the upstream as sent, compressed or not.
        decompress: false,
        bodyLimit: jsonBodyLimit(config.limits.jsonBodyBytes, route.bodyLimitBytes),
        handler:
          cache === undefined || !cache.handles(route) || !(methods.includes('GET') || methods.includes('HEAD'))
            ? (request, reply) => forward(request, reply, { route, ...upstreamOf(sideOf(request, reply)), bodyLimitBytes, metrics, resilience, identity })
            : (request, reply) => {
                const side = sideOf(request, reply);
                // The canary's answers are cached apart from the stable side's.
                const variant = side === 'canary' ? 'canary' : undefined;
                return cache.handle(
                  request,
                  reply,
                  route,
                  (respond) =>
                    forward(request, reply, {
                      route,
                      ...upstreamOf(side),
                      bodyLimitBytes,
                      metrics,
                      resilience,
                      identity,
                      stale: (r) => cache.stale(request, r, route, variant),
                      ...(respond ? { respond } : {}),
                    }),
                  variant,
                );
              },
      });
      const others = ALL_METHODS.filter((m) => !methods.includes(m));
      if (others.length > 0) {
        const allow = methods.join(', ');
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

  if (opts.autoRouting) {
    registerAutoRoutes(app, { config, manager: opts.autoRouting.manager, routes: opts.autoRouting.routes, upstreams, metrics, resilience, identity });
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
