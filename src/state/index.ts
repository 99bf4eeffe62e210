import type { GatewayConfig } from '../config/index.js';
import type { GatewayMetrics } from '../metrics/registry.js';
import { MemoryStore } from './memory.js';
import type { StoreLogger } from './redis.js';
import type { StateStore } from './store.js';

export type * from './store.js';
export { MemoryStore } from './memory.js';
export type { StoreLogger } from './redis.js';

export interface StateStoreDeps {
  readonly log: StoreLogger;
  readonly metrics?: Pick<GatewayMetrics, 'stateStoreUp' | 'stateStoreFallbacks'>;
  /** How long start-up waits for Redis before serving with per-replica state. */
  readonly connectWaitMs?: number;
}

/**
 * The store the config asks for: Redis when REDIS_URL is set, memory otherwise. Resolves once
 * Redis answers or `connectWaitMs` has passed (the gateway then serves with per-replica state
 * and switches to Redis when it appears); never rejects because Redis is down.
 */
export async function createStateStore(config: Pick<GatewayConfig, 'redisUrl' | 'state'>, deps: StateStoreDeps): Promise<StateStore> {
  const gauge = deps.metrics?.stateStoreUp;
  if (config.redisUrl === undefined) {
    gauge?.set({ backend: 'memory' }, 1);
    return new MemoryStore();
  }
  // Loaded only when Redis is configured: the Redis client is ~400 modules, ~4 MiB of heap a
  // single-process gateway would otherwise carry (and mark on every full GC) for nothing.
  const { RedisStore } = await import('./redis.js');
  const store = new RedisStore({
    url: config.redisUrl,
    keyPrefix: config.state.keyPrefix,
    commandTimeoutMs: config.state.commandTimeoutMs,
    log: deps.log,
    ...(deps.metrics ? { onFallback: () => deps.metrics!.stateStoreFallbacks.inc() } : {}),
  });
  gauge?.set({ backend: 'redis' }, 0);
  store.onStatusChange((up) => gauge?.set({ backend: 'redis' }, up ? 1 : 0));
  await store.start(deps.connectWaitMs ?? 2000);
  return store;
}
