import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/auth/api-keys.js';
import { cleanup, startGateway, type GatewayProcess } from '../helpers/gateway.js';
import { call } from '../helpers/http.js';
import { parsePrometheusText } from '../helpers/prometheus.js';
import { describeWithRedis, startRedis } from '../helpers/redis.js';
import { testServer } from '../helpers/upstreams.js';

/*
 * The response cache (src/cache) against a real upstream whose answers say what may be
 * cached; `hits` counts the upstream calls per path.
 */

const READER_KEY = 'cache-reader-key-0123456789abcdef';
const WRITER_KEY = 'cache-writer-key-0123456789abcdef';
const LAST_MODIFIED = 'Wed, 01 Jan 2025 00:00:00 GMT';

let gw: GatewayProcess;
const hits = new Map<string, number>();

function count(path: string): number {
  return hits.get(path) ?? 0;
}

beforeAll(async () => {
  const twin = await testServer((req, res) => {
    const url = req.url ?? '/';
    const path = url.split('?')[0]!;
    const n = count(path) + 1;
    hits.set(path, n);
    const headers: Record<string, string | string[]> = { 'content-type': 'application/json' };
    const body = { path, n, lang: req.headers['accept-language'] ?? null, principal: req.headers['x-gateway-principal'] ?? null };
    if (path === '/health') return res.writeHead(200).end('{}');
    if (path.startsWith('/v1/twin/max-age')) Object.assign(headers, { 'cache-control': 'max-age=60', etag: '"v1"', 'last-modified': LAST_MODIFIED });
    else if (path === '/v1/twin/no-store') headers['cache-control'] = 'no-store, max-age=60';
    else if (path === '/v1/twin/private') headers['cache-control'] = 'private, max-age=60';
    else if (path === '/v1/twin/cookie') Object.assign(headers, { 'cache-control': 'max-age=60', 'set-cookie': 'session=abc' });
    else if (path === '/v1/twin/vary') Object.assign(headers, { 'cache-control': 'max-age=60', vary: 'Accept-Language' });
    else if (path === '/v1/twin/public') headers['cache-control'] = 'public, max-age=60';
    else if (path === '/v1/twin/big') headers['cache-control'] = 'max-age=60';
    else if (path === '/v1/twin/slow') {
      headers['cache-control'] = 'max-age=60';
      setTimeout(() => res.writeHead(200, headers).end(JSON.stringify(body)), 300);
      return;
    }
    if (path === '/v1/twin/big') return res.writeHead(200, headers).end('x'.repeat(4096));
    res.writeHead(200, headers).end(JSON.stringify(body));
  });
  gw = await startGateway({
    env: { TWIN_SERVICE_URL: twin.url },
    yaml: [
      'health:',
      '  intervalMs: 60000',
      'cache:',
      '  maxEntryBytes: 2048',
      'auth:',
      '  apiKeys:',
      `    - { name: reader, sha256: ${sha256Hex(READER_KEY)}, scopes: [read] }`,
      `    - { name: writer, sha256: ${sha256Hex(WRITER_KEY)}, scopes: [read, write] }`,
      'routes:',
      '  - { id: twin-ttl, prefix: /v1/twin/ttl, service: twin, cache: { ttlSeconds: 60 } }',
      '  - { id: twin-mine, prefix: /v1/twin/mine, service: twin, cache: { ttlSeconds: 60, perUser: true } }',
      '  - { id: twin-open, prefix: /v1/twin/open, service: twin, auth: { required: false }, cache: { ttlSeconds: 60 } }',
      '  - { id: twin-never, prefix: /v1/twin/never, service: twin, cache: false }',
      '',
    ].join('\n'),
  });
});

afterAll(cleanup);

