import type { FastifyReply, FastifyRequest } from 'fastify';
import type { GatewayConfig, RouteConfig, RouteSplitConfig, ServiceConfig } from '../config/index.js';
import type { CacheLookup, ResponseCache } from '../cache/index.js';
import { GatewayError } from '../errors.js';
import type { Resilience } from '../resilience/index.js';
import type { Decide } from '../routing/auto-route.js';
import type { SideObserver } from '../migration/side-stats.js';
import type { Side, TrafficSplits } from '../routing/traffic-split.js';
import { upstreamBody } from './body.js';
import { exchange, UpstreamFailure, type ExchangeDeps, type Outgoing } from './exchange.js';
import { clientResponseHeaders, forwardedOrigin } from './headers.js';
import { assertForwardable } from './request-target.js';
import { chooseSide } from './split-side.js';
import type { UpstreamResponse } from './upstream-call.js';
import type { UpstreamRegistry } from './upstreams.js';

/*
 * The request path of every proxied route, table routes and ML-routed ones alike (DESIGN.md,
 * "Request path", steps 5 to 8), in one function that reads top to bottom: the routing
 * decision, the split side, the cache lookup, backpressure, one upstream exchange (breaker,
 * retries, deadline: exchange.ts), the fallback when it brought no answer, and the answer,
 * stored in the cache on its way or streamed through. Each step is a plain call; nothing is
 * handed a callback, and a fallback to another service calls exchange() again, not the path.
 */

/** A traffic split as the request path applies it (src/routing/traffic-split.ts holds its weights). */
export interface LiveSplit {
  /** The split route: its id keys the live weights and each client's side. */
  readonly route: RouteConfig;
  readonly config: RouteSplitConfig;
  readonly canary: ServiceConfig;
}

/** Where a request goes once its service is known. */
export interface Destination {
  readonly service: ServiceConfig;
  /** The split this service's requests take (absent: all stable). */
  readonly split?: LiveSplit;
}

/** One proxied route, worked out at boot. */
export interface RoutePlan {
  readonly route: RouteConfig;
  readonly bodyLimitBytes: number;
  /** GET/HEAD requests go through the response cache. */
  readonly cached: boolean;
  /** A table route's service and split. */
  readonly destination?: Destination;
  /** Instead, for /v1/query and /v1/upload: the routing model's choice (src/routing/auto-route.ts). */
  readonly decide?: Decide;
}

export interface RequestPathDeps extends ExchangeDeps {
  readonly config: Pick<GatewayConfig, 'services'>;
  readonly upstreams: UpstreamRegistry;
  readonly resilience: Resilience;
  readonly cache?: ResponseCache;
  readonly splits?: TrafficSplits;
  /** Where the routing model's choice goes: every enabled service, with its split. */
  readonly destinations: ReadonlyMap<string, Destination>;
  /** The split cookie gets `Secure` (production). */
  readonly secureCookie: boolean;
  /** Per-side outcome and latency of split routes, for the migration gates (src/migration/side-stats.ts). */
  readonly sides?: SideObserver;
}

/** Where a request goes: its service, the side of its split, and that split. */
export interface Target {
  readonly service: ServiceConfig;
  readonly side: Side;
  readonly split: LiveSplit | undefined;
}

const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

export class RequestPath {
  readonly #deps: RequestPathDeps;

  constructor(deps: RequestPathDeps) {
    this.#deps = deps;
  }

