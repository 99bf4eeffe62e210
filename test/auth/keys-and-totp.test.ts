import { generate, generateSecret } from 'otplib';
import { describe, expect, it } from 'vitest';
import { ApiKeyStore, sha256Hex } from '../../src/auth/api-keys.js';
import { presentedCredential } from '../../src/auth/credentials.js';
import { grants, scopeForMethod, scopesFromClaims } from '../../src/auth/scopes.js';
import { TotpVerifier } from '../../src/auth/totp.js';

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
  it('accepts a current code once and refuses its replay', async () => {
    const secret = generateSecret();
    const totp = new TotpVerifier({ toleranceSeconds: 30 });
    const code = await generate({ secret });
    expect(await totp.check('alice', secret, code)).toEqual({ ok: true });
    expect(await totp.check('alice', secret, code)).toEqual({ ok: false, reason: 'replayed' });
  });

  it('refuses wrong and malformed codes, and tracks principals separately', async () => {
    const secret = generateSecret();
    const totp = new TotpVerifier({ toleranceSeconds: 30 });
    const code = await generate({ secret });
    const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, '0');
    expect(await totp.check('bob', secret, wrong)).toEqual({ ok: false, reason: 'invalid' });
    expect(await totp.check('bob', secret, 'abcdef')).toEqual({ ok: false, reason: 'invalid' });
    expect(await totp.check('bob', secret, code)).toEqual({ ok: true });
    expect(await totp.check('carol', secret, code)).toEqual({ ok: true });
  });

  it('accepts the next period after one was used', async () => {
    const secret = generateSecret();
    let now = Date.UTC(2026, 0, 1, 12, 0, 0);
    const totp = new TotpVerifier({ toleranceSeconds: 0, now: () => now });
    const first = await generate({ secret, epoch: now / 1000 });
    expect((await totp.check('dave', secret, first)).ok).toBe(true);
    now += 30_000;
    const second = await generate({ secret, epoch: now / 1000 });
    expect((await totp.check('dave', secret, second)).ok).toBe(true);
  });
});
