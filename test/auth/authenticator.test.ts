import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { ApiKeyStore, sha256Hex } from '../../src/auth/api-keys.js';
import { Authenticator } from '../../src/auth/authenticator.js';
import { JwtVerifier } from '../../src/auth/jwt.js';

/*
 * Authenticator.known: the synchronous path of the auth stage (issue 18). It may only return a
 * principal that authenticate() would return for the same headers, and never refuses anything
 * itself (undefined sends the request down the full, refusing path).
 */

const SECRET = 'test-secret-that-is-long-enough-for-hs256!!';
const token = () =>
  new SignJWT({ scope: 'read write' }).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setIssuedAt().setExpirationTime('5m').sign(new TextEncoder().encode(SECRET));

function authenticator(): Authenticator {
  const jwt = new JwtVerifier({ secret: SECRET, asymmetricAlgorithms: [], clockToleranceSeconds: 5 });
  return new Authenticator(jwt, new ApiKeyStore([{ name: 'ci', sha256: sha256Hex('ci-key-123'), scopes: ['read'] }]));
}

describe('Authenticator.known', () => {
  it('knows a valid API key at once, as authenticate() does', async () => {
    const auth = authenticator();
    const headers = { 'x-api-key': 'ci-key-123' };
    expect(auth.known(headers)).toEqual(await auth.authenticate(headers));
    expect(auth.known({ 'x-api-key': 'wrong' })).toBeUndefined();
  });

  it('knows a bearer token only once it was verified, and the same principal', async () => {
    const auth = authenticator();
    const headers = { authorization: `Bearer ${await token()}` };
    expect(auth.known(headers)).toBeUndefined();
    const principal = await auth.authenticate(headers);
    expect(auth.known(headers)).toEqual(principal);
    expect(auth.known({ authorization: `Bearer ${await token()}x` })).toBeUndefined();
  });

  it('leaves missing and malformed credentials to authenticate(), which refuses them', async () => {
    const auth = authenticator();
    expect(auth.known({})).toBeUndefined();
    expect(auth.known({ authorization: 'Basic abc' })).toBeUndefined();
    await expect(auth.authenticate({})).rejects.toMatchObject({ code: 'GW_AUTH_MISSING_CREDENTIALS' });
  });
});
