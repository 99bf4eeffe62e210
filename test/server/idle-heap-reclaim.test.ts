import type { EventLoopUtilization } from 'node:perf_hooks';
import { Registry } from 'prom-client';
import { describe, expect, it, onTestFinished } from 'vitest';
import { getHeapSpaceStatistics, getHeapStatistics } from 'node:v8';
import { IdleHeapReclaimer, oldGenerationCommitted, v8Gc } from '../../src/server/idle-heap-reclaim.js';

const MiB = 1024 * 1024;
const config = { enabled: true, checkIntervalMs: 5000, maxEventLoopUtilization: 0.05, minHeapGrowthBytes: 32 * MiB };

/** A reclaimer whose event-loop utilization and committed heap the test sets before each check. */
function harness(overrides: Partial<typeof config> = {}) {
  const state: { utilization: number; committed: number; requests: number; afterGc?: number } = { utilization: 0, committed: 60 * MiB, requests: 0 };
  const gcs: unknown[] = [];
  const registry = new Registry();
  const reclaimer = new IdleHeapReclaimer(
    { ...config, ...overrides },
    {
      registry,
      // The interval's utilization is what the test set; a call without `previous` is the "now" mark.
      utilization: (previous?: EventLoopUtilization) => ({ idle: 0, active: 0, utilization: previous === undefined ? 0 : state.utilization }),
      oldGenerationCommitted: () => state.committed,
      requestsReceived: () => state.requests,
      // V8's gc() returns once the collection is done; afterGc is the heap it leaves.
      gc: (options) => {
        gcs.push(options);
        if (state.afterGc !== undefined) state.committed = state.afterGc;
      },
    },
  );
  reclaimer.start();
  onTestFinished(() => reclaimer.stop());
  const count = async () => (await registry.getSingleMetric('gateway_idle_heap_reclaims_total')!.get()).values[0]?.value ?? 0;
  /** One check under load (90% busy) with the heap at `committed` and `requests` more arrived: never a reclaim. */
  const busy = (committed: number, requests = 0) => {
    state.utilization = 0.9;
    state.committed = committed;
    state.requests += requests;
    expect(reclaimer.check()).toBe(false);
  };
  return { state, gcs, reclaimer, count, busy };
}

describe('IdleHeapReclaimer', () => {
  it('asks for one full GC when the loop goes idle with a heap grown under load, not while busy', async () => {
    const { state, gcs, reclaimer, count, busy } = harness();
    busy(220 * MiB); // under load, the heap grows: V8 decides, not us
    state.utilization = 0.01; // the load stopped
    expect(reclaimer.check()).toBe(true);
    expect(gcs).toEqual([{ type: 'major', execution: 'sync', flavor: 'last-resort' }]);
    expect(await count()).toBe(1);
    // The GC gave the heap back; idle checks after it do nothing more.
    state.committed = 62 * MiB;
    expect(reclaimer.check()).toBe(false);
    expect(reclaimer.check()).toBe(false);
    expect(gcs).toHaveLength(1);
    // The next load and idle period: growth is measured from the shrunk heap.
    busy(62 * MiB + 40 * MiB);
    state.utilization = 0.02;
    expect(reclaimer.check()).toBe(true);
    expect(gcs).toHaveLength(2);
  });

  it('leaves a heap that grew less than minHeapGrowthBytes, and an idle loop whose heap did not grow, alone', () => {
    const { state, gcs, reclaimer } = harness();
    state.utilization = 0;
    expect(reclaimer.check()).toBe(false); // idle from the start: nothing to give back
    state.committed = 60 * MiB + 31 * MiB;
    expect(reclaimer.check()).toBe(false);
    state.committed = 60 * MiB + 32 * MiB;
    state.utilization = 0.051; // just over the idle threshold: still busy
    expect(reclaimer.check()).toBe(false);
    expect(gcs).toHaveLength(0);
  });

  it('waits for an interval without requests: light traffic never takes the pause', () => {
    const { state, gcs, reclaimer, busy } = harness();
    busy(200 * MiB, 50_000);
    // The load fell to a trickle: the loop is nearly idle, but requests still arrive.
    state.utilization = 0.01;
    for (let i = 0; i < 5; i += 1) {
      state.requests += 3;
      expect(reclaimer.check()).toBe(false);
    }
    expect(gcs).toHaveLength(0);
    // A whole interval without one: now.
    expect(reclaimer.check()).toBe(true);
    expect(gcs).toHaveLength(1);
  });

  it('measures the next growth from the heap the GC left, even when the load is back before the next check', () => {
    const { state, gcs, reclaimer, busy } = harness();
    busy(200 * MiB, 1000);
    state.utilization = 0;
    state.afterGc = 50 * MiB;
    expect(reclaimer.check()).toBe(true);
    expect(state.committed).toBe(50 * MiB);
    // The next load starts within the same check interval and grows the heap by 33 MiB.
    busy(83 * MiB, 1000);
    // Idle again: 33 MiB over what the GC left (not over the 200 MiB before it) is reclaimed.
    state.utilization = 0;
    expect(reclaimer.check()).toBe(true);
    expect(gcs).toHaveLength(2);
  });

  it('does nothing when disabled', () => {
    const gcs: unknown[] = [];
    const reclaimer = new IdleHeapReclaimer({ ...config, enabled: false }, { gc: (o) => gcs.push(o) });
    reclaimer.start();
    reclaimer.stop();
    expect(gcs).toHaveLength(0);
  });

  it("obtains V8's gc function without putting one on the gateway's global scope", () => {
    const hadGlobal = typeof (globalThis as { gc?: unknown }).gc === 'function';
    const gc = v8Gc();
    expect(typeof gc).toBe('function');
    expect(typeof (globalThis as { gc?: unknown }).gc === 'function').toBe(hadGlobal);
  });

  it('measures the old generation: the committed heap without the young generation, which refills with any traffic', () => {
    // Short-lived garbage fills the young generation; the measure must not count it.
    let keep = 0;
    for (let i = 0; i < 200_000; i += 1) keep += [i, { i }].length;
    expect(keep).toBe(400_000);
    const old = oldGenerationCommitted();
    const total = getHeapStatistics().total_heap_size;
    const young = getHeapSpaceStatistics()
      .filter((s) => s.space_name.startsWith('new_'))
      .reduce((sum, s) => sum + s.space_size, 0);
    expect(young).toBeGreaterThan(0);
    // The reads are not atomic: allow what a scavenge between them could move (a MiB).
    expect(Math.abs(old - (total - young))).toBeLessThan(MiB);
    expect(old).toBeGreaterThan(0);
  });
});
