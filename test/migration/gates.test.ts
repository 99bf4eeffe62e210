import { describe, expect, it } from 'vitest';
import { failedGates, referenceOf } from '../../src/migration/gates.js';
import { figuresOf, histogramQuantile, LATENCY_BUCKETS_MS } from '../../src/migration/side-stats.js';

const gates = { maxErrorRate: 0.005, errorRatioToStable: 2, maxP99Ms: 200, p99RatioToStable: 1.5 };
const side = (requests: number, errors: number, p99Ms: number) => ({ requests, errors, errorRate: requests === 0 ? 0 : errors / requests, p99Ms });

describe('migration gates', () => {
  it('pass a canary like stable; fail on the absolute limits', () => {
    const stable = side(10_000, 20, 80);
    expect(failedGates(side(1000, 2, 90), referenceOf(stable, 100, undefined, undefined), gates)).toEqual([]);
    expect(failedGates(side(1000, 5, 90), undefined, gates).map((f) => f.gate)).toEqual(['error_rate']);
    expect(failedGates(side(1000, 0, 200), undefined, gates).map((f) => f.gate)).toEqual(['p99']);
  });

  it('fail on the ratios to stable, above the noise floors only', () => {
    const ref = referenceOf(side(10_000, 10, 60), 100, undefined, undefined)!; // 0.1%, 60 ms
    expect(ref.source).toBe('stable');
    expect(failedGates(side(1000, 3, 60), ref, gates).map((f) => f.gate)).toEqual(['error_ratio']); // 0.3% >= 2 x 0.1%
    expect(failedGates(side(1000, 0, 95), ref, gates).map((f) => f.gate)).toEqual(['p99_ratio']); // 95 >= 1.5 x 60
    // Twice nothing is still nothing: 0.05% errors and 6 ms against a perfect 3 ms stable pass.
    const quiet = referenceOf(side(10_000, 0, 3), 100, undefined, undefined)!;
    expect(failedGates(side(2000, 1, 6), quiet, gates)).toEqual([]);
  });

  it('compare with the Memory baseline when one is given, else the previous step\'s stable when stable has no traffic', () => {
    const baseline = { errorRate: 0.001, p99Ms: 40 };
    const fromBaseline = referenceOf(side(10_000, 0, 100), 100, baseline, undefined)!;
    expect(fromBaseline).toEqual({ source: 'baseline', ...baseline });
    expect(failedGates(side(1000, 0, 70), fromBaseline, gates).map((f) => f.gate)).toEqual(['p99_ratio']);
    const at100 = referenceOf(side(0, 0, 0), 100, undefined, side(5000, 5, 50))!;
    expect(at100.source).toBe('previous-stable');
    expect(referenceOf(side(10, 0, 50), 100, undefined, undefined)).toBeUndefined();
  });

  it('take the p99 from a summed histogram, interpolated within its bucket', () => {
    const buckets = new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0);
    buckets[LATENCY_BUCKETS_MS.indexOf(50)] = 990; // 25-50 ms
    buckets[LATENCY_BUCKETS_MS.indexOf(300)] = 10; // 250-300 ms
    expect(histogramQuantile(buckets, 0.5)).toBeCloseTo(25 + 25 * (500 / 990), 5);
    expect(histogramQuantile(buckets, 0.99)).toBe(50);
    expect(histogramQuantile(buckets, 0.995)).toBe(275);
    expect(figuresOf({ requests: 1000, errors: 7, buckets }).errorRate).toBe(0.007);
  });
});
