import { describe, expect, it } from 'vitest';
import { bucketQuantileMs } from '../../bench/load.js';

describe('bucketQuantileMs (the bench reading gateway_proxy_overhead_seconds)', () => {
  const before = new Map([[0.0005, 10], [0.001, 20], [0.005, 20], [Infinity, 20]]);
  it('takes the quantile of what was observed between two scrapes, as the smallest bound that holds it', () => {
    // Between the scrapes: 90 under 0.5 ms, 9 more under 1 ms, 1 more under 5 ms.
    const after = new Map([[0.0005, 100], [0.001, 119], [0.005, 120], [Infinity, 120]]);
    expect(bucketQuantileMs(before, after, 0.5)).toBe(0.5);
    expect(bucketQuantileMs(before, after, 0.99)).toBe(1);
    expect(bucketQuantileMs(before, after, 1)).toBe(5);
  });
  it('says Infinity past the last finite bound, and null when nothing was observed', () => {
    expect(bucketQuantileMs(before, new Map([[0.0005, 10], [0.001, 20], [0.005, 20], [Infinity, 30]]), 0.99)).toBe(Infinity);
    expect(bucketQuantileMs(before, before, 0.99)).toBeNull();
  });
});
