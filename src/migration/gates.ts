import type { MigrationConfig } from '../config/index.js';
import type { SideFigures } from './side-stats.js';

/*
 * The gates of a migration step (docs/operations.md, "Progressive migrations"): plain
 * functions over the figures of one window, so the controller only decides when to look.
 *
 * - error rate: canary under gates.maxErrorRate (0.5%) and under errorRatioToStable (2x) the
 *   reference's;
 * - latency: canary p99 under gates.maxP99Ms (200 ms) and under p99RatioToStable (1.5x) the
 *   reference's.
 *
 * The reference is the Memory baseline of the route when one is provided (MigrationBaseline),
 * else the stable side of the same window, else (at 100%, when stable serves nobody) the
 * stable figures of the last step that had them. The relative gates have a noise floor: a
 * canary at 0.05% errors against a stable at 0%, or at 6 ms against 3 ms, is not a failure —
 * twice nothing is still nothing, and the absolute gates bound what matters.
 */

export type Gates = MigrationConfig['gates'];

/** Relative gates only apply above these (see above). */
export const ERROR_RATE_FLOOR = 0.001;
export const P99_FLOOR_MS = 20;

/** A reference to compare the canary with: a Memory baseline, or the stable side. */
export interface Reference {
  readonly source: 'baseline' | 'stable' | 'previous-stable';
  readonly errorRate: number;
  readonly p99Ms: number;
}

/** Where a route's baseline comes from (the Memory integration, when configured). */
export interface MigrationBaseline {
  baseline(routeId: string): Promise<{ readonly errorRate: number; readonly p99Ms: number } | undefined>;
}

export interface GateFailure {
  readonly gate: 'error_rate' | 'error_ratio' | 'p99' | 'p99_ratio';
  /** What the canary measured. */
  readonly value: number;
  /** What it had to stay under. */
  readonly limit: number;
  readonly message: string;
}

const pct = (r: number) => `${(r * 100).toFixed(2)}%`;

/** The gates that fail for these figures (empty: all pass). */
export function failedGates(canary: SideFigures, reference: Reference | undefined, gates: Gates): GateFailure[] {
  const out: GateFailure[] = [];
  if (canary.requests === 0) return out;
  if (canary.errorRate >= gates.maxErrorRate) {
    out.push({ gate: 'error_rate', value: canary.errorRate, limit: gates.maxErrorRate, message: `canary error rate ${pct(canary.errorRate)} is not under ${pct(gates.maxErrorRate)}` });
  }
  if (reference !== undefined && canary.errorRate >= ERROR_RATE_FLOOR) {
    const limit = gates.errorRatioToStable * reference.errorRate;
    if (canary.errorRate >= limit) {
      out.push({ gate: 'error_ratio', value: canary.errorRate, limit, message: `canary error rate ${pct(canary.errorRate)} is not under ${gates.errorRatioToStable}x the ${reference.source}'s ${pct(reference.errorRate)}` });
    }
  }
  if (canary.p99Ms >= gates.maxP99Ms) {
    out.push({ gate: 'p99', value: canary.p99Ms, limit: gates.maxP99Ms, message: `canary p99 ${canary.p99Ms} ms is not under ${gates.maxP99Ms} ms` });
  }
  if (reference !== undefined && reference.p99Ms > 0 && canary.p99Ms >= P99_FLOOR_MS) {
    const limit = gates.p99RatioToStable * reference.p99Ms;
    if (canary.p99Ms >= limit) {
      out.push({ gate: 'p99_ratio', value: canary.p99Ms, limit, message: `canary p99 ${canary.p99Ms} ms is not under ${gates.p99RatioToStable}x the ${reference.source}'s ${reference.p99Ms} ms` });
    }
  }
  return out;
}

/** The reference of a window: the baseline, else stable with enough requests, else the previous step's stable. */
export function referenceOf(
  stable: SideFigures,
  minRequests: number,
  baseline: { errorRate: number; p99Ms: number } | undefined,
  previousStable: SideFigures | undefined,
): Reference | undefined {
  if (baseline !== undefined) return { source: 'baseline', ...baseline };
  const enough = Math.max(1, minRequests);
  if (stable.requests >= enough) return { source: 'stable', errorRate: stable.errorRate, p99Ms: stable.p99Ms };
  if (previousStable !== undefined && previousStable.requests >= enough) return { source: 'previous-stable', errorRate: previousStable.errorRate, p99Ms: previousStable.p99Ms };
  return undefined;
}
