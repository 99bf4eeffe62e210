import { describe, expect, it } from 'vitest';
import { VerifiedTokenCache } from '../../src/auth/token-cache.js';

describe('VerifiedTokenCache', () => {
  it('serves an entry until the token expires, and never past maxAge', () => {
    let now = 1_000_000;
    const cache = new VerifiedTokenCache<string>({ maxEntries: 10, maxAgeMs: 60_000, now: () => now });
    cache.set('short', 'a', now + 5_000);
    cache.set('long', 'b', now + 3_600_000);
    cache.set('no-exp', 'c', undefined);
    now += 4_999;
    expect(cache.get('short')).toBe('a');
    now += 1;
    expect(cache.get('short')).toBeUndefined();
    expect(cache.get('long')).toBe('b');
    now += 60_000;
    expect(cache.get('long')).toBeUndefined();
    expect(cache.get('no-exp')).toBeUndefined();
  });

  it('does not store already-expired tokens and evicts the oldest when full', () => {
    const now = 0;
    const cache = new VerifiedTokenCache<number>({ maxEntries: 2, maxAgeMs: 1000, now: () => now });
    cache.set('dead', 1, -1);
    expect(cache.size).toBe(0);
    cache.set('t1', 1, 500);
    cache.set('t2', 2, 500);
    cache.set('t3', 3, 500);
    expect(cache.size).toBe(2);
    expect(cache.get('t1')).toBeUndefined();
    expect(cache.get('t3')).toBe(3);
  });
});
