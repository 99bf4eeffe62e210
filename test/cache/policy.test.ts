import { describe, expect, it } from 'vitest';
import { baseKey, entryKey, notModified, parseCacheControl, requestBypasses, storeDecision, varyHeaders } from '../../src/cache/policy.js';

describe('parseCacheControl', () => {
  it('reads the directives that matter, case-insensitively', () => {
    expect(parseCacheControl('Public, Max-Age=60, s-maxage="30"')).toMatchObject({ public: true, maxAge: 60, sMaxAge: 30, noStore: false });
    expect(parseCacheControl(['private', 'no-store'])).toMatchObject({ private: true, noStore: true });
    expect(parseCacheControl(undefined)).toMatchObject({ noStore: false, noCache: false });
    expect(parseCacheControl('max-age=abc').maxAge).toBeUndefined();
  });
});

describe('storeDecision', () => {
  const ok = { 'cache-control': 'max-age=60' };
  it('stores what the upstream allows, s-maxage over max-age', () => {
    expect(storeDecision(200, ok, undefined, false)).toMatchObject({ ttlSeconds: 60, perUser: false, vary: [] });
    expect(storeDecision(200, { 'cache-control': 'max-age=60, s-maxage=5' }, undefined, false)?.ttlSeconds).toBe(5);
  });
  it('refuses no-store, no-cache, Set-Cookie, Vary: *, other statuses and answers without a lifetime', () => {
    expect(storeDecision(200, { 'cache-control': 'no-store, max-age=60' }, undefined, false)).toBeUndefined();
    expect(storeDecision(200, { 'cache-control': 'no-cache, max-age=60' }, undefined, false)).toBeUndefined();
    expect(storeDecision(200, { ...ok, 'set-cookie': 'a=1' }, undefined, false)).toBeUndefined();
    expect(storeDecision(200, { ...ok, vary: '*' }, undefined, false)).toBeUndefined();
    expect(storeDecision(500, ok, undefined, false)).toBeUndefined();
    expect(storeDecision(200, {}, undefined, false)).toBeUndefined();
    expect(storeDecision(200, { 'cache-control': 'max-age=0' }, undefined, false)).toBeUndefined();
  });
  it('private only on per-user routes', () => {
    const priv = { 'cache-control': 'private, max-age=60' };
    expect(storeDecision(200, priv, undefined, true)).toBeUndefined();
    expect(storeDecision(200, priv, { ttlSeconds: 30, perUser: false }, true)).toBeUndefined();
    expect(storeDecision(200, priv, { ttlSeconds: 30, perUser: true }, true)).toMatchObject({ perUser: true, ttlSeconds: 30 });
  });
  it('a route TTL applies without upstream lifetime and caps it', () => {
    expect(storeDecision(200, {}, { ttlSeconds: 30, perUser: false }, false)?.ttlSeconds).toBe(30);
    expect(storeDecision(200, { 'cache-control': 'max-age=600' }, { ttlSeconds: 30, perUser: false }, false)?.ttlSeconds).toBe(30);
    expect(storeDecision(200, { 'cache-control': 'max-age=10' }, { ttlSeconds: 30, perUser: false }, false)?.ttlSeconds).toBe(10);
  });
  it('authenticated answers are per user unless a shared cache may keep them (public, s-maxage, must-revalidate)', () => {
    expect(storeDecision(200, ok, undefined, true)?.perUser).toBe(true);
    expect(storeDecision(200, { 'cache-control': 'public, max-age=60' }, undefined, true)).toMatchObject({ perUser: false, public: true });
    expect(storeDecision(200, { 'cache-control': 's-maxage=60' }, undefined, true)).toMatchObject({ perUser: false, public: true, ttlSeconds: 60 });
    expect(storeDecision(200, ok, undefined, false)).toMatchObject({ perUser: false, public: false });
  });
  it('reads directives case-insensitively (RFC 9111 §5.2), repeated headers as one list', () => {
    expect(storeDecision(200, { 'cache-control': 'No-Store, Max-Age=60' }, undefined, false)).toBeUndefined();
    expect(storeDecision(200, { 'cache-control': 'Private, Max-Age=60' }, undefined, true)).toBeUndefined();
    expect(storeDecision(200, { 'cache-control': ['max-age=60', 'no-cache'] }, undefined, false)).toBeUndefined();
    expect(storeDecision(200, { 'cache-control': 'Max-Age=60' }, undefined, false)?.ttlSeconds).toBe(60);
  });
  it('honours Expires (against the answer\'s Date) and what the upstream\'s Age used of the lifetime', () => {
    const date = 'Wed, 01 Jan 2025 00:00:00 GMT';
    expect(storeDecision(200, { date, expires: 'Wed, 01 Jan 2025 00:01:40 GMT' }, undefined, false)?.ttlSeconds).toBe(100);
    expect(storeDecision(200, { date, expires: 'Tue, 31 Dec 2024 00:00:00 GMT' }, { ttlSeconds: 30, perUser: false }, false)).toBeUndefined(); // already expired
    expect(storeDecision(200, { date, expires: '0' }, undefined, false)).toBeUndefined();
    expect(storeDecision(200, { 'cache-control': 'max-age=60', age: '45' }, undefined, false)?.ttlSeconds).toBe(15);
    expect(storeDecision(200, { 'cache-control': 'max-age=60', age: '60' }, undefined, false)).toBeUndefined();
    expect(storeDecision(200, { 'cache-control': 'public' }, { ttlSeconds: 30, perUser: false }, false)?.ttlSeconds).toBe(30);
  });
});

