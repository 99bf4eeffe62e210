import type { FastifyInstance } from 'fastify';
import type { GatewayConfig, HttpMethod } from '../config/index.js';
import '../server/route-config.js';
import { GatewayError } from '../errors.js';
import type { GatewayMetrics } from '../metrics/registry.js';
import { ALL_METHODS, routePatterns, type RouteTable } from '../routing/route-table.js';
import { jsonBodyLimit, registerProxyBodyParsers } from './body.js';
import { forward } from './forward.js';
import type { UpstreamRegistry } from './upstreams.js';
import { registerAutoRoutes, type AutoRouting } from '../routing/auto-routing.js';
import { Resilience } from '../resilience/index.js';
import type { ResponseCache } from '../cache/index.js';

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

  for (const route of table.active) {
    const service = config.services[route.service]!;
    const methods = route.methods ?? ALL_METHODS;
    const routeConfig = { gatewayRoute: route, authPolicy: route.auth };
    const bodyLimitBytes = route.bodyLimitBytes ?? config.limits.bodyBytes;
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
            ? (request, reply) => {
                const upstream = upstreams.pick(route.service);
                if (upstream === undefined) throw new GatewayError('GW_SERVICE_DISABLED');
                return forward(request, reply, { route, upstream, timeoutMs: service.timeoutMs, bodyLimitBytes, metrics, resilience });
              }
            : (request, reply) =>
                cache.handle(request, reply, route, (respond) => {
                  const upstream = upstreams.pick(route.service);
                  if (upstream === undefined) throw new GatewayError('GW_SERVICE_DISABLED');
                  return forward(request, reply, {
                    route,
                    upstream,
                    timeoutMs: service.timeoutMs,
                    bodyLimitBytes,
                    metrics,
                    resilience,
                    stale: (r) => cache.stale(request, r, route),
                    ...(respond ? { respond } : {}),
                  });
                }),
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
