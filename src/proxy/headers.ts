import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyRequest } from 'fastify';
import { randomHex } from './random-ids.js';
import { SPLIT_COOKIE } from './split-side.js';

/** RFC 9110 §7.6.1 connection-specific headers, plus ones undici or the gateway set itself. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** Request headers never forwarded as received: undici sets Host and framing, the gateway sets these. */
const REQUEST_REPLACED = new Set([
  'host',
  'expect',
  'x-request-id',
  'traceparent',
  // Forwarding headers: the gateway's own values (its trustProxy view) replace the client's.
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-forwarded-prefix',
  'x-real-ip',
]);

/**
 * Request headers that never reach an upstream (docs/security.md, "Upstream requests"): the gateway's
 * own credentials, method overrides, and the routing and client-address claims that upstream
 * frameworks believe (IIS/Symfony X-Original-URL, RFC 7239 Forwarded, CDN client-IP headers).
 * Names starting with `x-gateway-` are the gateway's identity headers: never the client's.
 */
const REQUEST_REMOVED = new Set([
  'authorization',
  'x-api-key',
  'x-http-method-override',
  'x-method-override',
  'x-http-method',
  'forwarded',
  'x-forwarded-port',
  'x-forwarded-server',
  'x-forwarded-scheme',
  'x-forwarded-ssl',
  'x-forwarded-uri',
  'x-forwarded-path',
  'x-original-url',
  'x-original-uri',
  'x-original-host',
  'x-rewrite-url',
  'x-host',
  'x-url-scheme',
  'front-end-https',
  'x-client-ip',
  'client-ip',
  'true-client-ip',
  'x-cluster-client-ip',
  'cf-connecting-ip',
  'fastly-client-ip',
  'x-originating-ip',
  'x-remote-ip',
  'x-remote-addr',
]);

/** The gateway's cookies, removed from the Cookie header sent upstream. */
const GATEWAY_COOKIES = new Set([SPLIT_COOKIE]);

/** The Connection header almost every HTTP/1.1 client sends, parsed once. */
const KEEP_ALIVE_TOKENS: ReadonlySet<string> = new Set(['keep-alive']);

function connectionTokens(value: string | string[] | undefined): ReadonlySet<string> | undefined {
  if (value === undefined) return undefined;
  if (value === 'keep-alive' || value === 'Keep-Alive') return KEEP_ALIVE_TOKENS;
  const joined = Array.isArray(value) ? value.join(',') : value;
  const tokens = new Set<string>();
  for (const t of joined.split(',')) {
    const token = t.trim().toLowerCase();
    if (token !== '') tokens.add(token);
  }
  return tokens;
}

/** The Cookie header without the gateway's own cookies; undefined when nothing is left. */
function upstreamCookie(value: string): string | undefined {
  if (!value.includes(SPLIT_COOKIE)) return value;
  const kept = value.split(';').filter((c) => {
    const eq = c.indexOf('=');
    return !GATEWAY_COOKIES.has((eq === -1 ? c : c.slice(0, eq)).trim());
  });
  const joined = kept.map((c) => c.trim()).filter((c) => c !== '').join('; ');
  return joined === '' ? undefined : joined;
}

export interface ForwardingContext {
  /** The client as the gateway sees it (trustProxy applied): X-Real-IP. */
  readonly clientIp: string;
  /** X-Forwarded-For: the hops the gateway trusts, client first, ending with the peer that connected. */
  readonly forwardedFor: string;
  readonly protocol: string;
  /** X-Forwarded-Host (absent when the Host is not a valid host[:port]). */
  readonly host: string | undefined;
  readonly requestId: string;
  readonly traceparent: string;
  /** X-Forwarded-Prefix: the public prefix of a route that rewrites it. */
  readonly prefix?: string;
  /** The route forwards `Authorization: Bearer` (route `forwardAuthorization`). */
  readonly forwardAuthorization?: boolean;
  /** The verified identity (x-gateway-* headers, src/proxy/identity.ts). */
  readonly identity?: Readonly<Record<string, string>>;
}

/**
 * Headers for the upstream request: hop-by-hop headers, the gateway's credentials and
 * cookies, method overrides and client-sent forwarding or identity claims removed; the
 * forwarding, tracing and identity headers set by the gateway.
 */
export function upstreamRequestHeaders(incoming: IncomingHttpHeaders, ctx: ForwardingContext): Record<string, string | string[]> {
  const named = connectionTokens(incoming.connection);
  const out: Record<string, string | string[]> = {};
  for (const key in incoming) {
    if (HOP_BY_HOP.has(key) || REQUEST_REPLACED.has(key) || REQUEST_REMOVED.has(key) || key.startsWith('x-gateway-') || named?.has(key)) continue;
    const value = incoming[key];
    if (value === undefined) continue;
    if (key === 'cookie') {
      const cookie = upstreamCookie(Array.isArray(value) ? value.join('; ') : value);
      if (cookie !== undefined) out.cookie = cookie;
      continue;
    }
    out[key] = value;
  }
  const authorization = incoming.authorization;
  if (ctx.forwardAuthorization === true && typeof authorization === 'string' && /^bearer\s/i.test(authorization)) out.authorization = authorization;
  out['x-forwarded-for'] = ctx.forwardedFor;
  out['x-forwarded-proto'] = ctx.protocol;
  if (ctx.host !== undefined) out['x-forwarded-host'] = ctx.host;
  if (ctx.prefix !== undefined) out['x-forwarded-prefix'] = ctx.prefix;
  out['x-real-ip'] = ctx.clientIp;
  out['x-request-id'] = ctx.requestId;
  out['traceparent'] = ctx.traceparent;
  if (ctx.identity !== undefined) Object.assign(out, ctx.identity);
  return out;
}

