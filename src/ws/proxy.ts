import type {} from '@fastify/websocket';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { isCredentialProtocol, isWebSocketUpgrade, offeredProtocols } from '../auth/credentials.js';
import { grants } from '../auth/scopes.js';
import type { RouteConfig, WebsocketsConfig } from '../config/index.js';
import { GatewayError } from '../errors.js';
import type { GatewayMetrics } from '../metrics/registry.js';
import { upstreamPath } from '../proxy/exchange.js';
import { continueTrace, forwardingView, upstreamRequestHeaders } from '../proxy/headers.js';
import { identityHeaders, type IdentityAssertions } from '../proxy/identity.js';
import type { RequestPath, RoutePlan } from '../proxy/request-path.js';
import { assertForwardable } from '../proxy/request-target.js';
import type { Resilience } from '../resilience/index.js';
import { inspectRequest } from '../security/detect/index.js';
import type { LiveConnections } from './connections.js';
import { Relay } from './relay.js';
import { SELECTED_PROTOCOL } from './protocols.js';
import { openUpstream, UpstreamOpenFailure } from './upstream.js';

/*
 * WebSocket upgrades on the proxied routes (DESIGN.md step 7: "WebSocket upgrades are
 * proxied on the same routes"). The upgrade request has been through the whole request
 * path up to here (CORS and Origin, limits, client stage, validation, authentication, the
 * per-principal quota); this adds, still before the client's upgrade is answered: the
 * route's WebSocket scope, routing and split (the same RequestPath.target as HTTP), a
 * backpressure slot held for the connection's life, and the upstream socket itself.
 * Only then is the client upgraded and the two sockets relayed (relay.ts).
 */

const UPSTREAM = Symbol('gateway.wsUpstream');
type WithUpstream = FastifyRequest & { [UPSTREAM]?: { readonly ws: WebSocket; readonly onGone: () => void } };

/** Client handshake headers ws sets itself for the upstream handshake. */
const HANDSHAKE_HEADERS = ['sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions', 'sec-websocket-protocol'];

export interface WebSocketProxyDeps {
  readonly path: RequestPath;
  readonly resilience: Resilience;
  readonly identity?: IdentityAssertions;
  readonly metrics: GatewayMetrics;
  readonly limits: WebsocketsConfig;
  readonly connections: LiveConnections;
}

/**
 * The request's URL without its `ticket` parameters (a redeemed ticket never goes upstream);
 * the other parameters are kept byte for byte (no re-encoding).
 */
export function withoutTicket(url: string): string {
  const q = url.indexOf('?');
  if (q === -1 || !url.includes('ticket', q)) return url;
  const kept = url
    .slice(q + 1)
    .split('&')
    .filter((pair) => {
      const name = pair.split('=', 1)[0]!;
      let decoded = name;
      try {
        decoded = decodeURIComponent(name.replace(/\+/g, ' '));
      } catch {
        // not decodable: not "ticket"
      }
      return decoded !== 'ticket';
    });
  return kept.length === 0 ? url.slice(0, q) : `${url.slice(0, q)}?${kept.join('&')}`;
}

/** Text-frame inspection with the route's detectors and mode (per route: `websocket.inspectText`). */
function textInspector(route: RouteConfig): ((text: string) => string | null) | undefined {
  if (route.websocket?.inspectText !== true || route.validation === 'off') return undefined;
  const options = { mode: route.validation, textFields: new Set(route.textFields), freeTextFields: new Set(route.freeTextFields) };
  return (text) => {
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: inspected as one string value
    }
    return inspectRequest({ path: '/', query: '', headers: {}, body }, options)?.rule ?? null;
  };
}

