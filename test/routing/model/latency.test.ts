import { describe, expect, it } from 'vitest';
import { measureLatencies, quantile, summariseLatency } from '../../../src/routing/model/latency.js';
import { RoutingModel } from '../../../src/routing/model/model.js';
import { modelFile, toyData } from './helpers.js';

describe('model latency for model benchmark', () => {
  it('quantiles by nearest rank', () => {
    const xs = Float64Array.from({ length: 100 }, (_, i) => i + 1);
    expect(quantile(xs, 0.5)).toBe(50);
    expect(quantile(xs, 0.99)).toBe(99);
    expect(quantile(xs, 1)).toBe(100);
    expect(quantile(new Float64Array(0), 0.99)).toBe(0);
    expect(summariseLatency([3, 1, 2, 10])).toEqual({ calls: 4, meanUs: 4, p50Us: 2, p99Us: 10 });
  });

  it('times every call of every model on the same requests, models taking turns', () => {
    const a = RoutingModel.fromJson(modelFile({ id: 'rm-a' }));
    const b = RoutingModel.fromJson(modelFile({ id: 'rm-b', bias: [0, 0, 0, 1, 0] }));
    const data = toyData();
    const [la, lb] = measureLatencies([a, b], data, { repeat: 4 });
    for (const l of [la!, lb!]) {
      expect(l.calls).toBe(data.examples.length * 4);
      expect(l.p50Us).toBeGreaterThan(0);
      expect(l.p99Us).toBeGreaterThanOrEqual(l.p50Us);
    }
  });
});