describe('keys', () => {
  it('sorts the query and includes principal and varied headers', () => {
    expect(baseKey('GET', 'h', '/a?b=2&a=1')).toBe(baseKey('GET', 'h', '/a?a=1&b=2'));
    expect(baseKey('GET', 'h', '/a')).not.toBe(baseKey('GET', 'h', '/b'));
    const base = baseKey('GET', 'h', '/a');
    expect(entryKey(base, 'alice', [], {})).not.toBe(entryKey(base, 'bob', [], {}));
    expect(entryKey(base, undefined, [], {})).not.toBe(entryKey(base, 'alice', [], {}));
    expect(entryKey(base, undefined, ['accept-language'], { 'accept-language': 'en' })).not.toBe(
      entryKey(base, undefined, ['accept-language'], { 'accept-language': 'de' }),
    );
    expect(varyHeaders('Accept-Language, accept-encoding')).toEqual(['accept-encoding', 'accept-language']);
  });
});

describe('requests', () => {
  it('no-cache, no-store, max-age=0 and Pragma: no-cache bypass the lookup', () => {
    expect(requestBypasses({ 'cache-control': 'no-cache' })).toBe(true);
    expect(requestBypasses({ 'cache-control': 'max-age=0' })).toBe(true);
    expect(requestBypasses({ pragma: 'no-cache' })).toBe(true);
    expect(requestBypasses({})).toBe(false);
  });
  it('conditional requests: If-None-Match (weak comparison, *) wins over If-Modified-Since', () => {
    const lm = 'Wed, 01 Jan 2025 00:00:00 GMT';
    expect(notModified({ 'if-none-match': '"x", W/"v1"' }, '"v1"', undefined)).toBe(true);
    expect(notModified({ 'if-none-match': '*' }, '"v1"', undefined)).toBe(true);
    expect(notModified({ 'if-none-match': '"v2"', 'if-modified-since': lm }, '"v1"', lm)).toBe(false);
    expect(notModified({ 'if-modified-since': lm }, undefined, lm)).toBe(true);
    expect(notModified({ 'if-modified-since': 'Tue, 31 Dec 2024 00:00:00 GMT' }, undefined, lm)).toBe(false);
    expect(notModified({}, '"v1"', lm)).toBe(false);
  });
});
