import type { FastifyBaseLogger } from 'fastify';
import type { GatewayConfig } from '../config/index.js';
import type { GatewayMetrics } from '../metrics/registry.js';
import { InFlightLimiter } from './backpressure.js';
import { BREAKER_STATE_NAMES, BreakerSet, DEFAULT_BREAKER_CONFIG, type BreakerState, type UpstreamBreaker } from './breaker.js';
import { DEFAULT_RETRY_CONFIG, RetryPolicy } from './retry.js';
import { buildFallbacks, type Fallback } from './fallback.js';

export { InFlightLimiter, OVERLOAD_RETRY_AFTER_SECONDS } from './backpressure.js';
export { DEFAULT_RETRY_CONFIG, maySendAgain, RetryBudget, RetryPolicy, type RetryConfig, type RetryDecision } from './retry.js';
export { buildFallbacks, type Fallback, type ServiceFallbackTarget, type StaticFallback } from './fallback.js';
export {
  BREAKER_CLOSED,
  BREAKER_HALF_OPEN,
  BREAKER_OPEN,
  BreakerSet,
  DEFAULT_BREAKER_CONFIG,
  FailedResponse,
  isBreakerOpen,
  Uncounted,
  UpstreamBreaker,
  type BreakerState,
} from './breaker.js';

export interface ResilienceDeps {
  readonly log?: Pick<FastifyBaseLogger, 'info' | 'warn'>;
  readonly metrics?: Pick<GatewayMetrics, 'circuitBreakerState'>;
  /** Told when a host's breaker opens or leaves open (load balancing skips open hosts: src/proxy/upstreams.ts). */
  readonly upstreams?: { setBreakerOpen(service: string, origin: string, open: boolean): void };
  /** Every state change of a host's breaker (the event bus for /v1/events, the Memory recorder); keep it O(1). */
  readonly onBreakerChange?: (change: { readonly service: string; readonly origin: string; readonly from: (typeof BREAKER_STATE_NAMES)[number]; readonly to: (typeof BREAKER_STATE_NAMES)[number] }) => void;
}

/** What /healthz shows of one service's breakers. */
export interface BreakerReport {
  readonly state: (typeof BREAKER_STATE_NAMES)[number];
  readonly hosts: ReadonlyArray<{ readonly origin: string; readonly state: (typeof BREAKER_STATE_NAMES)[number]; readonly retryAfterSeconds?: number }>;
}

/**
 * The per-gateway resilience state that the request path consults (src/proxy/request-path.ts,
 * step 6): the in-flight bounds, each service's retry policy and fallback, and the circuit
 * breakers of its hosts. Plain state and decisions: it never sends a request itself.
 */
export class Resilience {
  readonly limiter: InFlightLimiter;
  readonly breakers: BreakerSet;
  readonly #retries = new Map<string, RetryPolicy>();
  readonly #fallbacks: Map<string, Fallback>;

  constructor(config: Pick<GatewayConfig, 'proxy' | 'services'>, deps: ResilienceDeps = {}) {
    const services = Object.values(config.services);
    this.limiter = new InFlightLimiter({
      overall: config.proxy.requestQueueSize,
      perService: Object.fromEntries(services.map((s) => [s.name, s.maxInFlight ?? config.proxy.requestQueueSize])),
    });
    for (const s of services) {
      const retry = s.retries ?? DEFAULT_RETRY_CONFIG;
      if (retry.maxRetries > 0) this.#retries.set(s.name, new RetryPolicy(retry));
    }
    const { log, metrics } = deps;
    this.#fallbacks = buildFallbacks(config);
    this.breakers = new BreakerSet(
      (service) => {
        const c = config.services[service]?.breaker ?? DEFAULT_BREAKER_CONFIG;
        return c.enabled ? c : null;
      },
      {
        onStateChange: (breaker: UpstreamBreaker, from: BreakerState, to: BreakerState) => {
          metrics?.circuitBreakerState.set({ service: breaker.service }, this.breakers.serviceState(breaker.service));
          // Load balancing skips a host whose breaker is open while the service has others.
          deps.upstreams?.setBreakerOpen(breaker.service, breaker.origin, to === 2);
          const line = { service: breaker.service, upstream: breaker.origin, from: BREAKER_STATE_NAMES[from], state: BREAKER_STATE_NAMES[to] };
          deps.onBreakerChange?.({ service: breaker.service, origin: breaker.origin, from: BREAKER_STATE_NAMES[from], to: BREAKER_STATE_NAMES[to] });
          if (to === 2) log?.warn({ ...line, retryAfterSeconds: breaker.retryAfterSeconds() }, 'circuit breaker opened');
          else log?.info(line, to === 1 ? 'circuit breaker half-open' : 'circuit breaker closed');
        },
      },
    );
    for (const s of services) if (s.enabled) metrics?.circuitBreakerState.set({ service: s.name }, 0);
  }

  /** The service's retry policy; undefined when it never retries. */
  retryPolicy(service: string): RetryPolicy | undefined {
    return this.#retries.get(service);
  }

  /** The service's fallback; undefined for `fail`. */
  fallbackFor(service: string): Fallback | undefined {
    return this.#fallbacks.get(service);
  }

  /** The breaker of an upstream host (the host's own object is the key); undefined when disabled. */
  breakerFor(upstream: { readonly service: string; readonly origin: string }): UpstreamBreaker | undefined {
    return this.breakers.get(upstream, upstream.service, upstream.origin);
  }

  /** The prober saw a service healthy: its open breakers go half-open now. */
  serviceHealthy(service: string): void {
    for (const b of this.breakers.forService(service)) b.halfOpenEarly();
  }

  /** Close every breaker of a service by hand; returns how many were not closed before. */
  resetBreakers(service: string): number {
    let reset = 0;
    for (const b of this.breakers.forService(service)) if (b.reset()) reset += 1;
    return reset;
  }

  /** Breaker state per service that has had traffic, for /healthz. */
  breakerReport(): Record<string, BreakerReport> {
    const out: Record<string, BreakerReport> = {};
    for (const service of this.breakers.services()) {
      out[service] = {
        state: BREAKER_STATE_NAMES[this.breakers.serviceState(service)],
        hosts: this.breakers.forService(service).map((b) => ({
          origin: b.origin,
          state: b.stateName,
          ...(b.state === 2 ? { retryAfterSeconds: b.retryAfterSeconds() } : {}),
        })),
      };
    }
    return out;
  }

  close(): void {
    this.breakers.close();
  }
}
