import cors from '@fastify/cors';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { GatewayConfig } from '../config/index.js';
import { GatewayError } from '../errors.js';
import '../routing/route-table.js';
import { securityHeaders } from './security-headers.js';
import { routeOf } from '../request-route.js';

export interface SecurityPluginOptions {
  readonly config: Pick<GatewayConfig, 'cors' | 'limits' | 'environment'>;
}

/**
 * CORS, security headers and request-size limits, for every route. The order matters:
 * CORS first so a browser preflight is answered before authentication (preflights carry
 * no credentials), then headers, then the limits that refuse a request before its body is
 * read.
 */
async function securityPlugin(app: FastifyInstance, opts: SecurityPluginOptions): Promise<void> {
  const { cors: corsConfig, limits, environment } = opts.config;
  const anyOrigin = corsConfig.origins.includes('*');
  const allowed = new Set(corsConfig.origins.map((o) => o.toLowerCase()));

  await app.register(cors, {
    // Exact matches only: no patterns, so "https://app.example.org.evil.com" never passes.
    origin: anyOrigin ? '*' : (origin, cb) => cb(null, origin !== undefined && allowed.has(origin.toLowerCase())),
    credentials: corsConfig.credentials,
    maxAge: corsConfig.maxAgeSeconds,
    exposedHeaders: [...corsConfig.exposedHeaders],
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
    strictPreflight: true,
    hideOptionsRoute: true,
  });

  const headers = securityHeaders({
    // An API answers JSON: nothing may be loaded or framed from its responses.
    contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
    hsts: environment === 'production' ? { maxAge: 31_536_000, includeSubDomains: true } : false,
    crossOriginEmbedderPolicy: false,
  });
  // On the reply, not the raw response: an answer sent whole (most proxied ones, cache hits,
  // errors) then goes out through one writeHead with one header object. A single raw setHeader
  // made Node take every header of the answer through setHeader as well (issue 18's allocation
  // profile: ~3 KB per request). Hijacked answers copy the reply's headers themselves
  // (src/ws/events.ts, mcp/server/http.ts).
  app.addHook('onRequest', (_request, reply, done) => {
    for (let i = 0; i < headers.length; i++) reply.header(headers[i]![0], headers[i]![1]);
    done();
  });

  // Synchronous: a callback hook, no promise per request.
  app.addHook('onRequest', (request, _reply, done) => {
    // rawHeaders is [name, value, name, value, ...].
    if (request.raw.rawHeaders.length / 2 > limits.headerCount) {
      throw new GatewayError('GW_REQUEST_HEADERS_TOO_LARGE', `At most ${limits.headerCount} request headers are accepted`);
    }
    const length = request.headers['content-length'];
    if (length !== undefined) {
      const limit = routeOf(request).config.gatewayRoute?.bodyLimitBytes ?? limits.bodyBytes;
      if (Number(length) > limit) throw new GatewayError('GW_REQUEST_BODY_TOO_LARGE', `The body may be at most ${limit} bytes`);
    }
    done();
  });
}

export default fp(securityPlugin, { name: 'gateway-security', fastify: '5.x' });