describe('response cache', () => {
  it('stores what the upstream allows: MISS, then HIT with Age and the same body', async () => {
    const first = await call(`${gw.url}/v1/twin/max-age?b=2&a=1`);
    expect(first.status).toBe(200);
    expect(first.headers['x-cache']).toBe('MISS');
    const second = await call(`${gw.url}/v1/twin/max-age?a=1&b=2`); // the query sorted: the same key
    expect(second.status).toBe(200);
    expect(second.headers['x-cache']).toBe('HIT');
    expect(second.headers.age).toMatch(/^\d+$/);
    expect(second.json()).toEqual(first.json());
    expect(second.headers.etag).toBe('"v1"');
    expect(count('/v1/twin/max-age')).toBe(1);
    const head = await call(`${gw.url}/v1/twin/max-age?a=1&b=2`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers['x-cache']).toBe('HIT');
    expect(count('/v1/twin/max-age')).toBe(1);
  });

  it('answers 304 for a matching If-None-Match or If-Modified-Since', async () => {
    await call(`${gw.url}/v1/twin/max-age/cond`);
    const byEtag = await call(`${gw.url}/v1/twin/max-age/cond`, { headers: { 'if-none-match': 'W/"v1"' } });
    expect(byEtag.status).toBe(304);
    expect(byEtag.text).toBe('');
    expect(byEtag.headers.etag).toBe('"v1"');
    expect(byEtag.headers['x-cache']).toBe('HIT');
    const byDate = await call(`${gw.url}/v1/twin/max-age/cond`, { headers: { 'if-modified-since': LAST_MODIFIED } });
    expect(byDate.status).toBe(304);
    const other = await call(`${gw.url}/v1/twin/max-age/cond`, { headers: { 'if-none-match': '"v0"' } });
    expect(other.status).toBe(200);
    expect(count('/v1/twin/max-age/cond')).toBe(1);
  });

  it('never stores no-store, private or Set-Cookie answers', async () => {
    for (const path of ['/v1/twin/no-store', '/v1/twin/private', '/v1/twin/cookie']) {
      await call(`${gw.url}${path}`);
      const again = await call(`${gw.url}${path}`);
      expect(again.headers['x-cache']).not.toBe('HIT');
      expect(count(path)).toBe(2);
    }
  });

  it('keys on the headers named by Vary', async () => {
    const en = await call(`${gw.url}/v1/twin/vary`, { headers: { 'accept-language': 'en' } });
    const de = await call(`${gw.url}/v1/twin/vary`, { headers: { 'accept-language': 'de' } });
    expect(en.json().lang).toBe('en');
    expect(de.json().lang).toBe('de');
    const enAgain = await call(`${gw.url}/v1/twin/vary`, { headers: { 'accept-language': 'en' } });
    expect(enAgain.headers['x-cache']).toBe('HIT');
    expect(enAgain.json().lang).toBe('en');
    expect(count('/v1/twin/vary')).toBe(2);
  });

  it('Cache-Control: no-cache on the request goes upstream (and refreshes the entry)', async () => {
    await call(`${gw.url}/v1/twin/max-age/fresh`);
    const bypass = await call(`${gw.url}/v1/twin/max-age/fresh`, { headers: { 'cache-control': 'no-cache' } });
    expect(bypass.headers['x-cache']).toBe('MISS');
    expect(bypass.json().n).toBe(2);
    await new Promise((r) => setTimeout(r, 50));
    const after = await call(`${gw.url}/v1/twin/max-age/fresh`);
    expect(after.headers['x-cache']).toBe('HIT');
    expect(after.json().n).toBe(2);
  });

  it('a route TTL caches without upstream Cache-Control; cache: false never caches', async () => {
    await call(`${gw.url}/v1/twin/ttl/a`);
    expect((await call(`${gw.url}/v1/twin/ttl/a`)).headers['x-cache']).toBe('HIT');
    expect(count('/v1/twin/ttl/a')).toBe(1);
    await call(`${gw.url}/v1/twin/never/max-age`);
    const never = await call(`${gw.url}/v1/twin/never/max-age`);
    expect(never.headers['x-cache']).toBeUndefined();
    expect(count('/v1/twin/never/max-age')).toBe(2);
  });

  it("never serves one principal's answer to another; public answers are shared", async () => {
    const reader = await call(`${gw.url}/v1/twin/mine/x`, { headers: { 'x-api-key': READER_KEY } });
    const writer = await call(`${gw.url}/v1/twin/mine/x`, { headers: { 'x-api-key': WRITER_KEY } });
    // The upstream knows the caller by the gateway's identity headers (the key itself never reaches it).
    expect(reader.json().principal).toBe('key:reader');
    expect(writer.json().principal).toBe('key:writer');
    expect(writer.headers['x-cache']).toBe('MISS');
    const readerAgain = await call(`${gw.url}/v1/twin/mine/x`, { headers: { 'x-api-key': READER_KEY } });
    expect(readerAgain.headers['x-cache']).toBe('HIT');
    expect(readerAgain.json().principal).toBe('key:reader');
    expect(count('/v1/twin/mine/x')).toBe(2);
    // Authenticated, upstream max-age without `public`: per principal as well.
    await call(`${gw.url}/v1/twin/max-age/user`, { headers: { 'x-api-key': READER_KEY } });
    const other = await call(`${gw.url}/v1/twin/max-age/user`, { headers: { 'x-api-key': WRITER_KEY } });
    expect(other.headers['x-cache']).toBe('MISS');
    expect(count('/v1/twin/max-age/user')).toBe(2);
    // Anonymous answers are not served to authenticated callers, and vice versa.
    await call(`${gw.url}/v1/twin/open/a`, { anonymous: true });
    expect((await call(`${gw.url}/v1/twin/open/a`, { anonymous: true })).headers['x-cache']).toBe('HIT');
    // (On a route without authentication, a request with credentials is never cached nor answered from the cache.)
    const withKey = await call(`${gw.url}/v1/twin/open/a`, { headers: { 'x-api-key': READER_KEY } });
    expect(withKey.headers['x-cache']).toBeUndefined();
    expect(withKey.json().n).toBe(2);
    expect(count('/v1/twin/open/a')).toBe(2);
    // `public`: shared between principals.
    await call(`${gw.url}/v1/twin/public`, { headers: { 'x-api-key': READER_KEY } });
    const shared = await call(`${gw.url}/v1/twin/public`, { headers: { 'x-api-key': WRITER_KEY } });
    expect(shared.headers['x-cache']).toBe('HIT');
    expect(count('/v1/twin/public')).toBe(1);
  });

  it('streams answers over maxEntryBytes through without storing them', async () => {
    const big = await call(`${gw.url}/v1/twin/big`);
    expect(big.text).toHaveLength(4096);
    const again = await call(`${gw.url}/v1/twin/big`);
    expect(again.text).toHaveLength(4096);
    expect(again.headers['x-cache']).toBe('MISS');
    expect(count('/v1/twin/big')).toBe(2);
  });

  it('coalesces 100 concurrent misses of one key into one upstream call', async () => {
    const all = await Promise.all(Array.from({ length: 100 }, () => call(`${gw.url}/v1/twin/slow?k=1`, { timeoutMs: 20_000 })));
    expect(all.every((r) => r.status === 200)).toBe(true);
    expect(new Set(all.map((r) => r.json().n))).toEqual(new Set([1]));
    expect(count('/v1/twin/slow')).toBe(1);
    const metrics = parsePrometheusText((await call(`${gw.url}/metrics`)).text);
    const samples = metrics.get('gateway_cache_requests_total')!.samples;
    const coalesced = samples.find((s) => s.labels.result === 'coalesced');
    const hit = samples.find((s) => s.labels.result === 'hit');
    expect((coalesced?.value ?? 0) + (hit?.value ?? 0)).toBeGreaterThanOrEqual(99);
  }, 30_000);
});

