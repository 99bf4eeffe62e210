import type { GatewayConfig } from '../config/index.js';
import type { GatewayMetrics } from '../metrics/registry.js';
import type { StoreLogger } from '../state/redis.js';
import type { StateStore } from '../state/store.js';
import { CidrSet } from './client-key.js';
import { RateLimiter } from './limiter.js';
import type { RateLimitStageOptions } from './plugin.js';
import { ThreatDetector, type ThreatDetectorOptions } from './threat.js';

export { clientKey, CidrSet } from './client-key.js';
export { RateLimiter, rateLimitHeaders, type LimitOutcome } from './limiter.js';
export { rateLimitClientStage, rateLimitPrincipalStage, type RateLimitStageOptions } from './plugin.js';
export { ThreatDetector, THREAT_LEVELS, type ActiveBlock, type BlockInfo, type ThreatLevel } from './threat.js';

export interface RateLimiting extends RateLimitStageOptions {
  /** Load the current blocks and listen to the other replicas. */
  start(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The rate-limit stage's parts, built once at boot on the state store. `threats` is the
 * ThreatSink the other stages report to (validation, auth failures, 404s, 429s).
 */
export function createRateLimiting(
  config: Pick<GatewayConfig, 'rateLimit' | 'auth'>,
  store: StateStore,
  deps: { metrics: GatewayMetrics; log: StoreLogger; onClientBlocked?: ThreatDetectorOptions['onBlocked'] },
): RateLimiting {
  const allowed = new CidrSet(config.rateLimit.allowList.cidrs);
  const threats = new ThreatDetector({
    store,
    config: config.rateLimit.threat,
    log: deps.log,
    metrics: deps.metrics,
    ignore: (ip) => allowed.has(ip),
    ...(deps.onClientBlocked !== undefined ? { onBlocked: deps.onClientBlocked } : {}),
  });
  return {
    config: config.rateLimit,
    apiKeys: config.auth.apiKeys,
    limiter: new RateLimiter(store, config.rateLimit, deps.metrics),
    threats,
    metrics: deps.metrics,
    start: () => threats.start(),
    close: () => threats.close(),
  };
}
