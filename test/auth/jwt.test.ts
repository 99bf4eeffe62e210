import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JwtVerifier, TokenRejected } from '../../src/auth/jwt.js';

const SECRET = 'test-secret-that-is-long-enough-for-hs256!!';
const hsKey = new TextEncoder().encode(SECRET);

let jwksServer: Server;
let jwksUrl: string;
let jwks: { keys: JWK[] } = { keys: [] };
let jwksHits = 0;

async function rsaKey(kid: string) {
  const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  return { privateKey, publicKey, jwk };
}

beforeAll(async () => {
  jwksServer = createServer((_req, res) => {
    jwksHits += 1;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks));
  });
  await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', r));
  jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/.well-known/jwks.json`;
});
afterAll(() => new Promise<void>((r) => jwksServer.close(() => r())));

function verifier(extra: Partial<ConstructorParameters<typeof JwtVerifier>[0]> = {}) {
  return new JwtVerifier({ secret: SECRET, jwksUrl, asymmetricAlgorithms: ['RS256', 'ES256'], clockToleranceSeconds: 5, jwksCooldownMs: 0, ...extra });
}

const hs = (claims: Record<string, unknown> = {}) =>
  new SignJWT({ scope: 'read write', ...claims }).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setIssuedAt().setExpirationTime('5m');

async function rejectionOf(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TokenRejected);
  return (err as TokenRejected).reason;
}

describe('JwtVerifier', () => {
  it('accepts a valid HS256 token and reads scopes and amr', async () => {
    const token = await hs({ amr: ['pwd', 'otp'] }).sign(hsKey);
    const { principal } = await verifier().verify(token);
    expect(principal).toEqual({ kind: 'jwt', subject: 'alice', scopes: ['read', 'write'], mfa: true });
  });

  it('reads a `scopes` array claim too', async () => {
    const token = await new SignJWT({ scopes: ['admin', 'bogus'] }).setProtectedHeader({ alg: 'HS256' }).setSubject('bob').setExpirationTime('5m').sign(hsKey);
    expect((await verifier().verify(token)).principal.scopes).toEqual(['admin']);
  });

  it('rejects a bad signature, an expired token and a not-yet-valid one', async () => {
    const wrong = await hs().sign(new TextEncoder().encode('another-secret-another-secret-another'));
    expect(await rejectionOf(verifier().verify(wrong))).toBe('signature invalid');
    const expired = await hs().setExpirationTime(Math.floor(Date.now() / 1000) - 60).sign(hsKey);
    expect(await rejectionOf(verifier().verify(expired))).toBe('token expired');
    const future = await hs().setNotBefore(Math.floor(Date.now() / 1000) + 600).sign(hsKey);
    expect(await rejectionOf(verifier().verify(future))).toBe('claim "nbf" invalid');
  });

  it('tolerates small clock skew', async () => {
    const justExpired = await hs().setExpirationTime(Math.floor(Date.now() / 1000) - 2).sign(hsKey);
    await expect(verifier().verify(justExpired)).resolves.toBeDefined();
  });

  it('checks issuer and audience when configured', async () => {
    const v = verifier({ issuer: 'https://idp.example', audience: 'gateway' });
    const good = await hs().setIssuer('https://idp.example').setAudience('gateway').sign(hsKey);
    await expect(v.verify(good)).resolves.toBeDefined();
    const wrongAud = await hs().setIssuer('https://idp.example').setAudience('other').sign(hsKey);
    expect(await rejectionOf(v.verify(wrongAud))).toBe('claim "aud" invalid');
    const noIss = await hs().setAudience('gateway').sign(hsKey);
    expect(await rejectionOf(v.verify(noIss))).toBe('claim "iss" invalid');
  });

  it('refuses alg none', async () => {
    const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
    const payload = Buffer.from(JSON.stringify({ sub: 'mallory', scope: 'admin', exp: Math.floor(Date.now() / 1000) + 60 })).toString('base64url');
    expect(await rejectionOf(verifier().verify(`${header}.${payload}.`))).toBe('algorithm none is not accepted');
  });

  it('refuses HS/RS confusion: an HS256 token signed with the RSA public key', async () => {
    const { publicKey, jwk } = await rsaKey('k-conf');
    jwks = { keys: [jwk] };
    const pem = Buffer.from(JSON.stringify(await exportJWK(publicKey)));
    const forged = await new SignJWT({ scope: 'admin' }).setProtectedHeader({ alg: 'HS256', kid: 'k-conf' }).setSubject('mallory').setExpirationTime('5m').sign(pem);
    // Checked against JWT_SECRET_KEY only, never against the public key.
    expect(await rejectionOf(verifier().verify(forged))).toBe('signature invalid');
    // And without an HS secret configured, HS tokens are refused outright.
    expect(await rejectionOf(verifier({ secret: undefined }).verify(forged))).toBe('HS256 tokens are not accepted here');
  });

  it('verifies RS256 tokens from the JWKS and picks up key rotation without restart', async () => {
    const v = verifier();
    const first = await rsaKey('k1');
    jwks = { keys: [first.jwk] };
    const t1 = await new SignJWT({ scope: 'read' }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setSubject('svc').setExpirationTime('5m').sign(first.privateKey);
    expect((await v.verify(t1)).principal.subject).toBe('svc');

    const second = await rsaKey('k2');
    jwks = { keys: [second.jwk] }; // rotated: k1 retired, k2 new
    const hitsBefore = jwksHits;
    const t2 = await new SignJWT({ scope: 'read' }).setProtectedHeader({ alg: 'RS256', kid: 'k2' }).setSubject('svc2').setExpirationTime('5m').sign(second.privateKey);
    expect((await v.verify(t2)).principal.subject).toBe('svc2');
    expect(jwksHits).toBeGreaterThan(hitsBefore);
  });

  it('refuses a token signed by a key that is not in the JWKS', async () => {
    const known = await rsaKey('known');
    jwks = { keys: [known.jwk] };
    const stranger = await rsaKey('known');
    const token = await new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: 'known' }).setSubject('x').setExpirationTime('5m').sign(stranger.privateKey);
    expect(await rejectionOf(verifier().verify(token))).toBe('signature invalid');
  });

  it('refuses garbage and tokens without a subject', async () => {
    expect(await rejectionOf(verifier().verify('not-a-jwt'))).toBe('malformed token');
    const noSub = await new SignJWT({ scope: 'read' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m').sign(hsKey);
    expect(await rejectionOf(verifier().verify(noSub))).toBe('token has no subject');
  });
});
