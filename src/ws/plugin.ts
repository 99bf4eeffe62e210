import fastifyWebsocket from '@fastify/websocket';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { GatewayConfig } from '../config/index.js';
import { GatewayError } from '../errors.js';
import { selectProtocol } from './protocols.js';
import { routeOf } from '../request-route.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route accepts WebSocket upgrades (src/ws): proxied routes with `websocket` on, /v1/events. */
    websocket?: boolean;
  }
}

export interface WebSocketPluginOptions {
  readonly config: Pick<GatewayConfig, 'cors' | 'websockets'>;
}

/**
 * Whether a browser Origin may open a WebSocket: one of the CORS origins ("*": any), or the
 * gateway's own origin (a page it served). Without Origin (not a browser) it is not checked.
 * Cross-site WebSocket hijacking is the risk: a browser sends the page's cookies with the
 * upgrade, and the Same-Origin Policy does not apply to WebSockets.
 */
export function wsOriginPolicy(config: Pick<GatewayConfig, 'cors'>): (request: FastifyRequest) => boolean {
  const any = config.cors.origins.includes('*');
  const allowed = new Set(config.cors.origins.filter((o) => o !== '*').map((o) => o.toLowerCase()));
  return (request) => {
    const origin = request.headers.origin;
    if (origin === undefined || any) return true;
    const lower = origin.toLowerCase();
    if (allowed.has(lower)) return true;
    try {
      const url = new URL(lower);
      return url.host === request.host.toLowerCase() && (url.protocol === 'https:' || url.protocol === 'http:');
    } catch {
      return false;
    }
  };
}

/**
 * WebSockets on the gateway, on @fastify/websocket: an upgrade is routed through the normal
 * Fastify lifecycle (every onRequest / preHandler stage runs, and any of them may still
 * answer with an HTTP error) before a route's wsHandler upgrades it. This stage refuses, first
 * of all, upgrades on routes that do not take them and browser Origins outside the CORS list.
 */
async function websocketPlugin(app: FastifyInstance, opts: WebSocketPluginOptions): Promise<void> {
  const { config } = opts;
  await app.register(fastifyWebsocket, {
    options: {
      maxPayload: config.websockets.maxMessageBytes,
      // Frames are relayed as they are; compressing each side again costs CPU and memory per connection.
      perMessageDeflate: false,
      handleProtocols: selectProtocol,
    },
    // The gateway ends its live connections itself on shutdown (with 1001, after the drain
    // delay: LiveConnections, closed by the assembly); the plugin's default would close them
    // without a code.
    preClose: (done) => done(),
    errorHandler: (error, socket, request) => {
      // A client that vanished or broke the protocol: its problem, logged without alarm.
      request.log.info({ err: error.message }, 'websocket error');
      socket.terminate();
    },
  });
  const originAllowed = wsOriginPolicy(config);
  // A callback hook: every request passes here, and only upgrades have anything to check.
  app.addHook('onRequest', (request, _reply, done) => {
    if (request.ws && !request.is404) {
      if (routeOf(request).config.websocket !== true) throw new GatewayError('GW_WS_NOT_ENABLED', `${routeOf(request).url ?? 'This route'} does not accept WebSocket upgrades`);
      if (!originAllowed(request)) throw new GatewayError('GW_WS_ORIGIN_FORBIDDEN');
    }
    done();
  });
}

export default fp(websocketPlugin, { name: 'gateway-websockets', fastify: '5.x' });