describeWithRedis('response cache in Redis', () => {
  it('an entry one replica stored answers the other replica', async () => {
    const redis = await startRedis();
    let calls = 0;
    const upstream = await testServer((req, res) => {
      if (req.url !== '/health') calls += 1;
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=60', etag: '"r1"' }).end(JSON.stringify({ calls }));
    });
    const env = { REDIS_URL: redis.url, TWIN_SERVICE_URL: upstream.url };
    const [a, b] = await Promise.all([startGateway({ env }), startGateway({ env })]);
    const first = await call(`${a.url}/v1/twin/shared?q=1`, { headers: { host: 'gw.example' } });
    expect(first.headers['x-cache']).toBe('MISS');
    await new Promise((r) => setTimeout(r, 100));
    const second = await call(`${b.url}/v1/twin/shared?q=1`, { headers: { host: 'gw.example' } });
    expect(second.headers['x-cache']).toBe('HIT');
    expect(second.json()).toEqual({ calls: 1 });
    expect((await call(`${b.url}/v1/twin/shared?q=1`, { headers: { host: 'gw.example', 'if-none-match': '"r1"' } })).status).toBe(304);
    expect(calls).toBe(1);
    await redis.stop();
  }, 30_000);
});

describe('stale-cache fallback', () => {
  it('answers from an expired entry when the upstream is unreachable, and fails without one', async () => {
    let calls = 0;
    const upstream = await testServer((req, res) => {
      if (req.url !== '/health') calls += 1;
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=1' }).end(JSON.stringify({ calls }));
    });
    const stale = await startGateway({
      env: { KNOWLEDGE_SYSTEM_URL: upstream.url },
      yaml: ['health:', '  intervalMs: 60000', 'services:', '  knowledge:', '    retries: { maxRetries: 0 }', '    fallback: stale-cache', ''].join('\n'),
    });
    const first = await call(`${stale.url}/v1/knowledge/doc`);
    expect(first.headers['x-cache']).toBe('MISS');
    await upstream.close();
    await new Promise((r) => setTimeout(r, 1300)); // past max-age
    const res = await call(`${stale.url}/v1/knowledge/doc`);
    expect(res.status).toBe(200);
    expect(res.headers['x-cache']).toBe('STALE');
    expect(res.headers['x-gateway-fallback']).toBe('stale-cache');
    expect(res.headers.warning).toBe('110 - "Response is Stale"');
    expect(Number(res.headers.age)).toBeGreaterThanOrEqual(1);
    expect(res.json()).toEqual({ calls: 1 });
    const none = await call(`${stale.url}/v1/knowledge/never-cached`);
    expect(none.status).toBe(502);
    expect(none.headers['x-cache']).toBeUndefined();
  }, 30_000);
});
