import type { FastifyInstance } from 'fastify';
import type { GatewayConfig, HttpMethod } from '../config/index.js';
import '../server/route-config.js';
import { GatewayError } from '../errors.js';
import type { GatewayMetrics } from '../metrics/registry.js';
import { ALL_METHODS, routePatterns, type RouteTable } from '../routing/route-table.js';
import { jsonBodyLimit, registerProxyBodyParsers } from './body.js';
import { forward } from './forward.js';
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

  const secureCookie = config.environment === 'production';
  for (const route of table.active) {
    const service = config.services[route.service]!;
    const methods = route.methods ?? ALL_METHODS;
    const routeConfig = { gatewayRoute: route, authPolicy: route.auth };
    const bodyLimitBytes = route.bodyLimitBytes ?? config.limits.bodyBytes;
    const split = route.split !== undefined && opts.splits?.has(route.id) ? route.split : undefined;
    const canaryService = split === undefined ? undefined : config.services[split.canaryService];
    /** The side and upstream of this request: the canary only when its service is enabled here. */
    const target = (request: FastifyRequest, reply: FastifyReply): { side: Side; upstream: Upstream; timeoutMs: number } => {
      if (split !== undefined && canaryService !== undefined) {
        const side = chooseSide(request, reply, route, split, opts.splits!, secureCookie);
        reply.header('x-gateway-upstream', side);
        const canary = side === 'canary' ? upstreams.pick(canaryService.name) : undefined;
        if (canary !== undefined) return { side, upstream: canary, timeoutMs: canaryService.timeoutMs };
        if (side === 'canary') reply.header('x-gateway-upstream', 'stable');
      }
      const upstream = upstreams.pick(route.service);
      if (upstream === undefined) throw new GatewayError('GW_SERVICE_DISABLED');
      return { side: 'stable', upstream, timeoutMs: service.timeoutMs };
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
            ? (request, reply) => forward(request, reply, { route, ...target(request, reply), bodyLimitBytes, metrics, resilience })
            : (request, reply) => {
                const chosen = target(request, reply);
                // The canary's answers are cached apart from the stable side's.
                const variant = chosen.side === 'canary' ? 'canary' : undefined;
                return cache.handle(
                  request,
                  reply,
                  route,
                  (respond) =>
                    forward(request, reply, {
                      route,
                      ...chosen,
                      bodyLimitBytes,
                      metrics,
                      resilience,
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
    registerAutoRoutes(app, { config, manager: opts.autoRouting.manager, routes: opts.autoRouting.routes, upstreams, metrics, resilience });
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