/** What the gateway tells an upstream about where a request came from (and what the cache keys on). */
export interface ForwardingView {
  readonly clientIp: string;
  readonly forwardedFor: string;
  readonly protocol: 'http' | 'https';
  readonly host: string | undefined;
}

/** host, host:port, [v6]:port: anything else in Host (or a trusted X-Forwarded-Host) is not passed on. */
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9._-]{0,252})?|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/;

/**
 * The gateway's own view of the request's origin, from `server.trustProxy` (Fastify's
 * request.ip/ips/protocol/host): a client's X-Forwarded-* count only through trusted hops.
 */
export function forwardingView(request: Pick<FastifyRequest, 'ip' | 'ips' | 'protocol' | 'host' | 'socket'>): ForwardingView {
  const peer = request.socket.remoteAddress ?? request.ip;
  const ips = request.ips;
  // request.ips: the peer first, then each trusted hop, then the first untrusted address (the client).
  const forwardedFor = ips !== undefined && ips.length > 1 ? [...ips].reverse().join(', ') : peer;
  return { clientIp: request.ip, forwardedFor, ...forwardedOrigin(request) };
}

/** The scheme and host the gateway forwards (X-Forwarded-Proto / -Host, trustProxy applied); a host not in a plain form is dropped. */
export function forwardedOrigin(request: Pick<FastifyRequest, 'protocol' | 'host'>): Pick<ForwardingView, 'protocol' | 'host'> {
  const host = request.host;
  return { protocol: request.protocol === 'https' ? 'https' : 'http', host: host !== '' && HOST.test(host) ? host : undefined };
}

/** Response headers that only tell an attacker what runs behind the gateway. */
const RESPONSE_DROPPED = new Set(['x-powered-by', 'server', 'x-aspnet-version', 'x-aspnetmvc-version']);

/** Headers of the upstream response that may go back to the client. */
export function clientResponseHeaders(upstream: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const named = connectionTokens(upstream.connection);
  const out: Record<string, string | string[]> = {};
  for (const key in upstream) {
    if (HOP_BY_HOP.has(key) || RESPONSE_DROPPED.has(key) || named?.has(key)) continue;
    const value = upstream[key];
    if (value !== undefined) out[key] = value;
  }
  return out;
}

/**
 * An upstream's Location or Content-Location as the client sees it (like nginx's
 * `proxy_redirect default`): a URL on the upstream's own origin, or a path, is mapped back to
 * the gateway's public path by `toGateway` (the reverse of the route's prefix rewrite and the
 * upstream's base path); an absolute one becomes that path alone, so the upstream's address
 * never reaches the client. Other origins and relative references are left alone.
 */
export function publicLocation(value: string, upstreamOrigin: string, toGateway: (path: string) => string | undefined): string {
  if (value.startsWith('/') && !value.startsWith('//')) return toGateway(value) ?? value;
  if (!value.startsWith('//') && !/^https?:\/\//i.test(value)) return value;
  let url: URL;
  try {
    url = new URL(value, upstreamOrigin);
  } catch {
    return value;
  }
  if (url.origin !== upstreamOrigin) return value;
  const path = `${url.pathname}${url.search}${url.hash}`;
  return toGateway(path) ?? path;
}

/** Rewrites Location and Content-Location of an upstream response in place (publicLocation). */
export function rewriteLocations(headers: Record<string, string | string[] | undefined>, upstreamOrigin: string, toGateway: (path: string) => string | undefined): void {
  for (const name of ['location', 'content-location'] as const) {
    const value = headers[name];
    if (typeof value === 'string') headers[name] = publicLocation(value, upstreamOrigin, toGateway);
  }
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

export interface TraceContext {
  readonly traceId: string;
  /** The gateway's own span id, sent upstream as the parent. */
  readonly spanId: string;
  readonly traceparent: string;
}

/**
 * W3C Trace Context: keep the caller's trace id and sampling flag, and make the gateway's
 * hop a span of its own; start a new trace when the header is missing or invalid.
 */
export function continueTrace(header: string | string[] | undefined): TraceContext {
  const spanId = randomHex(8);
  const match = typeof header === 'string' ? TRACEPARENT.exec(header.trim().toLowerCase()) : null;
  if (match && match[1] !== 'ff' && !/^0+$/.test(match[2]!) && !/^0+$/.test(match[3]!)) {
    const traceId = match[2]!;
    return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-${match[4]}` };
  }
  const traceId = randomHex(16);
  return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-01` };
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** A caller's X-Request-Id is kept when it is a sane token; otherwise the gateway makes one. */
export function acceptableRequestId(value: string | string[] | undefined): string | undefined {
  return typeof value === 'string' && REQUEST_ID.test(value) ? value : undefined;
}
