import type { GatewayConfig, HttpMethod, RouteConfig } from '../config/index.js';
import { HTTP_METHODS } from '../config/index.js';
import { canonicalTarget, prefixMatches } from './canonical-path.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route-table entry a proxied route serves (read by the stages that apply its settings). */
    gatewayRoute?: RouteConfig;
  }
}

export interface DisabledRoute {
  readonly route: RouteConfig;
  /** The setting that switched the route's service off, e.g. "ENABLE_P2P_FOG=false". */
  readonly reason: string;
}

export interface RouteTable {
  /** Routes whose service is enabled, longest prefix first. */
  readonly active: readonly RouteConfig[];
  readonly disabled: readonly DisabledRoute[];
}

const byPrefixLength = (a: RouteConfig, b: RouteConfig) => b.prefix.length - a.prefix.length;

export function buildRouteTable(config: Pick<GatewayConfig, 'routes' | 'services'>): RouteTable {
  const active: RouteConfig[] = [];
  const disabled: DisabledRoute[] = [];
  for (const route of config.routes) {
    const service = config.services[route.service];
    if (service?.enabled) active.push(route);
    else disabled.push({ route, reason: service?.disabledBy ?? `service "${route.service}" is disabled` });
  }
  return { active: active.sort(byPrefixLength), disabled: disabled.sort((a, b) => byPrefixLength(a.route, b.route)) };
}

export { prefixMatches };

export type RouteMatch =
  | { kind: 'route'; route: RouteConfig }
  | { kind: 'method-not-allowed'; route: RouteConfig; allowed: readonly HttpMethod[] }
  | { kind: 'disabled'; route: RouteConfig; reason: string }
  | { kind: 'none' };

/**
 * Which route serves a method and path (the query string is ignored): the longest matching
 * prefix of the canonical path (src/routing/canonical-path.ts) wins. The HTTP server uses
 * Fastify's router on the same canonical path; this function is for the admin and MCP
 * surfaces that explain routing without sending a request.
 */
export function matchRoute(table: RouteTable, method: string, rawPath: string): RouteMatch {
  const target = canonicalTarget(rawPath);
  const path = target.problem === undefined ? target.path : (rawPath.split('?', 1)[0] ?? rawPath);
  const upper = method.toUpperCase();
  const route = table.active.find((r) => prefixMatches(r.prefix, path));
  const off = table.disabled.find((d) => prefixMatches(d.route.prefix, path));
  if (off && (!route || off.route.prefix.length > route.prefix.length)) return { kind: 'disabled', route: off.route, reason: off.reason };
  if (!route) return { kind: 'none' };
  if (route.methods && !route.methods.includes(upper as HttpMethod)) return { kind: 'method-not-allowed', route, allowed: route.methods };
  return { kind: 'route', route };
}

/** The Fastify URL patterns that cover a prefix and everything below it. */
export function routePatterns(prefix: string): string[] {
  return prefix === '/' ? ['/*'] : [prefix, `${prefix}/*`];
}

export const ALL_METHODS: readonly HttpMethod[] = HTTP_METHODS;
