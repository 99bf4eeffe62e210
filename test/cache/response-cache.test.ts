import { Readable } from 'node:stream';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { CacheLookup, ResponseCache, type CacheStored } from '../../src/cache/index.js';
import type { RouteConfig } from '../../src/config/index.js';
import { createMetrics } from '../../src/metrics/registry.js';
import { MemoryStore } from '../../src/state/index.js';

const route = { id: 'r', prefix: '/x', service: 'twin', cache: { ttlSeconds: 60, perUser: false } } as unknown as RouteConfig;
const ORIGIN = 'http://gw.example';
const LIMITS = { enabled: true, staleSeconds: 60, maxEntryBytes: 1000, maxTotalBytes: 10_000 };

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

/** A clock the test moves by hand. */
function manualClock(start = 1_750_000_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

/** The upstream as the cache sees it: status, client headers, body. */
type Upstream = (request: FastifyRequest) => { status?: number; headers?: Record<string, string>; body: string };

/**
 * A route driven the way src/proxy/request-path.ts drives the cache: lookup, then answer()
 * or the upstream and storeAndSend(), release() at the end. `pick` chooses the replica.
 */
function serve(caches: ResponseCache[], routeConfig: RouteConfig, upstream: Upstream, pick: (request: FastifyRequest) => number = () => 0) {
  let calls = 0;
  let syncHits = 0;
  app = Fastify();
  app.decorateRequest('principal', null);
  app.get('/x/*', async (request, reply) => {
    const cache = caches[pick(request)]!;
    const looked = cache.lookup(request, routeConfig, ORIGIN);
    const lookup = looked instanceof Promise ? await looked : looked;
    if (lookup?.entry !== undefined && !(looked instanceof Promise)) syncHits += 1;
    if (lookup?.entry !== undefined) return cache.answer(request, reply, lookup);
    try {
      calls += 1;
      const answer = upstream(request);
      return await cache.storeAndSend(request, reply, lookup!, answer.status ?? 200, answer.headers ?? {}, Readable.from([Buffer.from(answer.body)]));
    } finally {
      if (lookup !== undefined) cache.release(lookup);
    }
  });
  return { calls: () => calls, syncHits: () => syncHits };
}

function newCache(limits = LIMITS, now?: () => number) {
  const metrics = createMetrics({ durationBuckets: [1], defaultMetrics: false });
  const keyv = new MemoryStore().cache<CacheStored>('responses');
  return { cache: new ResponseCache(limits, keyv, metrics, undefined, now ? { now } : {}), keyv, metrics };
}

describe('ResponseCache', () => {
  it('keeps the stored bytes within maxTotalBytes, evicting the oldest', async () => {
    const { cache } = newCache({ ...LIMITS, maxTotalBytes: 250 });
    const { calls } = serve([cache], route, () => ({ body: 'x'.repeat(100) }));
    for (const p of ['a', 'b', 'c']) expect((await app!.inject(`/x/${p}`)).headers['x-cache']).toBe('MISS');
    await cache.writesSettled();
    expect(cache.storedBytes).toBeLessThanOrEqual(250);
    expect((await app!.inject('/x/c')).headers['x-cache']).toBe('HIT');
    expect((await app!.inject('/x/a')).headers['x-cache']).toBe('MISS'); // evicted
    expect(calls()).toBe(4);
  });

  it('streams bodies over maxEntryBytes without storing them', async () => {
    const { cache } = newCache({ ...LIMITS, maxEntryBytes: 10 });
    const { calls } = serve([cache], route, () => ({ body: 'y'.repeat(50) }));
    const first = await app!.inject('/x/big');
    expect(first.body).toBe('y'.repeat(50));
    await cache.writesSettled();
    expect((await app!.inject('/x/big')).headers['x-cache']).toBe('MISS');
    expect(calls()).toBe(2);
  });

  it('coalesces concurrent misses of one key: they wait for the first one\'s answer until it is released', async () => {
    const { cache, metrics } = newCache();
    const request = { method: 'GET', url: '/x/same', headers: {}, principal: null, log: { warn() {} } } as unknown as FastifyRequest;
    const leader = await cache.lookup(request, route, ORIGIN)!;
    expect(leader.entry).toBeUndefined();
    // The others arrive while the first is still upstream.
    const waiting = Array.from({ length: 19 }, () => cache.lookup(request, route, ORIGIN) as Promise<CacheLookup>);
    const sent: unknown[] = [];
    const fakeReply = {
      code() {
        return this;
      },
      headers() {
        return this;
      },
      header() {
        return this;
      },
      send(body: unknown) {
        sent.push(body);
        return this;
      },
    };
    await cache.storeAndSend(request, fakeReply as never, leader, 200, { 'content-type': 'text/plain' }, Readable.from([Buffer.from('answer')]));
    const answered = await Promise.all(waiting);
    cache.release(leader);
    expect(sent).toHaveLength(1);
    expect(answered.every((l) => l.entry !== undefined && Buffer.from(l.entry.body, 'base64').toString() === 'answer')).toBe(true);
    const samples = (await metrics.registry.getSingleMetric('gateway_cache_requests_total')!.get()).values;
    const count = (result: string) => samples.find((s) => s.labels.result === result)?.value ?? 0;
    expect(count('miss')).toBe(1);
    expect(answered.filter((l) => l.result === 'coalesced' || l.result === 'hit')).toHaveLength(19);
  });

  it('a flight released without an answer sends its waiters upstream themselves', async () => {
    const { cache } = newCache();
    const request = { method: 'GET', url: '/x/failed', headers: {}, principal: null } as unknown as FastifyRequest;
    const leader = await cache.lookup(request, route, ORIGIN)!;
    const waiter = cache.lookup(request, route, ORIGIN) as Promise<CacheLookup>;
    cache.release(leader); // e.g. the upstream failed
    const second = await waiter;
    expect(second.entry).toBeUndefined();
    expect(second.store).toBe(true);
  });

  it('answers fresh hits from decoded entries without reading the Keyv again', async () => {
    const { cache, keyv } = newCache();
    let reads = 0;
    const get = keyv.get.bind(keyv);
    keyv.get = ((key: string) => {
      reads += 1;
      return get(key);
    }) as typeof keyv.get;
    serve([cache], route, () => ({ headers: { 'content-type': 'text/plain' }, body: 'hello' }));
    expect((await app!.inject('/x/a')).headers['x-cache']).toBe('MISS');
    await cache.writesSettled();
    const readsAfterMiss = reads;
    for (let i = 0; i < 5; i++) {
      const hit = await app!.inject('/x/a');
      expect(hit.headers['x-cache']).toBe('HIT');
      expect(hit.body).toBe('hello');
    }
    expect(reads).toBe(readsAfterMiss);
  });

  it('an authenticated client served a shared public entry reads the Keyv for its own entry once per lifetime, and takes its own once stored', async () => {
    const clock = manualClock();
    const { cache, keyv } = newCache(LIMITS, clock.now);
    const reads: string[] = [];
    const get = keyv.get.bind(keyv);
    keyv.get = ((key: string) => {
      reads.push(key);
      return get(key);
    }) as typeof keyv.get;
    const shortRoute = { ...route, cache: { ttlSeconds: 10, perUser: false } } as unknown as RouteConfig;
    let perUserAnswer = false;
    let version = 0;
    const { syncHits } = serve([cache], shortRoute, () => ({ headers: { 'cache-control': perUserAnswer ? 'max-age=10' : 'public, max-age=10' }, body: `v${++version}` }));
    app!.addHook('onRequest', (request, _reply, done) => {
      const user = request.headers['x-user'];
      if (typeof user === 'string') (request as { principal: unknown }).principal = { subject: user, kind: 'jwt', scopes: [] };
      done();
    });
    const as = (user: string) => app!.inject({ url: '/x/p', headers: { 'x-user': user } });
    expect((await as('ann')).headers['x-cache']).toBe('MISS');
    await cache.writesSettled();
    reads.length = 0;
    for (let i = 0; i < 4; i++) expect([(await as('ann')).headers['x-cache'], (await as('bob')).headers['x-cache']]).toEqual(['HIT', 'HIT']);
    // One read of each caller's own (absent) entry, then neither is read again while the shared one is fresh.
    expect(reads.length).toBe(2);
    expect(new Set(reads).size).toBe(2);
    // Those later hits came from the hot map without a promise: all but each caller's first.
    expect(syncHits()).toBe(6);
    // Past the lifetime the answer is no longer public (an authenticated request's is then per user): ann's own entry is stored and wins.
    clock.advance(10_500);
    perUserAnswer = true;
    const own = await as('ann');
    expect([own.headers['x-cache'], own.body]).toEqual(['MISS', 'v2']);
    await cache.writesSettled();
    const again = await as('ann');
    expect([again.headers['x-cache'], again.body]).toEqual(['HIT', 'v2']);
  });

  it('counts Age and lifetime on its clock', async () => {
    const clock = manualClock();
    const { cache } = newCache(LIMITS, clock.now);
    const { calls } = serve([cache], { ...route, cache: { ttlSeconds: 10, perUser: false } } as unknown as RouteConfig, () => ({ body: 'v' }));
    await app!.inject('/x/t');
    await cache.writesSettled();
    clock.advance(9_500);
    const hit = await app!.inject('/x/t');
    expect([hit.headers['x-cache'], hit.headers.age]).toEqual(['HIT', '9']);
    clock.advance(600); // 10.1 s: past the route's 10 s
    expect((await app!.inject('/x/t')).headers['x-cache']).toBe('MISS');
    expect(calls()).toBe(2);
  });

  it('finds what another replica stored in the shared Keyv, and its newer entry once this one expires', async () => {
    const clock = manualClock();
    const metrics = createMetrics({ durationBuckets: [1], defaultMetrics: false });
    const keyv = new MemoryStore().cache<CacheStored>('responses');
    const shortRoute = { ...route, cache: { ttlSeconds: 1, perUser: false } } as unknown as RouteConfig;
    const replicas = [new ResponseCache(LIMITS, keyv, metrics, undefined, { now: clock.now }), new ResponseCache(LIMITS, keyv, metrics, undefined, { now: clock.now })];
    let version = 0;
    // The replica is picked by a header so that both see the same URL (the cache key).
    serve(replicas, shortRoute, () => ({ body: `v${++version}` }), (request) => Number(request.headers['x-replica']));
    expect((await app!.inject({ url: '/x/k', headers: { 'x-replica': '0' } })).body).toBe('v1');
    await replicas[0]!.writesSettled();
    const other = await app!.inject({ url: '/x/k', headers: { 'x-replica': '1' } });
    expect([other.headers['x-cache'], other.body]).toEqual(['HIT', 'v1']);
    // After the lifetime: replica 1 refreshes it; replica 0 must see v2, not its own old copy.
    clock.advance(1100);
    expect((await app!.inject({ url: '/x/k', headers: { 'x-replica': '1' } })).body).toBe('v2');
    await replicas[1]!.writesSettled();
    const zero = await app!.inject({ url: '/x/k', headers: { 'x-replica': '0' } });
    expect([zero.headers['x-cache'], zero.body]).toEqual(['HIT', 'v2']);
  });
});