export function webSocketProxy(deps: WebSocketProxyDeps) {
  const { path, resilience, limits, connections, metrics } = deps;

  /** Route-level preHandler: everything that can still refuse with HTTP, then the upstream socket. */
  async function preHandler(request: FastifyRequest, reply: FastifyReply, plan: RoutePlan): Promise<void> {
    if (!request.ws) return;
    const { route } = plan;
    const scope = route.websocket?.scope;
    if (scope !== undefined && request.principal === null) throw new GatewayError('GW_AUTH_MISSING_CREDENTIALS', `A WebSocket on this route needs credentials with the "${scope}" scope`);
    if (scope !== undefined && request.principal !== null && !grants(request.principal.scopes, scope)) {
      throw new GatewayError('GW_AUTH_INSUFFICIENT_SCOPE', `A WebSocket on this route needs the "${scope}" scope`);
    }
    assertForwardable(request);
    const { service, side } = await path.target(request, reply, plan);
    const upstream = path.upstreamFor(service);
    // Held until the client's socket closes: WebSocket connections count against the in-flight bounds.
    const socket = request.raw.socket;
    resilience.limiter.acquire(service.name, socket);

    const principal = request.principal;
    const identity = deps.identity !== undefined ? await deps.identity.headers(principal, upstream.audience) : principal != null ? identityHeaders(principal) : undefined;
    const headers = upstreamRequestHeaders(request.headers, {
      ...forwardingView(request),
      requestId: request.id,
      traceparent: continueTrace(request.headers.traceparent).traceparent,
      prefix: route.rewritePrefix !== undefined && route.prefix !== '/' ? route.prefix : undefined,
      forwardAuthorization: route.forwardAuthorization === true,
      identity,
    });
    for (const h of HANDSHAKE_HEADERS) delete headers[h];
    const protocols = offeredProtocols(request.headers['sec-websocket-protocol']).filter((p) => !isCredentialProtocol(p));
    const url = `${upstream.origin.replace(/^http/, 'ws')}${upstreamPath(withoutTicket(request.url), route, upstream.basePath)}`;

    // The client may leave while the upstream handshake runs: then it is abandoned.
    const abort = new AbortController();
    const onGone = () => abort.abort();
    socket.once('close', onGone);
    const opened = await openUpstream(
      { url, protocols, headers, timeoutMs: Math.min(limits.handshakeTimeoutMs, service.timeoutMs), maxPayload: limits.maxMessageBytes },
      resilience.breakerFor(upstream),
      abort.signal,
    );
    socket.removeListener('close', onGone);
    // Counted like an HTTP exchange: 101, or the upstream's status, timeout, unreachable, circuit_open...
    metrics.serviceRequests.inc({ service: service.name, status: opened instanceof UpstreamOpenFailure ? opened.status : '101', side });
    if (opened instanceof UpstreamOpenFailure) {
      if (opened.status !== 'aborted') request.log.warn({ service: service.name, upstream: upstream.origin, code: opened.error.code, status: opened.status }, 'websocket upstream failed');
      throw opened.error;
    }
    const ws = opened;
    if (socket.destroyed) {
      ws.terminate();
      return;
    }
    // The upstream's choice among the client's subprotocols is what the client is answered with.
    (request.raw as unknown as Record<symbol, string | undefined>)[SELECTED_PROTOCOL] = ws.protocol === '' ? undefined : ws.protocol;
    // Until the relay takes over (wsHandler), a client that leaves takes the upstream with it.
    const pending = { ws, onGone: () => ws.terminate() };
    (request as WithUpstream)[UPSTREAM] = pending;
    socket.once('close', pending.onGone);
  }

  /** The route's wsHandler: the client is upgraded; relay it to the upstream opened above. */
  function wsHandler(client: WebSocket, request: FastifyRequest, plan: RoutePlan): void {
    const pending = (request as WithUpstream)[UPSTREAM];
    if (pending === undefined) {
      client.close(1011, 'no upstream');
      return;
    }
    request.raw.socket.removeListener('close', pending.onGone);
    const upstream = pending.ws;
    const relay = new Relay(client, upstream, {
      route: plan.route.id,
      limits,
      metrics,
      log: request.log,
      ...(textInspector(plan.route) !== undefined ? { inspectText: textInspector(plan.route)! } : {}),
      onEnd: (r) => connections.delete(r),
    });
    connections.add(relay);
    upstream.resume();
    if (upstream.readyState !== upstream.OPEN) relay.close(1011, 'upstream closed');
  }

  return { preHandler, wsHandler, isUpgrade: (request: FastifyRequest) => isWebSocketUpgrade(request.headers) };
}
