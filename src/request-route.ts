import type { FastifyRequest } from 'fastify';

/*
 * The route a request matched, read once per request. Fastify's `request.routeOptions` is a
 * getter that builds a new 12-field object (and asks the router for its constraint
 * strategies) on every read, and the stages read it six to eight times per request (issue
 * 18's allocation profile: ~1 KB per request). A top-level module with no imports of its own,
 * so that every area may use it without tying areas together.
 */

const ROUTE = Symbol('gateway.routeOptions');

type WithRoute = FastifyRequest & { [ROUTE]?: FastifyRequest['routeOptions'] };

/** `request.routeOptions`, built on the first call and kept on the request. */
export function routeOf(request: FastifyRequest): FastifyRequest['routeOptions'] {
  const r = request as WithRoute;
  return (r[ROUTE] ??= request.routeOptions);
}
