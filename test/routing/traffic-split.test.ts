import { afterAll, describe, expect, it } from 'vitest';
import type { RouteConfig } from '../../src/config/index.js';
import { bucketOf, TrafficSplits } from '../../src/routing/traffic-split.js';
import { MemoryStore } from '../../src/state/index.js';
import { RedisStore } from '../../src/state/redis.js';
import { cleanup, waitFor } from '../helpers/gateway.js';
import { describeWithRedis, startRedis } from '../helpers/redis.js';

const route = {
  id: 'twin',
  prefix: '/v1/twin',
  service: 'twin',
  split: { canaryService: 'twin-canary', weights: { stable: 100, canary: 0 }, sticky: 'cookie' },
} as unknown as RouteConfig;
const quiet = { warn() {}, info() {} };

describe('bucketOf', () => {
  it('spreads keys evenly over 0-99', () => {
    const counts = new Array<number>(10).fill(0);
    for (let i = 0; i < 100_000; i++) counts[Math.floor(bucketOf(`user-${i}`) / 10)]! += 1;
    // Each decile should hold 10% ± 0.5% of 100,000 keys.
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(500);
  });

  it('is stable (a client keeps its side across restarts and replicas)', () => {
    expect(bucketOf('p:alice')).toBe(bucketOf('p:alice'));
    expect(new Set(['a', 'b', 'c', 'd', 'e', 'f'].map(bucketOf)).size).toBeGreaterThan(1);
  });
});

describe('TrafficSplits', () => {
  it('keeps each client on one side and moves only the clients the new weight needs', async () => {
    const splits = new TrafficSplits([route], new MemoryStore(), quiet);
    await splits.start();
    expect(splits.side('twin', 'p:alice')).toBe('stable');
    await splits.shift('twin', { stable: 70, canary: 30 }, 'key:ops', 'canary 30%');
    const at30 = Array.from({ length: 2000 }, (_, i) => splits.side('twin', `p:${i}`));
    expect(at30.filter((s) => s === 'canary').length / 2000).toBeCloseTo(0.3, 1);
    await splits.shift('twin', { stable: 50, canary: 50 }, 'key:ops', 'canary 50%');
    const at50 = Array.from({ length: 2000 }, (_, i) => splits.side('twin', `p:${i}`));
    // Growing the canary never sends a canary client back to stable.
    for (let i = 0; i < 2000; i++) if (at30[i] === 'canary') expect(at50[i]).toBe('canary');
    expect(splits.side('twin', 'p:x')).toBe(splits.side('twin', 'p:x'));
    splits.close();
  });

  it('records who shifted and why, newest first', async () => {
    const splits = new TrafficSplits([route], new MemoryStore(), quiet);
    await splits.start();
    const first = await splits.shift('twin', { stable: 90, canary: 10 }, 'key:alice', 'first step');
    expect(first.before.weights).toEqual({ stable: 100, canary: 0 });
    expect(first.after).toMatchObject({ updatedBy: 'key:alice', reason: 'first step', version: 1 });
    const second = await splits.shift('twin', { stable: 0, canary: 100 }, 'key:bob', 'all in');
    expect(second.after.history.map((h) => h.by)).toEqual(['key:bob', 'key:alice']);
    expect(splits.side('twin', 'anyone')).toBe('canary');
    splits.close();
  });

  it('applies a shift made through another instance on the same store (replicas), and tells listeners', async () => {
    const store = new MemoryStore();
    const a = new TrafficSplits([route], store, quiet);
    const b = new TrafficSplits([route], store, quiet);
    await Promise.all([a.start(), b.start()]);
    const heard: number[] = [];
    b.onChange((state) => heard.push(state.weights.canary));
    await a.shift('twin', { stable: 60, canary: 40 }, 'key:ops', 'replica test');
    await new Promise((r) => setImmediate(r));
    expect(b.state('twin')?.weights).toEqual({ stable: 60, canary: 40 });
    expect(heard).toEqual([40]);
    // A later shift from b goes on from the newest version.
    const next = await b.shift('twin', { stable: 100, canary: 0 }, 'key:ops', 'roll back');
    expect(next.after.version).toBe(2);
    await new Promise((r) => setImmediate(r));
    expect(a.state('twin')?.weights).toEqual({ stable: 100, canary: 0 });
    for (const s of [a, b]) s.close();
  });

  it('orders shifts the same way on every replica: crossing shifts, late and malformed messages', async () => {
    const state = (version: number, canary: number, at: string, by = 'key:ops') => ({
      route: 'twin',
      weights: { stable: 100 - canary, canary },
      version,
      updatedBy: by,
      reason: 'test',
      updatedAt: at,
      history: [],
    });
    // Two replicas shifted from version 4 at the same moment: both made version 5.
    const early = state(5, 20, '2026-12-06T08:00:00.000Z', 'key:alice');
    const late = state(5, 40, '2026-12-06T08:00:00.001Z', 'key:bob');
    for (const order of [[early, late], [late, early]]) {
      const store = new MemoryStore();
      const warnings: string[] = [];
      const splits = new TrafficSplits([route], store, { info() {}, warn: (_o: object, msg: string) => warnings.push(msg) });
      await splits.start();
      for (const message of order) await store.publish('traffic:shift', message);
      await store.publish('traffic:shift', state(4, 90, '2026-12-06T09:00:00.000Z')); // older version, arriving late
      await store.publish('traffic:shift', { ...state(9, 90, '2026-12-06T09:00:00.000Z'), weights: { stable: 50, canary: 90 } }); // not 100 in all
      await store.publish('traffic:shift', { route: 'twin', weights: { stable: 0, canary: 100 } }); // no version
      await new Promise((r) => setImmediate(r));
      expect(splits.state('twin')).toMatchObject({ version: 5, weights: { stable: 60, canary: 40 }, updatedBy: 'key:bob' });
      expect(warnings.filter((w) => w.includes('malformed'))).toHaveLength(2);
      splits.close();
    }
  });
});

describeWithRedis('TrafficSplits on a Redis that goes away', () => {
  afterAll(cleanup);

  it('shares a shift made while Redis was away once it is back (the caller was told shared: false)', async () => {
    const redis = await startRedis();
    const stores = [0, 1].map(
      () => new RedisStore({ url: redis.url, keyPrefix: 'split-away:', commandTimeoutMs: 1000, suspendMs: 100, maxReconnectDelayMs: 100, log: { info() {}, warn() {}, debug() {} } }),
    );
    const [a, b] = stores.map((store) => new TrafficSplits([route], store, quiet));
    try {
      for (const store of stores) expect(await store.start(5000)).toBe(true);
      await Promise.all([a!.start(), b!.start()]);
      await redis.kill();
      await waitFor(() => (stores[0]!.up ? undefined : true), 10_000, 'replica A sees Redis gone');
      const shifted = await a!.shift('twin', { stable: 70, canary: 30 }, 'key:ops', 'while away');
      expect(shifted.shared).toBe(false);
      expect(b!.state('twin')!.weights.canary).toBe(0);
      // A restart without persistence: Redis comes back empty, so only A can bring the shift.
      await redis.restart();
      await waitFor(() => (b!.state('twin')!.weights.canary === 30 ? true : undefined), 10_000, 'replica B applies the shift A made while Redis was away');
      expect(b!.state('twin')).toMatchObject({ version: 1, updatedBy: 'key:ops', reason: 'while away' });
    } finally {
      a!.close();
      b!.close();
      await Promise.all(stores.map((s) => s.close()));
    }
  });
});
