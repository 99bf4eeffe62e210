import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { getHeapSpaceStatistics, getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { FastifyBaseLogger } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import type { IdleHeapReclaimConfig } from '../config/index.js';

/**
 * Gives the heap that a load left behind back to the system once the gateway goes idle.
 *
 * Under saturation V8 lets the old generation grow to ~4x the live heap between full GCs
 * (measured: ~50 MiB live, 200+ MiB committed, RSS 130 -> 330 MiB), which is right while
 * busy. When the load stops nothing allocates, so no GC comes, and V8's own memory reducer,
 * which should shrink an idle heap, keeps judging the allocation rate "high" from samples taken
 * during the load (`--trace-memory-reducer`: "high alloc ... waiting" every 8 s, for as long
 * as we watched). RSS then stays at its peak. This asks V8 for one memory-reducing full GC
 * (the gc extension's `flavor: 'last-resort'`, run at once) when no request arrived and the
 * event loop was nearly idle for a whole check interval, and the old generation's committed
 * memory has grown by at least `minHeapGrowthBytes` since the last one. The young generation is
 * left out of that measure: it refills to its full size (2 x --max-semi-space-size) within a
 * second of any traffic, so counting it would take every short burst for growth and reclaim
 * over and over. A regular full GC freed the garbage but left the pages committed and pooled
 * until V8's memory reducer ran ~8 s later, and in `npm run bench`
 * it never did (RSS stayed at 320 MiB). The memory-reducing GC shrinks the heap and releases
 * the pooled pages at once: RSS 318 -> 169 MiB 5 s after the load, at the price of one atomic
 * pause (~80-130 ms measured) taken while idle (docs/operations.md, "Memory"). Nothing in Node
 * or on npm does this (the memory reducer is the mechanism that should), hence by hand.
 */

/** V8's `gc()` with the options of its gc extension (`--expose-gc`; `last-resort`: V8's memory-reducing collection). */
export type GcFunction = (options: { type: 'major'; execution: 'sync' | 'async'; flavor?: 'regular' | 'last-resort' }) => unknown;

export interface IdleHeapReclaimDeps {
  readonly log?: Pick<FastifyBaseLogger, 'info' | 'debug'>;
  readonly registry?: Registry;
  /** Event-loop utilization since `previous` (perf_hooks' eventLoopUtilization). */
  readonly utilization?: (previous?: EventLoopUtilization) => EventLoopUtilization;
  /**
   * Requests received so far (a count that only grows). A check interval in which it moved is
   * not idle, however light the traffic: the reclaim's pause (tens of ms) would fall on those
   * requests, and traffic that allocates lets V8's own memory reducer do the work.
   */
  readonly requestsReceived?: () => number;
  /** Bytes V8 has committed for the old generation (default: `oldGenerationCommitted`). */
  readonly oldGenerationCommitted?: () => number;
  /** Runs a full GC; default V8's own, obtained once (see `v8Gc`). */
  readonly gc?: GcFunction;
}

/**
 * V8's gc function. With `--expose-gc` on the command line it is global; otherwise the flag is
 * set now and the function read from a fresh context (the flag only affects contexts created
 * after it), so the gateway's own global scope does not gain a `gc`.
 */
export function v8Gc(): GcFunction {
  const global = (globalThis as { gc?: unknown }).gc;
  if (typeof global === 'function') return global as GcFunction;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as GcFunction;
}

/** The heap V8 has committed minus its young generation (new space and new large objects). */
export function oldGenerationCommitted(): number {
  let young = 0;
  for (const space of getHeapSpaceStatistics()) if (space.space_name.startsWith('new_')) young += space.space_size;
  return getHeapStatistics().total_heap_size - young;
}

export class IdleHeapReclaimer {
  readonly #config: IdleHeapReclaimConfig;
  readonly #log: IdleHeapReclaimDeps['log'];
  readonly #utilization: (previous?: EventLoopUtilization) => EventLoopUtilization;
  readonly #oldGenerationCommitted: () => number;
  readonly #requestsReceived: (() => number) | undefined;
  #lastRequests = 0;
  readonly #gcOption: GcFunction | undefined;
  readonly #reclaims: Counter | undefined;
  #gc: GcFunction | undefined;
  #timer: NodeJS.Timeout | undefined;
  #lastElu: EventLoopUtilization | undefined;
  /** Old generation committed after the last reclaim (or at start): growth is measured from here. */
  #baseline = 0;

  constructor(config: IdleHeapReclaimConfig, deps: IdleHeapReclaimDeps = {}) {
    this.#config = config;
    this.#log = deps.log;
    this.#utilization = deps.utilization ?? ((previous) => performance.eventLoopUtilization(previous));
    this.#oldGenerationCommitted = deps.oldGenerationCommitted ?? oldGenerationCommitted;
    this.#requestsReceived = deps.requestsReceived;
    this.#gcOption = deps.gc;
    this.#reclaims =
      deps.registry === undefined
        ? undefined
        : new Counter({
            name: 'gateway_idle_heap_reclaims_total',
            help: 'Full GCs the gateway asked V8 for once it went idle with a heap grown under load',
            registers: [deps.registry],
          });
  }

  start(): void {
    if (!this.#config.enabled || this.#timer !== undefined) return;
    this.#gc = this.#gcOption ?? v8Gc();
    this.#baseline = this.#oldGenerationCommitted();
    this.#lastElu = this.#utilization();
    this.#lastRequests = this.#requestsReceived?.() ?? 0;
    this.#timer = setInterval(() => this.check(), this.#config.checkIntervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** One check (public so the rule is testable without loading a process); true when it asked for a GC. */
  check(): boolean {
    const now = this.#utilization();
    const interval = this.#utilization(this.#lastElu);
    this.#lastElu = now;
    const requests = this.#requestsReceived?.() ?? 0;
    const quiet = requests === this.#lastRequests;
    this.#lastRequests = requests;
    const committed = this.#oldGenerationCommitted();
    // A heap that shrank by itself (V8's own GCs) lowers the bar for the next load.
    if (committed < this.#baseline) this.#baseline = committed;
    if (!quiet || interval.utilization > this.#config.maxEventLoopUtilization) return false;
    if (committed - this.#baseline < this.#config.minHeapGrowthBytes) return false;
    const previousBaseline = this.#baseline;
    // Synchronous: the pause is the same atomic one either way, and the heap it leaves is read
    // right after it. Measured later (the next check, with the GC as a task of its own), a load
    // that came back in between set the bar at its own level, and the next idle period after
    // it was not reclaimed (npm run bench: RSS 161 MiB 15 s after the load, 17 above idle).
    this.#gc?.({ type: 'major', execution: 'sync', flavor: 'last-resort' });
    this.#baseline = this.#oldGenerationCommitted();
    this.#reclaims?.inc();
    this.#log?.info(
      {
        oldGenerationCommittedBytes: committed,
        grownBytes: committed - previousBaseline,
        afterBytes: this.#baseline,
        eventLoopUtilization: Math.round(interval.utilization * 1000) / 1000,
      },
      'idle after load: asked V8 for a full GC to give the grown heap back',
    );
    return true;
  }
}
