import type { Principal } from '../auth/principal.js';
import type { RouteAuthPolicy, RouteConfig } from '../config/index.js';

/*
 * What the gateway's stages read from a Fastify route's `config` and add to a request.
 * One declaration for the whole server, so every stage sees the same shape.
 */
declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call the route; absent means public. */
    authPolicy?: RouteAuthPolicy;
    /** The route-table entry a proxied route serves. */
    gatewayRoute?: RouteConfig;
  }
  interface FastifyRequest {
    /** Set by the auth stage for routes that need credentials (null otherwise). */
    principal: Principal | null;
  }
}

export {};
