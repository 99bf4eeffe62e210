import type { FastifyReply, FastifyRequest } from 'fastify';
import { grants } from '../auth/scopes.js';
import type { RouteConfig, RouteSplitConfig } from '../config/index.js';
import { GatewayError } from '../errors.js';
import type { Side, TrafficSplits } from '../routing/traffic-split.js';
import { randomHex } from './random-ids.js';

/** The cookie that keeps an anonymous client on its side of a split. */
export const SPLIT_COOKIE = 'ugw_split';
const COOKIE_MAX_AGE_SECONDS = 30 * 86_400;

/*
 * One fixed cookie name whose value the gateway itself minted (hex): a regex finds it without
 * a cookie-parsing dependency, and anything else in the header is never decoded or trusted.
 */
const COOKIE_VALUE = new RegExp(`(?:^|;\\s*)${SPLIT_COOKIE}=([0-9a-f]{32})(?:;|$)`);

function cookieId(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  return COOKIE_VALUE.exec(header)?.[1];
}

/** The side `X-Canary` forces, when the caller may force one (write scope); undefined otherwise. */
function forcedSide(request: FastifyRequest): Side | undefined {
  const header = request.headers['x-canary'];
  if (header === undefined) return undefined;
  const principal = request.principal;
  // Only write-scoped callers may choose; for anyone else the header is ignored (docs/architecture.md, "Traffic split").
  if (principal == null || !grants(principal.scopes, 'write')) return undefined;
  if (header === 'always') return 'canary';
  if (header === 'never') return 'stable';
  throw new GatewayError('GW_REQUEST_INVALID', 'X-Canary must be "always" or "never"');
}

/**
 * Which side of `route`'s split serves this request: forced by X-Canary, else sticky by the
 * principal, else by the gateway's cookie (set on the first answer), else by client IP.
 */
export function chooseSide(request: FastifyRequest, reply: FastifyReply, route: RouteConfig, split: RouteSplitConfig, splits: TrafficSplits, secureCookie: boolean): Side {
  const forced = forcedSide(request);
  if (forced !== undefined) return forced;
  const subject = request.principal?.subject;
  if (subject !== undefined) return splits.side(route.id, `p:${subject}`);
  if (split.sticky === 'ip') return splits.side(route.id, `ip:${request.ip}`);
  let id = cookieId(request.headers.cookie);
  if (id === undefined) {
    id = randomHex(16);
    reply.header(
      'set-cookie',
      `${SPLIT_COOKIE}=${id}; Path=/; Max-Age=${COOKIE_MAX_AGE_SECONDS}; HttpOnly; SameSite=Lax${secureCookie ? '; Secure' : ''}`,
    );
  }
  return splits.side(route.id, `c:${id}`);
}

/**
 * The split a request takes once the routing model chose `service` (docs/architecture.md, "Traffic split"):
 * that of the service's one table route with a split; with several, that of the one whose id
 * is the service's name; otherwise none, and `ambiguous` lists the candidates.
 */
export function splitRouteOf(service: string, routes: readonly RouteConfig[]): { readonly route?: RouteConfig; readonly ambiguous: readonly string[] } {
  const split = routes.filter((r) => r.service === service && r.split !== undefined);
  if (split.length <= 1) return split.length === 1 ? { route: split[0]!, ambiguous: [] } : { ambiguous: [] };
  const named = split.find((r) => r.id === service);
  return named !== undefined ? { route: named, ambiguous: [] } : { ambiguous: split.map((r) => r.id) };
}
