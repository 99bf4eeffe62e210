import { EventEmitter } from 'node:events';
import CircuitBreaker from 'opossum';
import type { ServiceBreakerConfig } from '../config/index.js';
import { serviceBreakerSchema } from '../config/schema.js';
import { GatewayError } from '../errors.js';

/*
 * Circuit breakers (opossum), one per upstream host of a service. exchange() sends each
 * attempt through `fire(send, pool, options)`: `send` throws FailedResponse for a 5xx (the
 * response is still forwarded, but it counts as a failure) and Uncounted for what is not the
 * upstream's fault (the client went away, the body was too large). 4xx are successes.
 *
 * Many breakers, no leaks: opossum's own timers are avoided or shared. Snapshots and latency
 * percentiles are off (no interval, no arrays), the rolling-window buckets rotate from one
 * shared, unref'd interval per window length, the call timeout is off (exchange() has its
 * own deadline), and the only per-breaker timer is opossum's unref'd reset timer while open.
 */

export const DEFAULT_BREAKER_CONFIG: ServiceBreakerConfig = Object.freeze(serviceBreakerSchema.parse({}));

/** gateway_circuit_breaker_state values. */
export const BREAKER_CLOSED = 0;
export const BREAKER_HALF_OPEN = 1;
export const BREAKER_OPEN = 2;
export type BreakerState = typeof BREAKER_CLOSED | typeof BREAKER_HALF_OPEN | typeof BREAKER_OPEN;
const STATE_NAMES = ['closed', 'half-open', 'open'] as const;

/** A 5xx answer: a failure for the breaker, still forwarded to the client. */
export class FailedResponse<R = unknown> {
  constructor(readonly response: R) {}
}

/** An error that is not the upstream's fault: rethrown, not counted. */
export class Uncounted {
  constructor(readonly error: unknown) {}
}

const isUncounted = (err: unknown): boolean => err instanceof Uncounted;

type Send = (a: unknown, b: unknown) => Promise<unknown>;
function invoke(send: Send, a: unknown, b: unknown): Promise<unknown> {
  return send(a, b);
}

/** opossum's rejection while open (or half-open with its trial call in flight). */
export function isBreakerOpen(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 'EOPENBREAKER';
}

export interface BreakerEvents {
  /** A breaker changed state (called once per change). */
  onStateChange(breaker: UpstreamBreaker, from: BreakerState, to: BreakerState): void;
}

/** One shared bucket-rotation clock per window length. */
class RotationClocks {
  readonly #clocks = new Map<number, { emitter: EventEmitter; timer: NodeJS.Timeout }>();

  get(bucketMs: number): EventEmitter {
    let clock = this.#clocks.get(bucketMs);
    if (clock === undefined) {
      const emitter = new EventEmitter();
      emitter.setMaxListeners(0); // one listener per breaker
      const timer = setInterval(() => emitter.emit('rotate'), bucketMs);
      timer.unref();
      clock = { emitter, timer };
      this.#clocks.set(bucketMs, clock);
    }
    return clock.emitter;
  }

  close(): void {
    for (const { emitter, timer } of this.#clocks.values()) {
      clearInterval(timer);
      emitter.removeAllListeners();
    }
    this.#clocks.clear();
  }

  get size(): number {
    return this.#clocks.size;
  }
}

/** The breaker of one upstream host. */
export class UpstreamBreaker {
  readonly service: string;
  readonly origin: string;
  readonly config: ServiceBreakerConfig;
  #breaker!: CircuitBreaker<[Send, unknown, unknown], unknown>;
  #state: BreakerState = BREAKER_CLOSED;
  #openedAt = 0;
  readonly #rotation: EventEmitter;
  readonly #events: BreakerEvents;
  readonly #unavailableMessage: string;

  constructor(service: string, origin: string, config: ServiceBreakerConfig, rotation: EventEmitter, events: BreakerEvents) {
    this.service = service;
    this.origin = origin;
    this.config = config;
    this.#rotation = rotation;
    this.#events = events;
    this.#unavailableMessage = `The ${service} service is failing; its circuit breaker is open`;
    this.#create(false);
  }

