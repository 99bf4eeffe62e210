import type { RouteAuthPolicy } from '../config/index.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call the route (checked by the auth stage, src/auth/plugin.ts); absent means public. */
    authPolicy?: RouteAuthPolicy;
    /** The route also accepts a ticket from POST /auth/ws-ticket (`?ticket=`), for browsers that cannot send headers (EventSource). */
    acceptsTicket?: boolean;
  }
}

export const PUBLIC: RouteAuthPolicy = Object.freeze({ required: false });
export const READ_ONLY: RouteAuthPolicy = Object.freeze({ required: true, scope: 'read' as const });
