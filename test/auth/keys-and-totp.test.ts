import { generate, generateSecret } from 'otplib';
import { describe, expect, it } from 'vitest';
import { ApiKeyStore, sha256Hex } from '../../src/auth/api-keys.js';
import { presentedCredential } from '../../src/auth/credentials.js';
import { grants, scopeForMethod, scopesFromClaims } from '../../src/auth/scopes.js';
import { TotpVerifier } from '../../src/auth/totp.js';
import { MemoryStore } from '../../src/state/memory.js';

describe('API keys', () => {
  const store = new ApiKeyStore([
    { name: 'ci', sha256: sha256Hex('ci-key-123'), scopes: ['read'] },
    { name: 'ops', sha256: sha256Hex('ops-key-456'), scopes: ['admin'] },
  ]);
  it('finds the entry for a key by its hash', () => {
    expect(store.principal('ops-key-456')).toEqual({ kind: 'api-key', subject: 'key:ops', keyName: 'ops', scopes: ['admin'], mfa: false });
    expect(store.find('ci-key-123')?.name).toBe('ci');
  });
  it('refuses unknown keys and near misses', () => {
    expect(store.find('ci-key-12')).toBeUndefined();
    expect(store.find('ci-key-1234')).toBeUndefined();
    expect(store.find('')).toBeUndefined();
  });
});

describe('credentials', () => {
  it('reads Bearer, ApiKey and X-API-Key', () => {
    expect(presentedCredential({ authorization: 'Bearer abc.def.ghi' })).toEqual({ kind: 'bearer', token: 'abc.def.ghi' });
    expect(presentedCredential({ authorization: 'ApiKey k1' })).toEqual({ kind: 'api-key', key: 'k1' });
    expect(presentedCredential({ 'x-api-key': 'k2' })).toEqual({ kind: 'api-key', key: 'k2' });
    expect(presentedCredential({})).toBeNull();
    expect(presentedCredential({ authorization: 'Basic dXNlcjpwdw==' })).toEqual({ kind: 'malformed' });
    expect(presentedCredential({ authorization: 'Bearer' })).toEqual({ kind: 'malformed' });
  });
});

describe('scopes', () => {
  it('orders read < write < admin', () => {
    expect(grants(['admin'], 'write')).toBe(true);
    expect(grants(['write'], 'read')).toBe(true);
    expect(grants(['read'], 'write')).toBe(false);
    expect(grants([], 'read')).toBe(false);
  });
  it('derives the needed scope from the method', () => {
    expect(scopeForMethod('GET')).toBe('read');
    expect(scopeForMethod('HEAD')).toBe('read');
    expect(scopeForMethod('POST')).toBe('write');
    expect(scopeForMethod('DELETE')).toBe('write');
  });
  it('parses scope and scopes claims, ignoring unknown values', () => {
    expect(scopesFromClaims({ scope: 'read  write x' })).toEqual(['read', 'write']);
    expect(scopesFromClaims({ scopes: 'admin' })).toEqual(['admin']);
    expect(scopesFromClaims({ scope: 42 })).toEqual([]);
  });
});