  #create(halfOpen: boolean): void {
    const options: CircuitBreaker.Options & { state?: Partial<CircuitBreaker.State> } = {
      timeout: false,
      errorThresholdPercentage: this.config.errorThresholdPercentage,
      volumeThreshold: this.config.volumeThreshold,
      rollingCountTimeout: this.config.rollingCountTimeout,
      rollingCountBuckets: 10,
      resetTimeout: this.config.resetTimeout,
      rollingPercentilesEnabled: false,
      enableSnapshots: false,
      rotateBucketController: this.#rotation,
      errorFilter: isUncounted,
      ...(halfOpen ? { state: { enabled: true, closed: false, open: false, halfOpen: true, warmUp: false, shutdown: false } } : {}),
    };
    const breaker = new CircuitBreaker(invoke, options);
    breaker.on('open', () => {
      this.#openedAt = Date.now();
      this.#set(BREAKER_OPEN);
    });
    breaker.on('halfOpen', () => this.#set(BREAKER_HALF_OPEN));
    breaker.on('close', () => this.#set(BREAKER_CLOSED));
    this.#breaker = breaker;
    if (halfOpen) this.#set(BREAKER_HALF_OPEN);
  }

  #set(state: BreakerState): void {
    const from = this.#state;
    if (from === state) return;
    this.#state = state;
    this.#events.onStateChange(this, from, state);
  }

  get state(): BreakerState {
    return this.#state;
  }

  get stateName(): (typeof STATE_NAMES)[number] {
    return STATE_NAMES[this.#state];
  }

  /** Run `send(a, b)` through the breaker (rejects with EOPENBREAKER at once while open). */
  fire<A, B, R>(send: (a: A, b: B) => Promise<R>, a: A, b: B): Promise<R> {
    return this.#breaker.fire(send as Send, a, b) as Promise<R>;
  }

  /** Seconds until the breaker lets a trial call through (at least 1). */
  retryAfterSeconds(now = Date.now()): number {
    if (this.#state !== BREAKER_OPEN) return 1;
    return Math.max(1, Math.ceil((this.#openedAt + this.config.resetTimeout - now) / 1000));
  }

  /** The 503 an open breaker answers with (fallback `fail`). */
  unavailable(): GatewayError {
    return new GatewayError('GW_SERVICE_UNAVAILABLE', this.#unavailableMessage, {
      headers: { 'retry-after': String(this.retryAfterSeconds()), 'x-gateway-fallback': 'fail' },
    });
  }

  /**
   * The health prober saw the host healthy: an open breaker goes half-open now instead of
   * waiting out its reset timeout (opossum has no public half-open, so the breaker is
   * replaced by one that starts half-open). Returns whether it did.
   */
  halfOpenEarly(): boolean {
    if (this.#state !== BREAKER_OPEN) return false;
    const old = this.#breaker;
    old.removeAllListeners();
    old.shutdown();
    this.#create(true);
    return true;
  }

  /** An operator closes the breaker by hand (admin API / MCP): traffic flows again now. */
  reset(): boolean {
    if (this.#state === BREAKER_CLOSED) return false;
    this.#breaker.close();
    return true;
  }

  shutdown(): void {
    this.#breaker.shutdown();
  }

  /** @internal for leak tests */
  get listenerCount(): number {
    return this.#breaker.eventNames().reduce((n, e) => n + this.#breaker.listenerCount(e), 0);
  }
}

/** Every breaker of a gateway, created lazily per upstream host. */
export class BreakerSet {
  readonly #byKey = new Map<object, UpstreamBreaker>();
  readonly #byService = new Map<string, UpstreamBreaker[]>();
  readonly #clocks = new RotationClocks();
  readonly #events: BreakerEvents;
  readonly #configOf: (service: string) => ServiceBreakerConfig | null;

  /** `configOf` returns null for a service whose breaker is disabled. */
  constructor(configOf: (service: string) => ServiceBreakerConfig | null, events: BreakerEvents) {
    this.#configOf = configOf;
    this.#events = events;
  }

  /** The breaker of an upstream host (`key` is its stable Upstream object); undefined when disabled. */
  get(key: object, service: string, origin: string): UpstreamBreaker | undefined {
    const found = this.#byKey.get(key);
    if (found !== undefined) return found;
    const config = this.#configOf(service);
    if (config === null) return undefined;
    const breaker = new UpstreamBreaker(service, origin, config, this.#clocks.get(Math.floor(config.rollingCountTimeout / 10)), this.#events);
    this.#byKey.set(key, breaker);
    const list = this.#byService.get(service);
    if (list === undefined) this.#byService.set(service, [breaker]);
    else list.push(breaker);
    return breaker;
  }

  forService(service: string): readonly UpstreamBreaker[] {
    return this.#byService.get(service) ?? [];
  }

  /** The service's state: the worst of its hosts' breakers (closed when it has none yet). */
  serviceState(service: string): BreakerState {
    let worst: BreakerState = BREAKER_CLOSED;
    for (const b of this.forService(service)) if (b.state > worst) worst = b.state;
    return worst;
  }

  services(): IterableIterator<string> {
    return this.#byService.keys();
  }

  get rotationClocks(): number {
    return this.#clocks.size;
  }

  close(): void {
    for (const list of this.#byService.values()) for (const b of list) b.shutdown();
    this.#clocks.close();
  }
}

export { STATE_NAMES as BREAKER_STATE_NAMES };
