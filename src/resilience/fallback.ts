import type { GatewayConfig } from '../config/index.js';

/*
 * Fallbacks (services.<name>.fallback in the YAML): who answers for a service when its
 * circuit breaker is open, its upstream is unreachable, or it timed out. The request path
 * (src/proxy/request-path.ts, fallbackAnswer) applies them; the answer carries
 * `x-gateway-fallback: <strategy>`.
 *
 *  - `fail` (default, no entry here): the gateway's own error — 503 GW_SERVICE_UNAVAILABLE
 *    with Retry-After for an open breaker, 502/504 otherwise.
 *  - `static`: the configured JSON body and status, in all three cases (nothing upstream
 *    is touched, so it is always safe).
 *  - `service:<other>`: the request goes to the other service's upstream (its own breaker,
 *    timeout and retries; never its fallback: one hop). For an open breaker any request
 *    that has not been sent yet qualifies; after an unreachable host or a timeout the first
 *    service may already have acted on it, so only requests that may be sent again
 *    (idempotent method or Idempotency-Key, no streamed body) fall back; the others get the
 *    `fail` answer. Fallback traffic counts against the first service's in-flight slot.
 *  - `stale-cache`: the request's entry in the response cache (src/cache), kept
 *    `cache.staleSeconds` past its lifetime, with `x-cache: STALE`, Age and Warning; the
 *    `fail` answer when there is none (or the route is not cached).
 *  - 5xx answers and invalid responses are forwarded / answered as today: the upstream
 *    did answer, and retries are the tool for those.
 */

export interface StaticFallback {
  readonly type: 'static';
  readonly label: 'static';
  readonly status: number;
  /** Serialized once at boot. */
  readonly body: string;
}

export interface ServiceFallbackTarget {
  readonly type: 'service';
  /** `service:<name>`, the x-gateway-fallback value. */
  readonly label: string;
  readonly service: string;
  /** The target service's own upstream timeout. */
  readonly timeoutMs: number;
}

/** The last cached good answer of the request (src/cache), served with Warning and Age. */
export interface StaleCacheFallback {
  readonly type: 'stale-cache';
  readonly label: 'stale-cache';
}

export type Fallback = StaticFallback | ServiceFallbackTarget | StaleCacheFallback;

/** The fallback of each service that has one other than `fail`. */
export function buildFallbacks(config: Pick<GatewayConfig, 'services'>): Map<string, Fallback> {
  const out = new Map<string, Fallback>();
  for (const s of Object.values(config.services)) {
    const f = s.fallback;
    if (f === undefined) continue;
    if (f.type === 'static') {
      out.set(s.name, { type: 'static', label: 'static', status: f.status, body: f.body });
    } else if (f.type === 'stale-cache') {
      out.set(s.name, { type: 'stale-cache', label: 'stale-cache' });
    } else {
      const target = config.services[f.service];
      if (target === undefined) continue; // rejected by the config loader
      out.set(s.name, { type: 'service', label: `service:${f.service}`, service: f.service, timeoutMs: target.timeoutMs });
    }
  }
  return out;
}
