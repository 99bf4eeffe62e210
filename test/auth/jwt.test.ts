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
    await expect(verifier().verify(justExpired)).resolves.toMatchObject({ principal: { subject: 'alice' } });
  });

  it('checks issuer and audience when configured', async () => {
    const v = verifier({ issuer: 'https://idp.example', audience: 'gateway' });
    const good = await hs().setIssuer('https://idp.example').setAudience('gateway').sign(hsKey);
    await expect(v.verify(good)).resolves.toMatchObject({ principal: { subject: expect.stringMatching(/^(alice|demo)$/) } });
    const wrongAud = await hs().setIssuer('https://idp.example').setAudience('other').sign(hsKey);
    expect(await rejectionOf(v.verify(wrongAud))).toBe('claim "aud" invalid');
    const noIss = await hs().setAudience('gateway').sign(hsKey);
    expect(await rejectionOf(v.verify(noIss))).toBe('claim "iss" invalid');
  });

  it('refuses alg none', async () => {
    const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
    const payload = Buffer.from(JSON.stringify({ sub: 'mallory', scope: 'admin', exp: Math.floor(Date.now() / 1000) + 60 })).toString('base64url');
    expect(await rejectionOf(verifier().verify(`${header}.${payload}.`))).toBe('algorithm not accepted');
  });

  it('never echoes the alg (or anything else from the token) in the reason', async () => {
    const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const body = enc({ sub: 'mallory', exp: Math.floor(Date.now() / 1000) + 60 });
    for (const alg of ['HS256\r\nX-Injected: 1', 'RS256\n', 'none', 'X'.repeat(5000), 'evil"alg', 42, { a: 1 }, null]) {
      const reason = await rejectionOf(verifier().verify(`${enc({ alg })}.${body}.c2ln`));
      expect(reason).toBe('algorithm not accepted');
    }
  });

  it('requires exp: an HS256 token without it is refused with a clear reason', async () => {
    const noExp = await new SignJWT({ scope: 'admin' }).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setIssuedAt().sign(hsKey);
    expect(await rejectionOf(verifier().verify(noExp))).toBe('token has no expiry (exp)');
    const noClaims = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').sign(hsKey);
    expect(await rejectionOf(verifier().verify(noClaims))).toBe('token has no expiry (exp)');
  });

  it('refuses a lifetime over maxLifetimeSeconds (exp - iat, or exp - now), accepts one at the maximum', async () => {
    const now = Math.floor(Date.now() / 1000);
    const v = verifier({ maxLifetimeSeconds: 3600 });
    const at = (iat: number | undefined, exp: number) => {
      const t = new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setExpirationTime(exp);
      return (iat === undefined ? t : t.setIssuedAt(iat)).sign(hsKey);
    };
    await expect(v.verify(await at(now, now + 3600))).resolves.toMatchObject({ principal: { subject: expect.stringMatching(/^(alice|demo)$/) } });
    expect(await rejectionOf(v.verify(await at(now, now + 3601)))).toBe('token lifetime exceeds the maximum');
    // Issued a year ago and expiring in a minute: the lifetime as issued counts, not what is left.
    expect(await rejectionOf(v.verify(await at(now - 86_400 * 365, now + 60)))).toBe('token lifetime exceeds the maximum');
    // Without iat, or with an iat in the future, what is left counts.
    expect(await rejectionOf(v.verify(await at(undefined, now + 7200)))).toBe('token lifetime exceeds the maximum');
    await expect(v.verify(await at(undefined, now + 3000))).resolves.toMatchObject({ principal: { subject: expect.stringMatching(/^(alice|demo)$/) } });
    expect(await rejectionOf(v.verify(await at(now + 86_400 * 365, now + 86_400 * 365 + 60)))).toBe('token lifetime exceeds the maximum');
    // Default maximum: 24 h.
    expect(await rejectionOf(verifier().verify(await at(now, now + 86_401)))).toBe('token lifetime exceeds the maximum');
    await expect(verifier().verify(await at(now, now + 86_400))).resolves.toMatchObject({ principal: { subject: expect.stringMatching(/^(alice|demo)$/) } });
  });

  it('applies exp and the maximum lifetime to JWKS tokens too', async () => {
    const key = await rsaKey('k-life');
    jwks = { keys: [key.jwk] };
    const noExp = await new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: 'k-life' }).setSubject('svc').sign(key.privateKey);
    expect(await rejectionOf(verifier().verify(noExp))).toBe('token has no expiry (exp)');
    const long = await new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: 'k-life' }).setSubject('svc').setIssuedAt().setExpirationTime('30d').sign(key.privateKey);
    expect(await rejectionOf(verifier().verify(long))).toBe('token lifetime exceeds the maximum');
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

  it('accepts a token only in its canonical spelling: no padding, nothing outside base64url', async () => {
    const token = await hs().sign(hsKey);
    expect((await verifier().verify(token)).principal.subject).toBe('alice');
    const [h, p, sig] = token.split('.');
    // The signature's last character carries two unused bits: another letter with the same six-bit prefix decodes the same.
    const last = sig!.at(-1)!;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const sameBytes = alphabet[alphabet.indexOf(last) ^ 1]!;
    expect(Buffer.from(`${sig!.slice(0, -1)}${sameBytes}`, 'base64url').equals(Buffer.from(sig!, 'base64url'))).toBe(true);
    for (const variant of [`${h}.${p}.${sig!.slice(0, -1)}${sameBytes}`, `${h}.${p}.${sig}=`, `${h}=.${p}.${sig}`, `${h}.${p}.${sig!.slice(0, 10)}+${sig!.slice(10)}`, `${h}.${p}.${sig} `, `${h}.${p}.${sig}.`]) {
      expect(await rejectionOf(verifier().verify(variant)), variant).toBe('malformed token');
    }
  });

  it('refuses garbage and tokens without a subject', async () => {
    expect(await rejectionOf(verifier().verify('not-a-jwt'))).toBe('malformed token');
    const noSub = await new SignJWT({ scope: 'read' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m').sign(hsKey);
    expect(await rejectionOf(verifier().verify(noSub))).toBe('token has no subject');
  });
});

describe('TokenIssuer', () => {
  it('issues tokens with exp - iat exactly the ttl, capped at the maximum lifetime, that the verifier accepts', async () => {
    const { TokenIssuer } = await import('../../src/auth/token-issuer.js');
    const { decodeJwt } = await import('jose');
    const issuer = new TokenIssuer({ secret: SECRET, issuer: 'unified-gateway', ttlSeconds: 900, maxTtlSeconds: 3600 });
    const v = verifier({ maxLifetimeSeconds: 3600 });
    const normal = await issuer.issue('alice', ['read'], ['pwd']);
    const claims = decodeJwt(normal.token);
    expect(claims.exp! - claims.iat!).toBe(900);
    expect(normal.expiresIn).toBe(900);
    const asked = await issuer.issue('demo', ['read'], ['pwd'], 24 * 3600);
    const capped = decodeJwt(asked.token);
    expect(capped.exp! - capped.iat!).toBe(3600);
    expect(asked.expiresIn).toBe(3600);
    await expect(v.verify(asked.token)).resolves.toMatchObject({ principal: { subject: expect.stringMatching(/^(alice|demo)$/) } });
  });
});
