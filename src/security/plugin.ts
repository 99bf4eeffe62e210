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
    const raw = request.raw;
    if (raw.rawHeaders.length / 2 > limits.headerCount) {
      throw new GatewayError('GW_REQUEST_HEADERS_TOO_LARGE', `At most ${limits.headerCount} request headers are accepted`);
    }
    const framing = framingProblem(raw.httpVersion, raw.rawHeaders);
    if (framing !== undefined) throw framing;
    const length = request.headers['content-length'];
    if (length !== undefined) {
      const limit = routeOf(request).config.gatewayRoute?.bodyLimitBytes ?? limits.bodyBytes;
      if (Number(length) > limit) throw new GatewayError('GW_REQUEST_BODY_TOO_LARGE', `The body may be at most ${limit} bytes`);
    }
    done();
  });
}

/**
 * What Node's parser (llhttp) lets through but RFC 9112 does not: a Transfer-Encoding in an
 * HTTP/1.0 request ("MUST treat the message as if the framing is faulty", section 6.1: an
 * HTTP/1.0 hop behind the gateway would frame it by Content-Length or by the connection's
 * end), more than one Host header, or a Host that is not a host and port (section 3.2: 400;
 * Node keeps the first Host, another hop may keep the last, and the gateway passes the host on
 * as X-Forwarded-Host). Answered with Connection: close, as a message of doubtful framing must be.
 */
function framingProblem(httpVersion: string, rawHeaders: readonly string[]): GatewayError | undefined {
  let hosts = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.length === 17 && httpVersion === '1.0' && name.toLowerCase() === 'transfer-encoding') {
      return new GatewayError('GW_SECURITY_REQUEST_SMUGGLING', 'Transfer-Encoding is not allowed in an HTTP/1.0 request', { headers: CLOSE });
    }
    if (name.length === 4 && name.toLowerCase() === 'host') {
      if (++hosts > 1) return new GatewayError('GW_SECURITY_REQUEST_SMUGGLING', 'More than one Host header', { headers: CLOSE });
      if (!HOST_VALUE.test(rawHeaders[i + 1]!)) return new GatewayError('GW_REQUEST_INVALID', 'The Host header is not a host and port', { headers: CLOSE });
    }
  }
  return undefined;
}

const CLOSE = Object.freeze({ connection: 'close' });
/** RFC 3986 host (reg-name with its escapes, IPv4, or an IP literal in brackets), then an optional port. */
const HOST_VALUE = /^(?:\[[0-9A-Fa-f:.]{2,60}(?:%25[0-9A-Za-z._~-]+)?\]|[A-Za-z0-9._~!$&'()*+,;=%-]{0,255})(?::[0-9]{0,5})?$/;

export default fp(securityPlugin, { name: 'gateway-security', fastify: '5.x' });
