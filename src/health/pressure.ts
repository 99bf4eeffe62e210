import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { FastifyBaseLogger } from 'fastify';
import type { PressureConfig } from '../config/index.js';

/**
 * Event-loop delay and heap watched the way @fastify/under-pressure does (a
 * monitorEventLoopDelay histogram read and reset every sample interval), but reported only
 * through /readyz: under-pressure's hook would answer 503 to every request, and shedding
 * traffic that already reached this replica is the backpressure limiter's job. Readiness
 * drops after `sustainedSamples` consecutive samples over a threshold and comes back with
 * the first sample under them.
 */
export class PressureMonitor {
  readonly #config: PressureConfig;
  readonly #log: Pick<FastifyBaseLogger, 'info' | 'warn'> | undefined;
  readonly #histogram: ReturnType<typeof monitorEventLoopDelay>;
  readonly #heapUsed: () => number;
  #timer: NodeJS.Timeout | undefined;
  #overCount = 0;
  #underPressure = false;
  #lastDelayMs = 0;
  #lastHeapUsed = 0;

  constructor(config: PressureConfig, deps: { log?: Pick<FastifyBaseLogger, 'info' | 'warn'>; heapUsed?: () => number } = {}) {
    this.#config = config;
    this.#log = deps.log;
    this.#heapUsed = deps.heapUsed ?? (() => process.memoryUsage().heapUsed);
    this.#histogram = monitorEventLoopDelay({ resolution: 10 });
  }

  start(): void {
    if (!this.#config.enabled || this.#timer !== undefined) return;
    this.#histogram.enable();
    this.#timer = setInterval(() => this.#sample(), this.#config.sampleIntervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#histogram.disable();
  }

  /** True while pressure has been sustained: /readyz answers 503. */
  get underPressure(): boolean {
    return this.#underPressure;
  }

  /** The last sample, for /readyz's body. */
  get last(): { eventLoopDelayMs: number; heapUsedBytes: number } {
    return { eventLoopDelayMs: this.#lastDelayMs, heapUsedBytes: this.#lastHeapUsed };
  }

  #sample(): void {
    // The histogram's resolution is itself a delay; under-pressure subtracts it the same way.
    const mean = this.#histogram.mean;
    this.#histogram.reset();
    this.record(Number.isNaN(mean) ? 0 : Math.max(0, mean / 1e6 - 10), this.#config.maxHeapUsedBytes > 0 ? this.#heapUsed() : 0);
  }

  /** One sample (public so the thresholds are testable without loading a machine). */
  record(eventLoopDelayMs: number, heapUsedBytes: number): void {
    this.#lastDelayMs = Math.round(eventLoopDelayMs * 100) / 100;
    this.#lastHeapUsed = heapUsedBytes;
    const c = this.#config;
    const over = eventLoopDelayMs > c.maxEventLoopDelayMs || (c.maxHeapUsedBytes > 0 && heapUsedBytes > c.maxHeapUsedBytes);
    this.#overCount = over ? this.#overCount + 1 : 0;
    const now = this.#overCount >= c.sustainedSamples;
    if (now === this.#underPressure) return;
    this.#underPressure = now;
    const line = { eventLoopDelayMs: this.#lastDelayMs, heapUsedBytes };
    if (now) this.#log?.warn(line, 'under sustained pressure: /readyz answers 503');
    else this.#log?.info(line, 'pressure over: /readyz ready again');
  }
}
