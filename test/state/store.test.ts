import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStore } from '../../src/state/memory.js';
import { RedisStore, type StoreLogger } from '../../src/state/redis.js';
import type { StateStore, StoreMessage } from '../../src/state/store.js';
import { cleanup, sleep, waitFor } from '../helpers/gateway.js';
import { describeWithRedis, startRedis, type RedisServer } from '../helpers/redis.js';

interface LogEntry {
  level: 'info' | 'warn' | 'debug';
  msg: string;
}
function recordingLogger(): StoreLogger & { entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  return {
    entries,
    info: (_o, msg) => entries.push({ level: 'info', msg }),
    warn: (_o, msg) => entries.push({ level: 'warn', msg }),
    debug: (_o, msg) => entries.push({ level: 'debug', msg }),
  };
}

afterAll(cleanup);

/** The behaviour both stores share, on real time with short windows. */
function contract(name: string, make: () => Promise<StateStore>) {
  describe(`${name}: StateStore contract`, () => {
    let store: StateStore;
    beforeAll(async () => {
      store = await make();
    });
    afterAll(() => store.close());
    const unique = () => `t${Math.random().toString(36).slice(2)}`;

    it('sliding window: refuses past the limit and tells remaining and reset', async () => {
      const key = unique();
      const results = [];
      for (let i = 0; i < 4; i++) results.push(await store.hit(key, 3, 60_000));
      expect(results.map((r) => r.allowed)).toEqual([true, true, true, false]);
      expect(results.map((r) => r.remaining)).toEqual([2, 1, 0, 0]);
      for (const r of results) {
        expect(r.limit).toBe(3);
        expect(r.resetMs).toBeGreaterThan(59_000);
        expect(r.resetMs).toBeLessThanOrEqual(60_000);
      }
    });

    it('sliding window: a hit leaves the window after windowMs, not at a fixed edge', async () => {
      // A 2 s window and sleeps with hundreds of ms to spare: a busy machine oversleeps.
      const key = unique();
      expect((await store.hit(key, 2, 2000)).allowed).toBe(true);
      await sleep(1000);
      expect((await store.hit(key, 2, 2000)).allowed).toBe(true);
      expect((await store.hit(key, 2, 2000)).allowed).toBe(false);
      await sleep(1100); // the first hit (t=0) has left, the second (t=1000) has not
      const again = await store.hit(key, 2, 2000);
      expect(again.allowed).toBe(true);
      expect(again.remaining).toBe(0);
      expect((await store.hit(key, 2, 2000)).allowed).toBe(false);
    });

    it('a tighter limit on the same key refuses once the window holds that many', async () => {
      const key = unique();
      for (let i = 0; i < 3; i++) expect((await store.hit(key, 10, 60_000)).allowed).toBe(true);
      expect((await store.hit(key, 3, 60_000)).allowed).toBe(false);
      expect((await store.hit(key, 10, 60_000)).allowed).toBe(true);
    });

    it('decaying score: adds, halves per half-life, counts distinct members once', async () => {
      const key = unique();
      const first = await store.addScore(key, 10, { halfLifeMs: 60_000 });
      expect(first.before).toBe(0);
      expect(first.after).toBeCloseTo(10, 1);
      const a = await store.addScore(key, 5, { halfLifeMs: 60_000, distinct: '/a' });
      const again = await store.addScore(key, 5, { halfLifeMs: 60_000, distinct: '/a' });
      expect(a.after).toBeCloseTo(15, 1);
      expect(again.after).toBeCloseTo(a.after, 1);
      const decaying = unique();
      await store.addScore(decaying, 100, { halfLifeMs: 200 });
      await sleep(200);
      const later = await store.addScore(decaying, 0, { halfLifeMs: 200 });
      expect(later.before).toBeLessThan(60);
      expect(later.before).toBeGreaterThan(20);
      await store.setScore(decaying, 0, 200);
      expect((await store.addScore(decaying, 0, { halfLifeMs: 200 })).before).toBe(0);
      await store.setScore(decaying, 42, 60_000);
      expect((await store.addScore(decaying, 0, { halfLifeMs: 60_000 })).before).toBeCloseTo(42, 1);
    });

    it('counters expire after their ttl', async () => {
      const key = unique();
      expect(await store.increment(key, 200)).toBe(1);
      expect(await store.increment(key, 200)).toBe(2);
      await sleep(300);
      expect(await store.increment(key, 200)).toBe(1);
      await store.deleteCounter(key);
      expect(await store.increment(key, 200)).toBe(1);
    });

    it('claims: one taker until it expires or is released; the others learn how long it stays held', async () => {
      const key = unique();
      const first = await store.claim(key, 60_000);
      expect(first).toMatchObject({ claimed: true, ttlMs: 60_000 });
      const second = await store.claim(key, 1000);
      expect(second.claimed).toBe(false);
      expect(second.ttlMs).toBeGreaterThan(58_000);
      expect(second.ttlMs).toBeLessThanOrEqual(60_000);
      await store.release(key);
      expect((await store.claim(key, 200)).claimed).toBe(true);
      expect((await store.claim(key, 200)).claimed).toBe(false);
      await sleep(300);
      expect((await store.claim(key, 200)).claimed).toBe(true);
      await store.release(unique()); // releasing what nobody holds is harmless
    });

    it('claims: exactly one of many concurrent callers takes a key', async () => {
      const key = unique();
      const results = await Promise.all(Array.from({ length: 50 }, () => store.claim(key, 60_000)));
      expect(results.filter((r) => r.claimed)).toHaveLength(1);
    });

    it('expiring sets: put, list (soonest first), delete, expire', async () => {
      const set = unique();
      await store.putEntry(set, 'a', 'A', 60_000);
      await store.putEntry(set, 'b', 'B', 200);
      const listed = await store.listEntries(set);
      expect(listed.map((e) => [e.id, e.value])).toEqual([
        ['b', 'B'],
        ['a', 'A'],
      ]);
      expect(listed[1]!.ttlMs).toBeGreaterThan(59_000);
      await sleep(300);
      expect((await store.listEntries(set)).map((e) => e.id)).toEqual(['a']);
      expect(await store.deleteEntry(set, 'a')).toBe(true);
      expect(await store.deleteEntry(set, 'a')).toBe(false);
      expect(await store.listEntries(set)).toEqual([]);
    });

    it('expiring sets: replaceEntry is a compare-and-set on the stored value', async () => {
      const set = unique();
      expect(await store.replaceEntry(set, 'm', null, 'v1', 60_000)).toBe(true);
      expect(await store.replaceEntry(set, 'm', null, 'other', 60_000)).toBe(false);
      expect(await store.replaceEntry(set, 'm', 'v0', 'v2', 60_000)).toBe(false);
      expect(await store.replaceEntry(set, 'm', 'v1', 'v2', 60_000)).toBe(true);
      expect((await store.listEntries(set)).map((e) => e.value)).toEqual(['v2']);
      await store.putEntry(set, 'gone', 'x', 100);
      await sleep(200);
      // An expired entry counts as absent.
      expect(await store.replaceEntry(set, 'gone', 'x', 'y', 60_000)).toBe(false);
      expect(await store.replaceEntry(set, 'gone', null, 'y', 60_000)).toBe(true);
    });

    it('publishes to its own subscribers, marked as self', async () => {
      const got: StoreMessage[] = [];
      const off = store.subscribe('test-topic', (m) => got.push(m));
      await store.publish('test-topic', { n: 1 });
      await waitFor(() => (got.length > 0 ? true : undefined), 2000, 'own message');
      off();
      expect(got[0]).toEqual({ topic: 'test-topic', data: { n: 1 }, self: true });
    });

    it('gives a Keyv cache', async () => {
      const cache = store.cache<{ v: number }>(unique());
      await cache.set('k', { v: 1 }, 60_000);
      expect(await cache.get('k')).toEqual({ v: 1 });
      expect(await cache.get('missing')).toBeUndefined();
    });
  });
}

