import { closeSync, openSync, readdirSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/metrics/registry.js';

const opened: number[] = [];
afterEach(() => {
  for (const fd of opened.splice(0)) closeSync(fd);
});

async function openFds(metrics: ReturnType<typeof createMetrics>): Promise<number> {
  const data = await metrics.registry.getSingleMetric('process_open_fds')!.get();
  return data.values[0]!.value;
}

describe('default process metrics', () => {
  it('process_open_fds counts the open descriptors', async () => {
    const metrics = createMetrics({ durationBuckets: [1] });
    const before = await openFds(metrics);
    for (let i = 0; i < 100; i++) opened.push(openSync('/dev/null', 'r'));
    const after = await openFds(metrics);
    expect(after - before).toBeGreaterThanOrEqual(98);
    expect(after - before).toBeLessThanOrEqual(102);
    expect(await metrics.registry.metrics()).toMatch(/^process_open_fds \d+$/m);
  });

  it('process_open_fds lists /proc/self/fd off the event loop (a scrape with thousands of sockets open does not stall relaying)', async () => {
    const metrics = createMetrics({ durationBuckets: [1] });
    for (let i = 0; i < 3000; i++) opened.push(openSync('/dev/null', 'r'));
    const gauge = metrics.registry.getSingleMetric('process_open_fds')!;
    // The fastest of a few tries of each, in the same test: a scheduler pause cannot make the code look faster.
    let syncPart = Infinity;
    let listing = Infinity;
    for (let i = 0; i < 10; i++) {
      let t = performance.now();
      const pending = gauge.get();
      syncPart = Math.min(syncPart, performance.now() - t);
      await pending;
      t = performance.now();
      readdirSync('/proc/self/fd');
      listing = Math.min(listing, performance.now() - t);
    }
    expect(syncPart, `synchronous part ${syncPart} ms, a listing ${listing} ms`).toBeLessThan(listing / 2);
  });
});