  /** The handler of every proxied route. */
  async handle(request: FastifyRequest, reply: FastifyReply, plan: RoutePlan): Promise<FastifyReply> {
    const { cache, resilience } = this.#deps;
    // The canonical request target (request-target.ts): one the gateway refused never goes out.
    assertForwardable(request);

    // 5. Routing and the traffic split (target()).
    const targeted = this.target(request, reply, plan);
    const { service, side, split } = targeted instanceof Promise ? await targeted : targeted;

    // 6. Response cache: a fresh entry answers without the upstream; on a miss the answer may be stored below.
    //    The canary's answers are kept apart from the stable side's.
    const looked = plan.cached ? cache!.lookup(request, plan.route, cacheOrigin(request), side === 'canary' ? side : undefined) : undefined;
    const lookup = looked instanceof Promise ? await looked : looked;
    if (lookup?.entry !== undefined) return cache!.answer(request, reply, lookup);
    try {
      //  Backpressure: past the service's or the gateway's in-flight bound, 503 before any upstream work.
      resilience.limiter.acquire(service.name, reply.raw);
      //  One upstream exchange: breaker, retries and one deadline around one request (exchange.ts),
      //  to the host load balancing picks; the body is taken once, for it and any fallback.
      const upstream = this.#upstream(service);
      const outgoing: Outgoing = { route: plan.route, body: upstreamBody(request, plan.bodyLimitBytes), side, upstreamMs: 0 };
      const started = performance.now();
      const splitVersion = split === undefined ? undefined : this.#deps.splits!.state(split.route.id)?.version;
      const response = await exchange(request, reply, outgoing, upstream, service.timeoutMs, this.#deps);
      //  The side's figures (migration gates): a failure or a 5xx is an error of the side that served it.
      if (splitVersion !== undefined) {
        const failed = response instanceof UpstreamFailure || response.statusCode >= 500;
        this.#deps.sides?.observe(split!.route.id, splitVersion, side, failed, performance.now() - started);
      }
      //  Fallback: who answers when the service could not (stale cache, a static answer, another service).
      if (response instanceof UpstreamFailure) return await this.#fallbackAnswer(request, reply, plan, service, outgoing, response);

      // 7-8. The answer: through the cache (stored when it may be), or sent on: read whole when small, else streamed.
      this.#observeOverhead(reply, service.name, outgoing);
      if (lookup !== undefined) {
        return await cache!.storeAndSend(request, reply, lookup, response.statusCode, clientResponseHeaders(response.headers), response.body);
      }
      return send(reply, response);
    } finally {
      if (lookup !== undefined) cache!.release(lookup);
    }
  }

  /**
   * Step 5, shared with WebSocket upgrades (src/ws): the route's own service or the one the
   * routing model picks, then the side of its traffic split (x-gateway-upstream; stable without one).
   */
  target(request: FastifyRequest, reply: FastifyReply, plan: RoutePlan): Target | Promise<Target> {
    // Synchronous for a table route (no promise, no microtask hop); the routing model's choice is awaited.
    if (plan.decide === undefined) return this.#targetOf(request, reply, plan.destination!);
    return plan.decide(request, reply).then((name) => this.#targetOf(request, reply, this.#destination(name)));
  }

  #targetOf(request: FastifyRequest, reply: FastifyReply, destination: Destination): Target {
    const side = destination.split === undefined ? 'stable' : this.#side(request, reply, destination.split);
    return { service: side === 'canary' ? destination.split!.canary : destination.service, side, split: destination.split };
  }

  /** The host of `service` that takes the next request or connection (load balancing: src/proxy/upstreams.ts). */
  upstreamFor(service: ServiceConfig) {
    return this.#upstream(service);
  }

  /**
   * What answers instead of a failed exchange (src/resilience/fallback.ts): the service's
   * fallback for an open breaker, an unreachable host or a timeout, else the failure's error.
   * `service:<other>` is one more exchange with the other service (its breaker, retries and
   * timeout, never its fallback), when the request may go out again.
   */
  async #fallbackAnswer(request: FastifyRequest, reply: FastifyReply, plan: RoutePlan, service: ServiceConfig, outgoing: Outgoing, failure: UpstreamFailure): Promise<FastifyReply> {
    const fallback = failure.fallsBack ? this.#deps.resilience.fallbackFor(service.name) : undefined;
    if (fallback === undefined) throw failure.error;
    switch (fallback.type) {
      case 'stale-cache': {
        const variant = outgoing.side === 'canary' ? outgoing.side : undefined;
        const served = plan.cached ? await this.#deps.cache!.stale(request, reply, plan.route, cacheOrigin(request), variant) : undefined;
        if (served === undefined) throw failure.error;
        return served;
      }
      case 'static':
        return reply.code(fallback.status).header('content-type', JSON_CONTENT_TYPE).header('x-gateway-fallback', 'static').send(fallback.body);
      case 'service': {
        const upstream = failure.mayResend ? this.#deps.upstreams.pick(fallback.service) : undefined;
        if (upstream === undefined) throw failure.error;
        reply.header('x-gateway-fallback', fallback.label);
        const response = await exchange(request, reply, outgoing, upstream, fallback.timeoutMs, this.#deps);
        if (response instanceof UpstreamFailure) throw labelled(response.error, fallback.label);
        this.#observeOverhead(reply, fallback.service, outgoing);
        return send(reply, response);
      }
    }
  }

  /**
   * gateway_proxy_overhead_seconds: the request's time so far (from Fastify's onRequest) less
   * the time spent waiting on upstreams, as the answer starts to go out: what the gateway
   * itself took (its stages, its event loop's queue and GC), apart from the upstream's share.
   */
  #observeOverhead(reply: FastifyReply, service: string, outgoing: Outgoing): void {
    this.#deps.metrics.proxyOverhead.observe({ service }, Math.max(0, reply.elapsedTime - outgoing.upstreamMs) / 1000);
  }

  /** The destination of the service the routing model chose. */
  #destination(name: string): Destination {
    const destination = this.#deps.destinations.get(name);
    if (destination !== undefined) return destination;
    const disabledBy = this.#deps.config.services[name]?.disabledBy;
    throw new GatewayError('GW_SERVICE_DISABLED', `The ${name} service is disabled on this gateway${disabledBy ? ` (${disabledBy})` : ''}`);
  }

  #side(request: FastifyRequest, reply: FastifyReply, split: LiveSplit): Side {
    const side = chooseSide(request, reply, split.route, split.config, this.#deps.splits!, this.#deps.secureCookie);
    reply.header('x-gateway-upstream', side);
    return side;
  }

  /** The host of `service` that takes this request (load balancing: src/proxy/upstreams.ts). */
  #upstream(service: ServiceConfig) {
    const upstream = this.#deps.upstreams.pick(service.name);
    if (upstream === undefined) throw new GatewayError('GW_SERVICE_DISABLED', `The ${service.name} service is disabled on this gateway`);
    return upstream;
  }
}

/** The upstream's answer, sent on: whole when it was read whole (upstream-call.ts), else streamed as it comes. */
function send(reply: FastifyReply, response: UpstreamResponse): FastifyReply {
  return reply.code(response.statusCode).headers(clientResponseHeaders(response.headers)).send(response.body);
}

/**
 * The origin part of a cache key: scheme and host as the gateway forwards them (X-Forwarded-
 * Proto and -Host, trustProxy applied), so an answer that reflects them is never shared across them.
 */
function cacheOrigin(request: FastifyRequest): string {
  const { protocol, host } = forwardedOrigin(request);
  return `${protocol}://${host ?? ''}`;
}

/** The error as answered after a fallback was tried: it says which fallback answered. */
function labelled(err: GatewayError, label: string): GatewayError {
  return new GatewayError(err.code, err.message, { cause: err.cause, headers: { ...err.headers, 'x-gateway-fallback': label } });
}