contract('memory', async () => new MemoryStore());

describe('MemoryStore', () => {
  it('stays bounded whatever keys clients cause', async () => {
    let now = 0;
    const store = new MemoryStore({ now: () => now, maxKeys: 100, sweepIntervalMs: 0 });
    for (let i = 0; i < 1000; i++) store.hitSync(`k${i}`, 10, 1000);
    expect((store as unknown as { windows: Map<string, unknown> }).windows.size).toBeLessThanOrEqual(100);
    now = 5000;
    store.sweep();
    expect((store as unknown as { windows: Map<string, unknown> }).windows.size).toBe(0);
    await store.close();
  });

  it('never tells a reset past the window (floating-point clocks: now + 60000 - now can exceed 60000)', async () => {
    // Clock values for which (now + 60000) - now rounds above 60000 in double precision.
    for (const at of [130437.41469442983, 2081589.0690583193, 2038002.2176984537]) {
      const store = new MemoryStore({ now: () => at, sweepIntervalMs: 0 });
      const first = store.hitSync('k', 3, 60_000);
      expect(first.resetMs).toBe(60_000);
      expect(store.hitSync('k', 3, 60_000).resetMs).toBe(60_000);
      await store.close();
    }
  });

  it('decides in well under 20 µs per hit', () => {
    const store = new MemoryStore({ sweepIntervalMs: 0 });
    const n = 100_000;
    const started = performance.now();
    for (let i = 0; i < n; i++) store.hitSync(`ip:10.0.${i % 250}.${i % 7}`, 1000, 60_000);
    const perHitUs = ((performance.now() - started) * 1000) / n;
    // Generous bound for a noisy shared machine; bench/ratelimit.ts measures precisely.
    expect(perHitUs).toBeLessThan(20);
  });
});

