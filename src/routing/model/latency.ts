import { exampleInput, type DataSet } from './data.js';
import type { RoutingInput } from './features.js';
import type { RoutingModel } from './model.js';

/*
 * Inference latency of a model on labelled requests, for `model benchmark`: each call of
 * predictInto timed on its own (process.hrtime.bigint), after a warm-up pass, over `repeat`
 * passes of the requests. bench/routing-model.ts is the fuller micro-benchmark (allocation,
 * worst-case inputs); this one gives comparable figures for several models on the same data.
 */

export interface LatencyProfile {
  readonly calls: number;
  readonly meanUs: number;
  readonly p50Us: number;
  readonly p99Us: number;
}

/** The q-quantile (0..1) of ascending `sorted`, nearest rank. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

/** Mean, p50 and p99 of `samples` (any order), in the samples' unit. */
export function summariseLatency(samples: readonly number[]): Omit<LatencyProfile, 'calls'> & { calls: number } {
  const sorted = Float64Array.from(samples).sort();
  const mean = sorted.length === 0 ? 0 : sorted.reduce((a, b) => a + b, 0) / sorted.length;
  const r = (x: number) => Math.round(x * 1000) / 1000;
  return { calls: sorted.length, meanUs: r(mean), p50Us: r(quantile(sorted, 0.5)), p99Us: r(quantile(sorted, 0.99)) };
}

/**
 * Latency of each model on the same requests. The models take turns pass by pass (after three
 * warm-up passes each), so a busy moment of the machine falls on all of them alike rather than
 * on whichever was measured then.
 */
export function measureLatencies(models: readonly RoutingModel[], data: DataSet, options: { readonly repeat?: number } = {}): LatencyProfile[] {
  const inputs: RoutingInput[] = data.examples.map(exampleInput);
  const outs = models.map((m) => new Float64Array(m.labels.length));
  for (let w = 0; w < 3; w++) models.forEach((m, i) => inputs.forEach((input) => m.predictInto(input, outs[i]!)));
  const repeat = Math.max(1, options.repeat ?? 20);
  const samples = models.map(() => new Array<number>(inputs.length * repeat));
  for (let r = 0; r < repeat; r++) {
    models.forEach((m, i) => {
      const out = outs[i]!;
      const into = samples[i]!;
      let k = r * inputs.length;
      for (const input of inputs) {
        const t0 = process.hrtime.bigint();
        m.predictInto(input, out);
        into[k++] = Number(process.hrtime.bigint() - t0) / 1000;
      }
    });
  }
  return samples.map(summariseLatency);
}

export function measureLatency(model: RoutingModel, data: DataSet, options: { readonly repeat?: number } = {}): LatencyProfile {
  return measureLatencies([model], data, options)[0]!;
}
