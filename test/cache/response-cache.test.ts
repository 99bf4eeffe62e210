import { Readable } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Dispatcher } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { ResponseCache, type CacheStored, type Respond } from '../../src/cache/index.js';
import type { RouteConfig } from '../../src/config/index.js';
import { createMetrics } from '../../src/metrics/registry.js';
import { MemoryStore } from '../../src/state/index.js';

const route = { id: 'r', prefix: '/x', service: 'twin', cache: { ttlSeconds: 60, perUser: false } } as unknown as RouteConfig;

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

function setup(limits: { maxEntryBytes: number; maxTotalBytes: number }, bodyOf: (url: string) => string, delayMs = 0) {
  const metrics = createMetrics({ durationBuckets: [1], defaultMetrics: false });
  const store = new MemoryStore();
  const cache = new ResponseCache({ enabled: true, staleSeconds: 60, ...limits }, store.cache<CacheStored>('responses'), metrics);
  let calls = 0;
  app = Fastify();
  app.decorateRequest('principal', null);
  app.get('/x/*', (request, reply) =>
    cache.handle(request, reply, route, async (respond: Respond | undefined) => {
      calls += 1;
      if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
      const body = bodyOf(request.url);
      const response = { statusCode: 200, headers: { 'content-type': 'text/plain' }, body: Readable.from([Buffer.from(body)]) } as unknown as Dispatcher.ResponseData;
      return respond!(reply, response);
    }),
  );
  return { cache, calls: () => calls };
}

describe('ResponseCache', () => {
  it('keeps the stored bytes within maxTotalBytes, evicting the oldest', async () => {
    const { cache, calls } = setup({ maxEntryBytes: 1000, maxTotalBytes: 250 }, () => 'x'.repeat(100));
    for (const p of ['a', 'b', 'c']) expect((await app!.inject(`/x/${p}`)).headers['x-cache']).toBe('MISS');
    await new Promise((r) => setTimeout(r, 10));
    expect(cache.storedBytes).toBeLessThanOrEqual(250);
    expect((await app!.inject('/x/c')).headers['x-cache']).toBe('HIT');
    expect((await app!.inject('/x/a')).headers['x-cache']).toBe('MISS'); // evicted
    expect(calls()).toBe(4);
  });

  it('streams bodies over maxEntryBytes without storing them', async () => {
    const { calls } = setup({ maxEntryBytes: 10, maxTotalBytes: 1000 }, () => 'y'.repeat(50));
    const first = await app!.inject('/x/big');
    expect(first.body).toBe('y'.repeat(50));
    expect((await app!.inject('/x/big')).headers['x-cache']).toBe('MISS');
    expect(calls()).toBe(2);
  });

  it('coalesces concurrent misses of one key', async () => {
    const { calls } = setup({ maxEntryBytes: 1000, maxTotalBytes: 100_000 }, (url) => url, 50);
    const all = await Promise.all(Array.from({ length: 20 }, () => app!.inject('/x/same')));
    expect(all.every((r) => r.body === '/x/same')).toBe(true);
    expect(calls()).toBe(1);
  });

  it('answers fresh hits from decoded entries without reading the Keyv again', async () => {
    const metrics = createMetrics({ durationBuckets: [1], defaultMetrics: false });
    const keyv = new MemoryStore().cache<CacheStored>('responses');
    let reads = 0;
    const get = keyv.get.bind(keyv);
    keyv.get = ((key: string) => {
      reads += 1;
      return get(key);
    }) as typeof keyv.get;
    const cache = new ResponseCache({ enabled: true, staleSeconds: 60, maxEntryBytes: 1000, maxTotalBytes: 10_000 }, keyv, metrics);
    app = Fastify();
    app.decorateRequest('principal', null);
    app.get('/x/*', (request, reply) =>
      cache.handle(request, reply, route, async (respond) => {
        const response = { statusCode: 200, headers: { 'content-type': 'text/plain' }, body: Readable.from([Buffer.from('hello')]) } as unknown as Dispatcher.ResponseData;
        return respond!(reply, response);
      }),
    );
    expect((await app.inject('/x/a')).headers['x-cache']).toBe('MISS');
    await new Promise((r) => setTimeout(r, 10));
    const readsAfterMiss = reads;
    for (let i = 0; i < 5; i++) {
      const hit = await app.inject('/x/a');
      expect(hit.headers['x-cache']).toBe('HIT');
      expect(hit.body).toBe('hello');
    }
    expect(reads).toBe(readsAfterMiss);
  });

  it('finds what another replica stored in the shared Keyv, and its newer entry once this one expires', async () => {
    const metrics = createMetrics({ durationBuckets: [1], defaultMetrics: false });
    const keyv = new MemoryStore().cache<CacheStored>('responses');
    const shortRoute = { ...route, cache: { ttlSeconds: 1, perUser: false } } as unknown as RouteConfig;
    const limits = { enabled: true, staleSeconds: 60, maxEntryBytes: 1000, maxTotalBytes: 10_000 };
    const replicas = [new ResponseCache(limits, keyv, metrics), new ResponseCache(limits, keyv, metrics)];
    let version = 0;
    app = Fastify();
    app.decorateRequest('principal', null);
    // The replica is picked by a header so that both see the same URL (the cache key).
    app.get('/x/*', (request, reply) =>
      replicas[Number(request.headers['x-replica'])]!.handle(request, reply, shortRoute, async (respond) => {
        version += 1;
        const response = { statusCode: 200, headers: {}, body: Readable.from([Buffer.from(`v${version}`)]) } as unknown as Dispatcher.ResponseData;
        return respond!(reply, response);
      }),
    );
    expect((await app.inject({ url: '/x/k', headers: { 'x-replica': '0' } })).body).toBe('v1');
    await new Promise((r) => setTimeout(r, 10));
    const other = await app.inject({ url: '/x/k', headers: { 'x-replica': '1' } });
    expect([other.headers['x-cache'], other.body]).toEqual(['HIT', 'v1']);
    // After the lifetime: replica 1 refreshes it; replica 0 must see v2, not its own old copy.
    await new Promise((r) => setTimeout(r, 1100));
    expect((await app.inject({ url: '/x/k', headers: { 'x-replica': '1' } })).body).toBe('v2');
    await new Promise((r) => setTimeout(r, 10));
    const zero = await app.inject({ url: '/x/k', headers: { 'x-replica': '0' } });
    expect([zero.headers['x-cache'], zero.body]).toEqual(['HIT', 'v2']);
  });
});