describe('TOTP', () => {
  const LOCKOUT = { maxFailures: 5, lockoutSeconds: 60, maxLockoutSeconds: 600, failureMemorySeconds: 3600 };
  /** Verifiers sharing one store (as replicas share Redis), on one fake clock. */
  function replicas(count = 2, toleranceSeconds = 30) {
    const clock = { now: Date.UTC(2026, 0, 1, 12, 0, 10) };
    const store = new MemoryStore({ now: () => clock.now, sweepIntervalMs: 0 });
    const verifiers = Array.from({ length: count }, () => new TotpVerifier({ store, toleranceSeconds, ...LOCKOUT, now: () => clock.now }));
    const codeAt = (secret: string, offsetSeconds = 0) => generate({ secret, epoch: Math.floor(clock.now / 1000) + offsetSeconds });
    return { clock, store, verifiers, codeAt };
  }
  const wrongFor = (code: string) => String((Number(code) + 1) % 1_000_000).padStart(6, '0');

  it('accepts a current code once and refuses its replay, on the same or another replica', async () => {
    const secret = generateSecret();
    const { verifiers: [a, b], codeAt } = replicas();
    const code = await codeAt(secret);
    expect(await a!.check('alice', secret, code)).toEqual({ ok: true });
    expect(await a!.check('alice', secret, code)).toEqual({ ok: false, reason: 'replayed' });
    expect(await b!.check('alice', secret, code)).toEqual({ ok: false, reason: 'replayed' });
  });

  it('gives one success for one code however many replicas try it at once', async () => {
    const secret = generateSecret();
    const { verifiers, codeAt } = replicas(4);
    const code = await codeAt(secret);
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => verifiers[i % 4]!.check('erin', secret, code)));
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    // The others: replayed, or refused by the lockout before being checked (20 attempts at once).
    for (const r of results.filter((x) => !x.ok)) expect(['replayed', 'locked']).toContain(r.reason);
  });

  it('refuses an older code once a newer one was used', async () => {
    const secret = generateSecret();
    const { verifiers: [a, b], codeAt } = replicas();
    const previous = await codeAt(secret, -30);
    const current = await codeAt(secret);
    expect(await a!.check('frank', secret, current)).toEqual({ ok: true });
    expect(await b!.check('frank', secret, previous)).toEqual({ ok: false, reason: 'replayed' });
  });

  it('refuses wrong and malformed codes, and tracks principals separately', async () => {
    const secret = generateSecret();
    const { verifiers: [totp], codeAt } = replicas(1);
    const code = await codeAt(secret);
    expect(await totp!.check('bob', secret, wrongFor(code))).toEqual({ ok: false, reason: 'invalid' });
    expect(await totp!.check('bob', secret, 'abcdef')).toEqual({ ok: false, reason: 'invalid' });
    expect(await totp!.check('bob', secret, code)).toEqual({ ok: true });
    expect(await totp!.check('carol', secret, code)).toEqual({ ok: true });
  });

  it('accepts the next period after one was used', async () => {
    const secret = generateSecret();
    const { verifiers: [totp], clock, codeAt } = replicas(1, 0);
    expect((await totp!.check('dave', secret, await codeAt(secret))).ok).toBe(true);
    clock.now += 30_000;
    expect((await totp!.check('dave', secret, await codeAt(secret))).ok).toBe(true);
  });

  it('locks a key after 5 wrong codes, on every replica, for a time that doubles on each further attempt', async () => {
    const secret = generateSecret();
    const { verifiers: [a, b], clock, codeAt } = replicas();
    const wrong = wrongFor(await codeAt(secret, 90));
    for (let i = 0; i < 4; i++) expect(await (i % 2 ? a : b)!.check('gina', secret, wrong)).toEqual({ ok: false, reason: 'invalid' });
    // The fifth wrong code locks the key (and says for how long).
    expect(await a!.check('gina', secret, wrong)).toEqual({ ok: false, reason: 'invalid', retryAfterSeconds: 60 });
    // Even the right code is refused while locked, on the other replica too, and another key is not affected.
    const locked = await b!.check('gina', secret, await codeAt(secret));
    expect(locked).toEqual({ ok: false, reason: 'locked', retryAfterSeconds: 60 });
    expect((await b!.check('hank', secret, await codeAt(secret))).ok).toBe(true);
    clock.now += 30_000;
    expect(await a!.check('gina', secret, await codeAt(secret))).toEqual({ ok: false, reason: 'locked', retryAfterSeconds: 30 });
    // After the lock: one more try (the 8th attempt: the two refused while locked count too),
    // wrong: locked for 60 s x 2^3.
    clock.now += 30_000;
    expect(await b!.check('gina', secret, wrongFor(await codeAt(secret)))).toEqual({ ok: false, reason: 'invalid', retryAfterSeconds: 480 });
    clock.now += 480_000;
    // Capped at maxLockoutSeconds (600).
    expect(await a!.check('gina', secret, wrongFor(await codeAt(secret)))).toEqual({ ok: false, reason: 'invalid', retryAfterSeconds: 600 });
    clock.now += 600_000;
    // A right code after the lock is accepted and clears everything: 4 free attempts again.
    expect(await b!.check('gina', secret, await codeAt(secret))).toEqual({ ok: true });
    clock.now += 30_000;
    const nextWrong = wrongFor(await codeAt(secret));
    for (let i = 0; i < 4; i++) expect((await a!.check('gina', secret, nextWrong)).retryAfterSeconds).toBeUndefined();
  });

  it('parallel guesses cannot beat the lockout: of 60 at once, 5 are checked', async () => {
    const secret = generateSecret();
    const { verifiers, codeAt } = replicas(3);
    const wrong = wrongFor(await codeAt(secret, 90));
    const results = await Promise.all(Array.from({ length: 60 }, (_, i) => verifiers[i % 3]!.check('ivan', secret, wrong)));
    expect(results.filter((r) => r.reason === 'invalid')).toHaveLength(5);
    expect(results.filter((r) => r.reason === 'locked')).toHaveLength(55);
  });

  it('forgets failures after failureMemorySeconds without an attempt', async () => {
    const secret = generateSecret();
    const { verifiers: [totp], clock, codeAt } = replicas(1);
    const wrong = wrongFor(await codeAt(secret, 90));
    for (let i = 0; i < 4; i++) await totp!.check('judy', secret, wrong);
    clock.now += 3_600_001;
    expect(await totp!.check('judy', secret, wrongFor(await codeAt(secret, 90)))).toEqual({ ok: false, reason: 'invalid' });
  });
});