describeWithRedis('RedisStore against a real redis-server', () => {
  let redis: RedisServer;
  const stores: RedisStore[] = [];
  const log = recordingLogger();
  async function replica(options: { commandTimeoutMs?: number; keyPrefix?: string; log?: StoreLogger } = {}): Promise<RedisStore> {
    const store = new RedisStore({
      url: redis.url,
      keyPrefix: options.keyPrefix ?? 'test:',
      // Generous by default: on a busy machine a 50 ms stall would make a call local (tested on its own below).
      commandTimeoutMs: options.commandTimeoutMs ?? 1000,
      log: options.log ?? log,
      suspendMs: 200,
      maxReconnectDelayMs: 200,
    });
    stores.push(store);
    expect(await store.start(5000)).toBe(true);
    return store;
  }

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()));
  });

  contract('redis', () => replica());

  it('is exact across replicas: 300 concurrent hits on 3 clients, limit 100 -> exactly 100 allowed', async () => {
    const replicas = [await replica(), await replica(), await replica()];
    const decisions = await Promise.all(Array.from({ length: 300 }, (_, i) => replicas[i % 3]!.hit('exact', 100, 60_000)));
    expect(decisions.filter((d) => d.allowed)).toHaveLength(100);
    expect(decisions.every((d) => d.shared)).toBe(true);
    const remaining = decisions.filter((d) => d.allowed).map((d) => d.remaining).sort((a, b) => a - b);
    expect(remaining).toEqual(Array.from({ length: 100 }, (_, i) => i));
  });

  it('a claim is exact across replicas: 90 concurrent claims of one key on 3 clients -> exactly one taker', async () => {
    const replicas = [await replica(), await replica(), await replica()];
    const results = await Promise.all(Array.from({ length: 90 }, (_, i) => replicas[i % 3]!.claim('claimed-once', 60_000)));
    expect(results.filter((r) => r.claimed)).toHaveLength(1);
    expect(results.every((r) => r.shared)).toBe(true);
    await replicas[1]!.release('claimed-once');
    expect((await replicas[2]!.claim('claimed-once', 60_000)).claimed).toBe(true);
  });

  it('replaceEntry is exact across replicas: 60 concurrent compare-and-sets from one value -> exactly one wins', async () => {
    const replicas = [await replica(), await replica(), await replica()];
    expect(await replicas[0]!.replaceEntry('cas-test', 'm', null, 'v0', 60_000)).toBe(true);
    const results = await Promise.all(Array.from({ length: 60 }, (_, i) => replicas[i % 3]!.replaceEntry('cas-test', 'm', 'v0', `v-${i}`, 60_000)));
    expect(results.filter(Boolean)).toHaveLength(1);
    const winner = results.indexOf(true);
    expect((await replicas[2]!.listEntries('cas-test')).map((e) => e.value)).toEqual([`v-${winner}`]);
  });

  it('scripts survive SCRIPT FLUSH (EVALSHA falls back to EVAL on NOSCRIPT)', async () => {
    const store = await replica();
    expect((await store.hit('flush', 5, 60_000)).shared).toBe(true);
    expect(await redis.command('SCRIPT FLUSH')).toBe('+OK');
    const after = await store.hit('flush', 5, 60_000);
    expect(after).toMatchObject({ allowed: true, remaining: 3, shared: true });
  });

  it('delivers a message published on one replica to the others within a second', async () => {
    const a = await replica();
    const b = await replica();
    const got: StoreMessage[] = [];
    b.subscribe('weights', (m) => got.push(m));
    const started = performance.now();
    await a.publish('weights', { stable: 90, canary: 10 });
    await waitFor(() => (got.length > 0 ? true : undefined), 1000, 'message on the other replica', 5);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(got[0]).toEqual({ topic: 'weights', data: { stable: 90, canary: 10 }, self: false });
  });

  it('keeps keys under its prefix', async () => {
    const store = await replica({ keyPrefix: 'other-gw:' });
    await store.hit('prefixed', 5, 60_000);
    expect(await redis.command('EXISTS other-gw:rl:prefixed')).toBe(':1');
    expect(await redis.command('EXISTS test:rl:prefixed')).toBe(':0');
  });

  it('a hung Redis costs one command timeout, then calls are answered locally until it answers again', async () => {
    const store = await replica({ commandTimeoutMs: 50 });
    const changes: boolean[] = [];
    store.onStatusChange((up) => changes.push(up));
    process.kill(redis.pid()!, 'SIGSTOP');
    try {
      const t0 = performance.now();
      const first = await store.hit('hung', 5, 60_000);
      const firstMs = performance.now() - t0;
      expect(first.shared).toBe(false);
      expect(firstMs).toBeLessThan(1000); // 50 ms timeout plus scheduling noise
      expect(store.up).toBe(false);
      const t1 = performance.now();
      for (let i = 0; i < 20; i++) expect((await store.hit('hung', 5, 60_000)).shared).toBe(false);
      expect(performance.now() - t1).toBeLessThan(200); // no waiting while suspended
    } finally {
      process.kill(redis.pid()!, 'SIGCONT');
    }
    await waitFor(() => (store.up ? true : undefined), 5000, 'store up after SIGCONT');
    expect((await store.hit('hung2', 5, 60_000)).shared).toBe(true);
    expect(changes).toEqual([false, true]);
  });

  it('a hung Redis makes a cache call a miss after one command timeout (not a wait for ever), and the calls after it misses at once', async () => {
    const store = await replica({ commandTimeoutMs: 50 });
    const cache = store.cache<string>('hung-cache');
    expect(await cache.set('k', 'v')).toBe(true);
    expect(await cache.get('k')).toBe('v');
    process.kill(redis.pid()!, 'SIGSTOP');
    try {
      const t0 = performance.now();
      // Without a timer of our own, node-redis waits for the answer as long as the socket stays open.
      const outcome = await Promise.race([cache.get('k'), new Promise((r) => setTimeout(() => r('still waiting after 5 s'), 5000))]);
      expect(outcome).toBeUndefined();
      expect(performance.now() - t0).toBeLessThan(1000); // 50 ms timeout (re-armed at most twice when late) plus scheduling noise
      expect(store.up).toBe(false);
      const t1 = performance.now();
      for (let i = 0; i < 20; i++) {
        expect(await cache.get('k')).toBeUndefined();
        expect(await cache.set(`k${i}`, 'v')).toBe(false);
      }
      expect(performance.now() - t1).toBeLessThan(200); // not tried while Redis is away
    } finally {
      process.kill(redis.pid()!, 'SIGCONT');
    }
    await waitFor(() => (store.up ? true : undefined), 5000, 'store up after SIGCONT');
    expect(await cache.get('k')).toBe('v');
  });

  it('a busy event loop is not a Redis outage: a command issued just before 150 ms of synchronous work still answers from Redis', async () => {
    const store = await replica({ commandTimeoutMs: 50 });
    const changes: boolean[] = [];
    store.onStatusChange((up) => changes.push(up));
    for (let round = 0; round < 3; round++) {
      const pending = store.hit(`busy-${round}`, 5, 60_000);
      const until = performance.now() + 150;
      while (performance.now() < until) {
        // a long synchronous stretch (start-up, a GC pause): the command is not even written yet
      }
      expect((await pending).shared).toBe(true);
    }
    expect(store.up).toBe(true);
    expect(changes).toEqual([]);
  });

  it('starts without Redis (start-up does not wait past its deadline) and switches to it when it appears', async () => {
    await redis.kill();
    const log2 = recordingLogger();
    const store = new RedisStore({ url: redis.url, keyPrefix: 'late:', commandTimeoutMs: 1000, log: log2, maxReconnectDelayMs: 100 });
    stores.push(store);
    const started = performance.now();
    expect(await store.start(300)).toBe(false);
    expect(performance.now() - started).toBeLessThan(1500);
    expect((await store.hit('late', 5, 60_000)).shared).toBe(false);
    expect(log2.entries.filter((e) => e.level === 'warn')).toHaveLength(1);
    await redis.restart();
    await waitFor(() => (store.up ? true : undefined), 10_000, 'store up once Redis runs');
    expect((await store.hit('late', 5, 60_000)).shared).toBe(true);
    // The subscription queued while Redis was away went through once it came.
    const got: StoreMessage[] = [];
    store.subscribe('late-topic', (m) => got.push(m));
    await store.publish('late-topic', 'hello');
    await waitFor(() => (got.length > 0 ? true : undefined), 2000, 'message through Redis');
    expect(got[0]).toEqual({ topic: 'late-topic', data: 'hello', self: true });
  });

  it('Redis killed: answers at once from memory, logs once, reconnects by itself when it is back', async () => {
    const logA = recordingLogger();
    const a = await replica({ log: logA });
    const b = await replica();
    const changes: boolean[] = [];
    a.onStatusChange((up) => changes.push(up));
    await a.putEntry('blocks-test', 'client-1', 'x', 60_000);

    await redis.kill();
    await waitFor(() => (!a.up && !b.up ? true : undefined), 5000, 'both replicas see Redis down');
    const t0 = performance.now();
    const local = await Promise.all(Array.from({ length: 30 }, () => a.hit('down', 10, 60_000)));
    expect(performance.now() - t0).toBeLessThan(200);
    expect(local.every((d) => !d.shared)).toBe(true);
    expect(local.filter((d) => d.allowed)).toHaveLength(10); // per-replica limit still applies
    // Local memory still knows what this replica wrote.
    expect((await a.listEntries('blocks-test')).map((e) => e.id)).toEqual(['client-1']);
    // One warning for the change, not one per call.
    expect(logA.entries.filter((e) => e.level === 'warn').map((e) => e.msg)).toEqual([
      'state store unreachable: falling back to per-replica limits until it is back',
    ]);

    await redis.restart();
    await waitFor(() => (a.up && b.up ? true : undefined), 10_000, 'both replicas reconnect');
    const shared = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? a : b).hit('down-after', 10, 60_000)));
    expect(shared.every((d) => d.shared)).toBe(true);
    expect(shared.filter((d) => d.allowed)).toHaveLength(10);
    expect(changes).toEqual([false, true]);
    expect(logA.entries.filter((e) => e.level === 'info').map((e) => e.msg)).toEqual([
      'state store reachable: rate limits and blocks are shared across replicas',
      'state store reachable: rate limits and blocks are shared across replicas',
    ]);
    // Pub/sub works again after the reconnection.
    const got: StoreMessage[] = [];
    b.subscribe('after-restart', (m) => got.push(m));
    await a.publish('after-restart', 1);
    await waitFor(() => (got.length > 0 ? true : undefined), 2000, 'message after reconnection');
  });
});
