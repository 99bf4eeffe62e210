import { describe, expect, it } from 'vitest';
import { AggregatorRegistry, Counter, Histogram, Registry } from 'prom-client';
import { TalliedCounter, TalliedHistogram } from '../../src/metrics/tallied.js';

/*
 * The tallied metrics must be indistinguishable from prom-client's own on every way they are
 * read: the text exposition, getMetricsAsJSON (the cluster aggregate, admin queries), reset.
 * Each test feeds the same observations to both and compares what the registries give.
 */

const BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1];
type L = 'method' | 'endpoint' | 'status';

function pair() {
  const ours = new Registry();
  const theirs = new Registry();
  const config = { name: 'x_requests_total', help: 'Requests "quoted" \\ and all', labelNames: ['method', 'endpoint', 'status'] as L[] };
  const hconfig = { name: 'x_duration_seconds', help: 'Duration', labelNames: ['method', 'endpoint', 'status'] as L[], buckets: BUCKETS };
  return {
    ours,
    theirs,
    counter: new TalliedCounter<L>({ ...config, registers: [ours] }),
    promCounter: new Counter<L>({ ...config, registers: [theirs] }),
    histogram: new TalliedHistogram<L>({ ...hconfig, registers: [ours] }),
    promHistogram: new Histogram<L>({ ...hconfig, registers: [theirs] }),
  };
}

/** Observations with repeated label sets, values on bucket bounds, above the last bound, numbers as labels. */
function feed(m: ReturnType<typeof pair>, seed: number): void {
  const methods = ['GET', 'POST'];
  const endpoints = ['/v1/twin/*', 'unmatched', '/v1/"odd"\\path\n'];
  let x = seed;
  for (let i = 0; i < 500; i++) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    const status = 200 + (x % 4) * 100;
    // A number and its string are one series, as in prom-client.
    const labels = { method: methods[x % 2]!, endpoint: endpoints[x % 3]!, status: i % 13 === 5 ? status : String(status) };
    const value = i % 7 === 0 ? BUCKETS[x % BUCKETS.length]! : i % 11 === 0 ? 3 : (x % 1000) / 1000;
    m.counter.inc(labels);
    m.promCounter.inc(labels);
    m.histogram.observe(labels, value);
    m.promHistogram.observe(labels, value);
    if (i % 50 === 0) {
      m.counter.inc(labels, 2.5);
      m.promCounter.inc(labels, 2.5);
    }
  }
}

describe('TalliedCounter and TalliedHistogram', () => {
  it('give the same text exposition and JSON as prom-client for the same observations', async () => {
    const m = pair();
    feed(m, 7);
    expect(await m.ours.metrics()).toBe(await m.theirs.metrics());
    expect(await m.ours.getMetricsAsJSON()).toEqual(await m.theirs.getMetricsAsJSON());
    // Scraped twice with more in between: counts pending since the last scrape are added once.
    feed(m, 99);
    expect(await m.ours.metrics()).toBe(await m.theirs.metrics());
    expect(await m.ours.metrics()).toBe(await m.theirs.metrics());
    expect(await m.histogram.get()).toEqual(await m.promHistogram.get());
    expect(await m.counter.get()).toEqual(await m.promCounter.get());
  });

  it('sum across registries like prom-client (the cluster aggregate)', async () => {
    const a = pair();
    const b = pair();
    feed(a, 1);
    feed(b, 2);
    const ours = AggregatorRegistry.aggregate([await a.ours.getMetricsAsJSON(), await b.ours.getMetricsAsJSON()]);
    const theirs = AggregatorRegistry.aggregate([await a.theirs.getMetricsAsJSON(), await b.theirs.getMetricsAsJSON()]);
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });

  it('show a series counted by 0, and reset like prom-client', async () => {
    const m = pair();
    m.counter.inc({ method: 'GET', endpoint: '/a', status: '200' }, 0);
    m.promCounter.inc({ method: 'GET', endpoint: '/a', status: '200' }, 0);
    expect(await m.ours.metrics()).toBe(await m.theirs.metrics());
    feed(m, 3);
    m.ours.resetMetrics();
    m.theirs.resetMetrics();
    expect(await m.ours.metrics()).toBe(await m.theirs.metrics());
    expect((await m.histogram.get()).values).toEqual([]);
  });

  it('refuse labels outside the declared set and values that are not numbers or would decrease a counter', () => {
    const m = pair();
    expect(() => m.counter.inc({ method: 'GET', oops: 'x' } as never)).toThrow(/oops/);
    expect(() => m.histogram.observe({ method: 'GET', oops: 'x' } as never, 1)).toThrow(/oops/);
    expect(() => m.histogram.observe({ method: 'GET' }, Number.NaN)).toThrow(TypeError);
    expect(() => m.counter.inc({ method: 'GET' }, -1)).toThrow(TypeError);
    expect(() => m.counter.inc({ method: 'GET' }, Number.POSITIVE_INFINITY)).toThrow(TypeError);
  });
});
