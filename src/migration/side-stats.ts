import { histogramQuantile as quantileOf } from '../metrics/quantile.js';
import { parseStored } from '../state/parse.js';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { StateStore } from '../state/index.js';

/*
 * Per-side figures of the split routes, across every replica (the gates of a migration,
 * src/migration/gates.ts). Each replica counts its own requests per route, per split version
 * (every shift bumps the version, so a step's window is exactly the requests served with its
 * weights) and per side: requests, errors and a latency histogram with fixed buckets. Once a
 * second it writes its cumulative counts for the windows that changed into the state store
 * (an expiring set per window, one entry per replica: a snapshot, not a delta, so a lost or
 * repeated write never double-counts). The controller sums the replicas' entries, and the
 * p99 comes from the summed histogram (as Prometheus' histogram_quantile does), which is why
 * histograms and not percentiles are shared: percentiles cannot be added.
 */

/** Upper bounds (ms) of the latency buckets; the last bucket is everything above. */
export const LATENCY_BUCKETS_MS = [5, 10, 25, 50, 75, 100, 150, 200, 250, 300, 400, 500, 750, 1000, 2000, 5000, 10_000] as const;

export type SideName = 'stable' | 'canary';

const countsSchema = z.strictObject({
  requests: z.number().int().nonnegative(),
  errors: z.number().int().nonnegative(),
  /** One count per bucket of LATENCY_BUCKETS_MS, then the overflow. */
  buckets: z.array(z.number().int().nonnegative()).length(LATENCY_BUCKETS_MS.length + 1),
});
export type SideCounts = z.infer<typeof countsSchema>;

const snapshotSchema = z.strictObject({ stable: countsSchema, canary: countsSchema });

/** What the gates compare: one side's figures over a window. */
export interface SideFigures {
  readonly requests: number;
  readonly errors: number;
  /** errors / requests (0 without requests). */
  readonly errorRate: number;
  /** 99th percentile latency in ms (0 without requests). */
  readonly p99Ms: number;
}

const empty = (): SideCounts => ({ requests: 0, errors: 0, buckets: new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0) });

/** The quantile `q` of a side's latency histogram in ms (0 without requests); above the last bound, the last bound. */
export function histogramQuantile(buckets: readonly number[], q: number): number {
  let cumulative = 0;
  const pairs = buckets.map((count, i) => [i < LATENCY_BUCKETS_MS.length ? LATENCY_BUCKETS_MS[i]! : Infinity, (cumulative += count)] as const);
  return quantileOf(q, pairs) ?? 0;
}

export function figuresOf(counts: SideCounts): SideFigures {
  return {
    requests: counts.requests,
    errors: counts.errors,
    errorRate: counts.requests === 0 ? 0 : counts.errors / counts.requests,
    p99Ms: Math.round(histogramQuantile(counts.buckets, 0.99) * 10) / 10,
  };
}

function bucketIndex(ms: number): number {
  for (let i = 0; i < LATENCY_BUCKETS_MS.length; i++) if (ms <= LATENCY_BUCKETS_MS[i]!) return i;
  return LATENCY_BUCKETS_MS.length;
}

/** What the request path reports for each request of a split route (src/proxy/request-path.ts). */
export interface SideObserver {
  observe(routeId: string, version: number, side: SideName, failed: boolean, ms: number): void;
}

const windowSet = (routeId: string, version: number) => `split-sides:${routeId}:${version}`;
const WINDOW_TTL_MS = 7 * 86_400_000;

type Store = Pick<StateStore, 'putEntry' | 'listEntries'> & Partial<Pick<StateStore, 'backend' | 'up'>>;

export class SideStats implements SideObserver {
  /** This replica's counts: `<route>\0<version>` -> both sides. */
  readonly #windows = new Map<string, { routeId: string; version: number; stable: SideCounts; canary: SideCounts; dirty: boolean }>();
  readonly #replica: string;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: Store,
    private readonly log: { warn(obj: object, msg: string): void },
    private readonly options: { readonly flushIntervalMs?: number; readonly replicaId?: string; readonly maxWindows?: number } = {},
  ) {
    this.#replica = options.replicaId ?? randomUUID();
  }

  start(): void {
    this.#timer = setInterval(() => void this.flush(), this.options.flushIntervalMs ?? 1000);
    this.#timer.unref();
  }

  async close(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    await this.flush();
  }

  observe(routeId: string, version: number, side: SideName, failed: boolean, ms: number): void {
    const key = `${routeId}\u0000${version}`;
    let w = this.#windows.get(key);
    if (w === undefined) {
      // Old windows are done with once written: keep the map bounded.
      if (this.#windows.size >= (this.options.maxWindows ?? 64)) {
        for (const [k, old] of this.#windows) if (!old.dirty) this.#windows.delete(k);
      }
      w = { routeId, version, stable: empty(), canary: empty(), dirty: false };
      this.#windows.set(key, w);
    }
    const c = w[side];
    c.requests += 1;
    if (failed) c.errors += 1;
    c.buckets[bucketIndex(ms)]! += 1;
    w.dirty = true;
  }

  /** Write this replica's changed windows to the store. */
  async flush(): Promise<void> {
    const dirty = [...this.#windows.values()].filter((w) => w.dirty);
    await Promise.all(
      dirty.map(async (w) => {
        w.dirty = false;
        try {
          await this.store.putEntry(windowSet(w.routeId, w.version), this.#replica, JSON.stringify({ stable: w.stable, canary: w.canary }), WINDOW_TTL_MS);
        } catch (err) {
          w.dirty = true;
          this.log.warn({ route: w.routeId, err: (err as Error).message }, 'split figures: writing to the state store failed; retried');
        }
      }),
    );
  }

  /** Both sides' figures of one window, summed over every replica's latest snapshot. */
  async figures(routeId: string, version: number): Promise<{ stable: SideFigures; canary: SideFigures; replicas: number }> {
    const sum = { stable: empty(), canary: empty() };
    let replicas = 0;
    const entries = await this.store.listEntries(windowSet(routeId, version));
    // This replica's own snapshot alone would judge the canary on a fraction of its traffic.
    if (this.store.backend === 'redis' && this.store.up === false) throw new Error('the shared state store does not answer: no figures from the other replicas');
    for (const entry of entries) {
      const snapshot = parseStored(snapshotSchema, entry.value);
      if (snapshot === undefined) {
        this.log.warn({ route: routeId, replica: entry.id }, 'split figures: ignored a malformed snapshot from the state store');
        continue;
      }
      replicas += 1;
      for (const side of ['stable', 'canary'] as const) {
        const s = snapshot[side];
        sum[side].requests += s.requests;
        sum[side].errors += s.errors;
        s.buckets.forEach((n, i) => (sum[side].buckets[i]! += n));
      }
    }
    return { stable: figuresOf(sum.stable), canary: figuresOf(sum.canary), replicas };
  }
}
