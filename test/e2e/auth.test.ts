import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { generate, generateSecret } from 'otplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/auth/api-keys.js';
import { cleanup, startGateway, type GatewayProcess } from '../helpers/gateway.js';
import { call } from '../helpers/http.js';
import { describeWithRedis, startRedis } from '../helpers/redis.js';
import { standIns, testServer, type StandIn } from '../helpers/upstreams.js';

/*
 * Authentication and authorization through the running gateway. Every refusal is also
 * checked against the upstream's request count: a refused request never reaches it.
 */

const SECRET = 'e2e-jwt-secret-0123456789-abcdefghijkl';
const hsKey = new TextEncoder().encode(SECRET);
const READER_KEY = 'reader-key-0123456789';
const WRITER_KEY = 'writer-key-0123456789';
const OPS_KEY = 'ops-key-0123456789abc';
const TOTP_SECRET = generateSecret();

let gw: GatewayProcess;
let twin: StandIn;
let jwks: { keys: JWK[] } = { keys: [] };
let rsa: Awaited<ReturnType<typeof generateKeyPair>>;

const now = () => Math.floor(Date.now() / 1000);
const hs = (claims: Record<string, unknown> = {}, sub = 'alice') =>
  new SignJWT({ scope: 'read write', ...claims })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuer('https://idp.example')
    .setAudience('gateway')
    .setIssuedAt()
    .setExpirationTime('5m');

async function rsToken(kid: string, key: Parameters<SignJWT["sign"]>[0], claims: Record<string, unknown> = {}) {
  return new SignJWT({ scope: 'read', ...claims })
    .setProtectedHeader({ alg: 'RS256', kid })
    .setSubject('svc')
    .setIssuer('https://idp.example')
    .setAudience('gateway')
    .setExpirationTime('5m')
    .sign(key);
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

beforeAll(async () => {
  const jwksServer = await testServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks));
  });
  rsa = await generateKeyPair('RS256', { extractable: true });
  jwks = { keys: [{ ...(await exportJWK(rsa.publicKey)), kid: 'k1', alg: 'RS256' }] };
  const ups = await standIns(['twin']);
  twin = ups.byName.twin;
  gw = await startGateway({
    env: { ...ups.env, JWT_SECRET_KEY: SECRET },
    yaml: `
auth:
  jwt:
    issuer: https://idp.example
    audience: gateway
    jwksUrl: ${jwksServer.url}/jwks.json
    jwksCooldownMs: 0
  apiKeys:
    - { name: reader, sha256: ${sha256Hex(READER_KEY)}, scopes: [read] }
    - { name: writer, sha256: ${sha256Hex(WRITER_KEY)}, scopes: [write] }
    - { name: ops, sha256: ${sha256Hex(OPS_KEY)}, scopes: [admin], totpSecret: ${TOTP_SECRET} }
routes:
  - id: twin-secure
    prefix: /v1/twin/secure
    service: twin
    auth: { required: true, scope: admin, mfa: true }
  - id: twin-public
    prefix: /v1/twin/public
    service: twin
    auth: { required: false }
`,
  });
});
afterAll(cleanup);

/** Calls the gateway and asserts the upstream saw nothing. */
async function refused(path: string, options: Parameters<typeof call>[1]) {
  const before = twin.requestCount;
  const res = await call(`${gw.url}${path}`, { anonymous: true, ...options });
  expect(twin.requestCount).toBe(before);
  return res;
}

describe('authentication', () => {
  it('401 with WWW-Authenticate: Bearer and no upstream call when there is no credential', async () => {
    const res = await refused('/v1/twin/notes', {});
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="unified-gateway"');
    expect(res.json().error).toMatchObject({ code: 'GW_AUTH_MISSING_CREDENTIALS', requestId: res.headers['x-request-id'] });
  });

  it('accepts a valid HS256 token and passes the call through', async () => {
    const res = await call(`${gw.url}/v1/twin/notes`, { anonymous: true, headers: bearer(await hs().sign(hsKey)) });
    expect(res.status).toBe(200);
    expect(res.json().service).toBe('twin');
  });

  it.each([
    ['a bad signature', async () => hs().sign(new TextEncoder().encode('not-the-secret-not-the-secret-0000')), 'signature invalid'],
    ['an expired token', async () => hs().setExpirationTime(now() - 300).sign(hsKey), 'token expired'],
    ['a wrong audience', async () => hs().setAudience('someone-else').sign(hsKey), 'claim "aud" invalid'],
    ['a wrong issuer', async () => hs().setIssuer('https://evil.example').sign(hsKey), 'claim "iss" invalid'],
  ])('401 invalid_token for %s', async (_name, make, reason) => {
    const res = await refused('/v1/twin/notes', { headers: bearer(await make()) });
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toContain('error="invalid_token"');
    expect(res.json().error.code).toBe('GW_AUTH_INVALID_CREDENTIALS');
    expect(res.json().error.message).toContain(reason);
  });

  it('401 for alg none, and the token is never echoed', async () => {
    const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const token = `${enc({ alg: 'none' })}.${enc({ sub: 'mallory', scope: 'admin', aud: 'gateway', iss: 'https://idp.example', exp: now() + 60 })}.`;
    const res = await refused('/v1/twin/notes', { headers: bearer(token) });
    expect(res.status).toBe(401);
    expect(res.text).not.toContain(token);
  });

  it.each([
    ['CR/LF', 'HS256\r\nX-Injected: yes'],
    ['LF and a quote', 'RS256\n"x'],
    ['an unknown name', 'HS257-made-up'],
    ['a long value', 'A'.repeat(3000)],
    ['a number', 256],
  ])('an alg with %s: clean 401, fixed WWW-Authenticate, nothing echoed, no stack trace logged', async (_name, alg) => {
    const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const token = `${enc({ alg, typ: 'JWT' })}.${enc({ sub: 'mallory', scope: 'admin', aud: 'gateway', iss: 'https://idp.example', exp: now() + 60 })}.c2lnbmF0dXJl`;
    const requestId = `alg-${Math.random().toString(36).slice(2)}`;
    const res = await refused('/v1/twin/notes', { headers: { ...bearer(token), 'x-request-id': requestId } });
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="unified-gateway", error="invalid_token", error_description="algorithm not accepted"');
    expect(res.headers['x-injected']).toBeUndefined();
    expect(res.json().error).toEqual({ code: 'GW_AUTH_INVALID_CREDENTIALS', message: 'The token is not valid: algorithm not accepted', requestId });
    const line = await gw.waitForLog((l) => l.reqId === requestId && l.msg === 'request completed');
    expect(line.status).toBe(401);
    const lines = gw.logs.filter((l) => l.reqId === requestId);
    expect(lines.filter((l) => (l.level ?? 0) >= 40)).toEqual([]);
    expect(JSON.stringify(lines)).not.toMatch(/stack|writeHead|Invalid character|X-Injected|HS257|AAAAAAAAAA/);
  });

  it('401 with a clear message for an HS256 token without exp, and for one whose lifetime exceeds the maximum (24 h)', async () => {
    const noExp = await new SignJWT({ scope: 'admin' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('alice')
      .setIssuer('https://idp.example')
      .setAudience('gateway')
      .setIssuedAt()
      .sign(hsKey);
    const a = await refused('/v1/twin/notes', { headers: bearer(noExp) });
    expect(a.status).toBe(401);
    expect(a.json().error).toMatchObject({ code: 'GW_AUTH_INVALID_CREDENTIALS', message: 'The token is not valid: token has no expiry (exp)' });
    expect(a.headers['www-authenticate']).toBe('Bearer realm="unified-gateway", error="invalid_token", error_description="token has no expiry (exp)"');

    const longLived = await hs().setIssuedAt(now()).setExpirationTime(now() + 86_400 + 60).sign(hsKey);
    const b = await refused('/v1/twin/notes', { headers: bearer(longLived) });
    expect(b.status).toBe(401);
    expect(b.json().error.message).toBe('The token is not valid: token lifetime exceeds the maximum');
    // A day exactly is within the maximum.
    const day = await hs().setIssuedAt(now()).setExpirationTime(now() + 86_400).sign(hsKey);
    expect((await call(`${gw.url}/v1/twin/notes`, { anonymous: true, headers: bearer(day) })).status).toBe(200);
  });

  it('401 for HS/RS confusion: HS256 signed with the published RSA public key', async () => {
    const publicJwk = JSON.stringify(jwks.keys[0]);
    const forged = await new SignJWT({ scope: 'admin' })
      .setProtectedHeader({ alg: 'HS256', kid: 'k1' })
      .setSubject('mallory')
      .setIssuer('https://idp.example')
      .setAudience('gateway')
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(publicJwk));
    const res = await refused('/v1/twin/notes', { headers: bearer(forged) });
    expect(res.status).toBe(401);
  });

  it('accepts RS256 tokens from the JWKS and picks up a rotated key without restart', async () => {
    const ok = await call(`${gw.url}/v1/twin/a`, { anonymous: true, headers: bearer(await rsToken('k1', rsa.privateKey)) });
    expect(ok.status).toBe(200);

    const next = await generateKeyPair('RS256', { extractable: true });
    jwks = { keys: [{ ...(await exportJWK(next.publicKey)), kid: 'k2', alg: 'RS256' }] };
    const rotated = await call(`${gw.url}/v1/twin/b`, { anonymous: true, headers: bearer(await rsToken('k2', next.privateKey)) });
    expect(rotated.status).toBe(200);
  });

  it('accepts an API key in X-API-Key and in Authorization: ApiKey, and refuses an unknown one', async () => {
    expect((await call(`${gw.url}/v1/twin/k`, { anonymous: true, headers: { 'x-api-key': READER_KEY } })).status).toBe(200);
    expect((await call(`${gw.url}/v1/twin/k`, { anonymous: true, headers: { authorization: `ApiKey ${READER_KEY}` } })).status).toBe(200);
    const bad = await refused('/v1/twin/k', { headers: { 'x-api-key': `${READER_KEY}x` } });
    expect(bad.status).toBe(401);
    expect(bad.json().error.code).toBe('GW_AUTH_INVALID_CREDENTIALS');
  });

  it('leaves public routes open', async () => {
    expect((await call(`${gw.url}/v1/twin/public/x`, { anonymous: true })).status).toBe(200);
    expect((await call(`${gw.url}/healthz`, { anonymous: true })).status).toBe(200);
  });

  it('never logs the credential', async () => {
    const token = await hs().sign(hsKey);
    await call(`${gw.url}/v1/twin/log-check`, { anonymous: true, headers: bearer(token) });
    await call(`${gw.url}/v1/twin/log-check`, { anonymous: true, headers: { 'x-api-key': WRITER_KEY } });
    // The access log names the principal: the JWT subject and the API key's name.
    await gw.waitForLog((l) => l.url === '/v1/twin/log-check' && l.sub === 'alice');
    await gw.waitForLog((l) => l.url === '/v1/twin/log-check' && l.sub === 'key:writer');
    const all = gw.stdoutLines.join('\n');
    expect(all).not.toContain(token);
    expect(all).not.toContain(WRITER_KEY);
    expect(all).not.toContain(SECRET);
  });
});

describe('access log', () => {
  it('redacts the values of secret query parameters, keeps the others', async () => {
    const token = await hs().sign(hsKey);
    const query = `access_token=${token}&X-Amz-Signature=0123abcdef0123abcdef&api_key=${WRITER_KEY}&client_secret=s3cr3t-value-xyz&page=2&q=fog`;
    const res = await call(`${gw.url}/v1/twin/redact-check?${query}`, { anonymous: true, headers: { 'x-api-key': READER_KEY } });
    expect(res.status).toBe(200);
    const line = await gw.waitForLog((l) => typeof l.url === 'string' && l.url.startsWith('/v1/twin/redact-check'));
    expect(line.url).toBe('/v1/twin/redact-check?access_token=[redacted]&X-Amz-Signature=[redacted]&api_key=[redacted]&client_secret=[redacted]&page=2&q=fog');
    // Refused requests are logged the same way.
    await call(`${gw.url}/v1/twin/redact-check-2?refresh_token=rt-${token.slice(-12)}`, { anonymous: true });
    const refusedLine = await gw.waitForLog((l) => typeof l.url === 'string' && l.url.startsWith('/v1/twin/redact-check-2'));
    expect(refusedLine).toMatchObject({ status: 401, url: '/v1/twin/redact-check-2?refresh_token=[redacted]' });
    const all = gw.stdoutLines.join('\n');
    for (const secret of [token, token.slice(-12), '0123abcdef0123abcdef', WRITER_KEY, 's3cr3t-value-xyz']) expect(all).not.toContain(secret);
  });
});

describe('authorization', () => {
  it('403 insufficient_scope for a read-scope credential on POST', async () => {
    const res = await refused('/v1/twin/notes', { method: 'POST', headers: { 'x-api-key': READER_KEY, 'content-type': 'application/json' }, body: '{"text":"hi"}' });
    expect(res.status).toBe(403);
    expect(res.headers['www-authenticate']).toContain('error="insufficient_scope"');
    expect(res.headers['www-authenticate']).toContain('scope="write"');
    expect(res.json().error.code).toBe('GW_AUTH_INSUFFICIENT_SCOPE');
  });

  it('lets write scope POST and also read', async () => {
    const post = await call(`${gw.url}/v1/twin/notes`, { method: 'POST', anonymous: true, headers: { 'x-api-key': WRITER_KEY, 'content-type': 'application/json' }, body: '{"text":"hi"}' });
    expect(post.status).toBe(200);
    expect((await call(`${gw.url}/v1/twin/notes`, { anonymous: true, headers: { 'x-api-key': WRITER_KEY } })).status).toBe(200);
  });

  it('403 on an MFA route for an admin credential without a second factor', async () => {
    const res = await refused('/v1/twin/secure/x', { headers: { 'x-api-key': OPS_KEY } });
    expect(res.status).toBe(403);
    expect(res.json().error.code).toBe('GW_AUTH_MFA_REQUIRED');
    const noMfaJwt = await refused('/v1/twin/secure/x', { headers: bearer(await hs({ scope: 'admin', amr: ['pwd'] }).sign(hsKey)) });
    expect(noMfaJwt.status).toBe(403);
  });
});

describe('POST /auth/token with TOTP', () => {
  it('refuses an enrolled key without a code, issues an MFA token with a current one, refuses its replay', async () => {
    const noCode = await call(`${gw.url}/auth/token`, { method: 'POST', anonymous: true, headers: { 'x-api-key': OPS_KEY } });
    expect(noCode.status).toBe(401);
    expect(noCode.json().error.code).toBe('GW_AUTH_TOTP_REQUIRED');

    const code = await generate({ secret: TOTP_SECRET });
    const issued = await call(`${gw.url}/auth/token`, {
      method: 'POST',
      anonymous: true,
      headers: { 'x-api-key': OPS_KEY, 'content-type': 'application/json' },
      body: JSON.stringify({ totp: code }),
    });
    expect(issued.status).toBe(200);
    expect(issued.headers['cache-control']).toBe('no-store');
    const body = issued.json();
    expect(body).toMatchObject({ token_type: 'Bearer', expires_in: 900, scope: 'admin' });

    const secure = await call(`${gw.url}/v1/twin/secure/x`, { anonymous: true, headers: bearer(body.access_token) });
    expect(secure.status).toBe(200);

    const replay = await call(`${gw.url}/auth/token`, {
      method: 'POST',
      anonymous: true,
      headers: { 'x-api-key': OPS_KEY, 'content-type': 'application/json' },
      body: JSON.stringify({ totp: code }),
    });
    expect(replay.status).toBe(401);
    expect(replay.json().error).toMatchObject({ code: 'GW_AUTH_TOTP_INVALID', message: expect.stringContaining('already used') });
  });

  it('issues a plain token for a key that is not enrolled, without MFA', async () => {
    const issued = await call(`${gw.url}/auth/token`, { method: 'POST', anonymous: true, headers: { authorization: `ApiKey ${WRITER_KEY}` } });
    expect(issued.status).toBe(200);
    const token = issued.json().access_token as string;
    expect((await call(`${gw.url}/v1/twin/n`, { method: 'DELETE', anonymous: true, headers: bearer(token) })).status).toBe(200);
    expect((await call(`${gw.url}/v1/twin/secure/x`, { anonymous: true, headers: bearer(token) })).status).toBe(403);
  });

  it('refuses an unknown key', async () => {
    const res = await call(`${gw.url}/auth/token`, { method: 'POST', anonymous: true, headers: { 'x-api-key': 'nope-nope-nope' } });
    expect(res.status).toBe(401);
  });
});

describeWithRedis('TOTP across two replicas sharing Redis', () => {
  const OPS_A = 'ops-a-key-0123456789abcdef';
  const OPS_B = 'ops-b-key-0123456789abcdef';
  const SECRET_A = generateSecret();
  const SECRET_B = generateSecret();
  let r1: GatewayProcess;
  let r2: GatewayProcess;

  beforeAll(async () => {
    const redis = await startRedis();
    const yaml = `
auth:
  apiKeys:
    - { name: ops-a, sha256: ${sha256Hex(OPS_A)}, scopes: [admin], totpSecret: ${SECRET_A} }
    - { name: ops-b, sha256: ${sha256Hex(OPS_B)}, scopes: [admin], totpSecret: ${SECRET_B} }
  totp: { maxFailures: 5, lockoutSeconds: 60 }
state: { commandTimeoutMs: 1000 }
`;
    const env = { REDIS_URL: redis.url, JWT_SECRET_KEY: SECRET };
    [r1, r2] = await Promise.all([startGateway({ env, yaml }), startGateway({ env, yaml })]);
  });

  const token = (gw: GatewayProcess, key: string, totp: string) =>
    call(`${gw.url}/auth/token`, { method: 'POST', anonymous: true, headers: { 'x-api-key': key, 'content-type': 'application/json' }, body: JSON.stringify({ totp }) });

  it('a code gives an MFA token on one replica and is refused on the other', async () => {
    const code = await generate({ secret: SECRET_A });
    const first = await token(r1, OPS_A, code);
    expect(first.status).toBe(200);
    expect(first.json().scope).toBe('admin');
    const again = await token(r2, OPS_A, code);
    expect(again.status).toBe(401);
    expect(again.json().error).toMatchObject({ code: 'GW_AUTH_TOTP_INVALID', message: expect.stringContaining('already used') });
    // Sent to both at once, one code still gives one token.
    const next = await generate({ secret: SECRET_A, epoch: Math.floor(Date.now() / 1000) + 30 });
    const both = await Promise.all([token(r1, OPS_A, next), token(r2, OPS_A, next), token(r1, OPS_A, next), token(r2, OPS_A, next)]);
    expect(both.filter((r) => r.status === 200)).toHaveLength(1);
  });

  it('after 5 wrong codes spread over the replicas, the key is locked on both, the right code included', async () => {
    const right = await generate({ secret: SECRET_B });
    const wrong = String((Number(right) + 1) % 1_000_000).padStart(6, '0');
    const results = [];
    for (let i = 0; i < 5; i++) results.push(await token(i % 2 ? r2 : r1, OPS_B, wrong));
    expect(results.map((r) => r.status)).toEqual([401, 401, 401, 401, 401]);
    expect(results[3]!.headers['retry-after']).toBeUndefined();
    expect(results[4]!.headers['retry-after']).toBe('60');
    expect(results[4]!.json().error.message).toContain('locked for 60 s');
    for (const gw of [r2, r1]) {
      const locked = await token(gw, OPS_B, right);
      expect(locked.status).toBe(429);
      expect(locked.json().error.code).toBe('GW_AUTH_TOTP_LOCKED');
      expect(Number(locked.headers['retry-after'])).toBeGreaterThan(50);
      expect(Number(locked.headers['retry-after'])).toBeLessThanOrEqual(60);
    }
    // The other key is not affected: its codes are still checked.
    const other = await token(r2, OPS_A, 'x'.repeat(6));
    expect(other.status).toBe(401);
    expect(other.json().error.code).toBe('GW_AUTH_TOTP_INVALID');
  });
});
