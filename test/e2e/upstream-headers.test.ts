import type { IncomingHttpHeaders } from 'node:http';
import { jwtVerify, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/auth/api-keys.js';
import { identityKey } from '../../src/proxy/identity.js';
import { cleanup, E2E_API_KEY, startGateway, type GatewayProcess } from '../helpers/gateway.js';
import { call } from '../helpers/http.js';
import { testServer } from '../helpers/upstreams.js';

/*
 * What reaches an upstream (issue 11, items 5 and 10): never the gateway's credentials, the
 * verified identity instead (not spoofable), no method overrides, forwarding headers from the
 * gateway's own view; the upstream's own address in Location comes back as the gateway's
 * path; and a header-reflecting upstream behind the response cache cannot be poisoned.
 * A recording upstream keeps every request it received.
 */

const JWT_SECRET = 'e2e-jwt-secret-0123456789-abcdefghijkl';
const SECRET_KEY = 'e2e-secret-key-0123456789-abcdefghijklmn';
const READER_KEY = 'reader-key-0123456789';

interface Received {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
}

let gw: GatewayProcess;
let upstreamUrl: string;
const received: Received[] = [];
let seq = 0;

/** Headers that some frameworks reflect into pages (absolute links, redirects). */
const REFLECTED = ['x-forwarded-host', 'x-forwarded-port', 'x-forwarded-prefix', 'x-forwarded-proto', 'forwarded', 'x-original-url', 'x-rewrite-url', 'x-http-method-override'];

beforeAll(async () => {
  const upstream = await testServer((req, res) => {
    const url = req.url ?? '';
    if (url.endsWith('/health')) {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
      return;
    }
    received.push({ method: req.method ?? '', url, headers: req.headers });
    req.resume();
    req.on('end', () => {
      if (url.includes('/redirect')) {
        res.writeHead(302, {
          location: `${upstreamUrl}/base/legacy/target?x=1`,
          'content-location': `${upstreamUrl}/base/legacy/target`,
          'content-length': '0',
        });
        res.end();
        return;
      }
      if (url.includes('/offsite')) {
        res.writeHead(302, { location: 'https://idp.example/login?next=%2F', 'content-length': '0' }).end();
        return;
      }
      // A header-reflecting page, cacheable by anyone.
      const reflected = Object.fromEntries(REFLECTED.map((h) => [h, req.headers[h] ?? null]));
      const body = JSON.stringify({ method: req.method, url, reflected, link: `${req.headers['x-forwarded-proto']}://${req.headers['x-forwarded-host']}${req.headers['x-forwarded-prefix'] ?? ''}/next` });
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=60', 'content-length': Buffer.byteLength(body) }).end(body);
    });
  });
  upstreamUrl = upstream.url;
  gw = await startGateway({
    env: { JWT_SECRET_KEY: JWT_SECRET, SECRET_KEY },
    yaml: `
services:
  legacy: { urls: ["${upstream.url}/base"] }
auth:
  apiKeys:
    - { name: reader, sha256: ${sha256Hex(READER_KEY)}, scopes: [read] }
routes:
  - { id: app, prefix: /v1/app, service: legacy, rewritePrefix: /legacy, auth: { scope: read } }
  - { id: public, prefix: /v1/public, service: legacy, auth: { required: false } }
`,
  });
});
afterAll(cleanup);

/** A request and what the upstream received for it (matched by request id). */
async function send(path: string, options: Parameters<typeof call>[1] = {}, on: GatewayProcess = gw) {
  const id = `uh-${++seq}`;
  const res = await call(`${on.url}${path}`, { ...options, headers: { ...options.headers, 'x-request-id': id } });
  const got = received.filter((r) => r.headers['x-request-id'] === id);
  return { res, got, upstream: got[0] };
}

const hsToken = (claims: Record<string, unknown>, sub = 'alice') =>
  new SignJWT({ scope: 'read write', ...claims })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(new TextEncoder().encode(JWT_SECRET));

const gatewayHeaders = (h: IncomingHttpHeaders) => Object.fromEntries(Object.entries(h).filter(([k]) => k.startsWith('x-gateway-')));

describe("the gateway's credentials stay at the gateway", () => {
  it('an API key never reaches the upstream; the verified identity does', async () => {
    const { res, upstream } = await send('/v1/app/x', { anonymous: true, headers: { 'x-api-key': READER_KEY } });
    expect(res.status).toBe(200);
    expect(upstream!.headers['x-api-key']).toBeUndefined();
    expect(upstream!.headers.authorization).toBeUndefined();
    expect(upstream!.headers).toMatchObject({
      'x-gateway-principal': 'key:reader',
      'x-gateway-scopes': 'read',
      'x-gateway-auth-method': 'api-key',
      'x-gateway-mfa': 'false',
    });
    // The signed assertion: 60 s, for this service only, with a key derived from SECRET_KEY.
    const { payload } = await jwtVerify(String(upstream!.headers['x-gateway-identity']), identityKey(SECRET_KEY, 'legacy'), {
      audience: 'legacy',
      issuer: 'unified-gateway',
      algorithms: ['HS256'],
    });
    expect(payload).toMatchObject({ sub: 'key:reader', scope: 'read', auth_method: 'api-key', mfa: false });
    expect(payload.exp! - payload.iat!).toBe(60);
    // An upstream that replays the assertion against the gateway gets nowhere.
    const replay = await send('/v1/app/replay', { anonymous: true, headers: { authorization: `Bearer ${upstream!.headers['x-gateway-identity']}` } });
    expect(replay.res.status).toBe(401);
    expect(replay.got).toEqual([]);
  });

  it('a bearer token (an MFA one too) and the admin API_KEY never reach the upstream', async () => {
    const token = await hsToken({ amr: ['pwd', 'mfa'] });
    const bearer = await send('/v1/app/y', { anonymous: true, headers: { authorization: `Bearer ${token}` } });
    expect(bearer.res.status, bearer.res.text).toBe(200);
    expect(bearer.upstream!.headers.authorization).toBeUndefined();
    expect(JSON.stringify(bearer.upstream!.headers)).not.toContain(token);
    expect(bearer.upstream!.headers).toMatchObject({ 'x-gateway-principal': 'alice', 'x-gateway-auth-method': 'jwt', 'x-gateway-mfa': 'true' });

    for (const [i, headers] of [{ 'x-api-key': E2E_API_KEY }, { authorization: `ApiKey ${E2E_API_KEY}` }].entries()) {
      const { res, upstream } = await send(`/v1/app/z${i}`, { anonymous: true, headers });
      expect(res.status).toBe(200);
      expect(JSON.stringify(upstream!.headers)).not.toContain(E2E_API_KEY);
      expect(upstream!.headers['x-gateway-principal']).toBe('key:env-api-key');
    }
  });

  it('client-sent identity headers are never passed on, with or without credentials', async () => {
    const spoofed = { 'x-gateway-principal': 'root', 'x-gateway-scopes': 'admin', 'x-gateway-mfa': 'true', 'x-gateway-auth-method': 'jwt', 'x-gateway-identity': 'forged.jwt.value' };
    const authed = await send('/v1/app/s', { anonymous: true, headers: { ...spoofed, 'x-api-key': READER_KEY } });
    expect(authed.upstream!.headers).toMatchObject({ 'x-gateway-principal': 'key:reader', 'x-gateway-scopes': 'read', 'x-gateway-mfa': 'false', 'x-gateway-auth-method': 'api-key' });
    expect(authed.upstream!.headers['x-gateway-identity']).not.toBe('forged.jwt.value');
    const anonymous = await send('/v1/public/s', { anonymous: true, headers: spoofed });
    expect(anonymous.res.status).toBe(200);
    expect(gatewayHeaders(anonymous.upstream!.headers)).toEqual({});
  });

  it("the gateway's split cookie is removed, other cookies pass", async () => {
    const { upstream } = await send('/v1/app/c', { anonymous: true, headers: { 'x-api-key': READER_KEY, cookie: 'ugw_split=0123456789abcdef0123456789abcdef; session=s1' } });
    expect(upstream!.headers.cookie).toBe('session=s1');
  });
});

describe('header and target hygiene', () => {
  it('method overrides are removed, headers and ?_method alike', async () => {
    const { res, upstream } = await send('/v1/app/items/1?_method=DELETE&keep=1', {
      anonymous: true,
      headers: { 'x-api-key': READER_KEY, 'x-http-method-override': 'DELETE', 'x-method-override': 'DELETE', 'x-http-method': 'DELETE' },
    });
    expect(res.status).toBe(200);
    expect(upstream!.method).toBe('GET');
    expect(upstream!.url).toBe('/base/legacy/items/1?keep=1');
    for (const h of ['x-http-method-override', 'x-method-override', 'x-http-method']) expect(upstream!.headers[h], h).toBeUndefined();
  });

  it("client forwarding headers are replaced by the gateway's own values or removed", async () => {
    const { upstream } = await send('/v1/app/f', {
      anonymous: true,
      headers: {
        'x-api-key': READER_KEY,
        forwarded: 'for=6.6.6.6;host=evil.example;proto=https',
        'x-real-ip': '6.6.6.6',
        'x-original-url': '/admin/blocked-clients',
        'x-rewrite-url': '/admin/blocked-clients',
        'x-forwarded-prefix': '/evil',
        'x-forwarded-port': '666',
        'x-forwarded-host': 'evil.example',
        'x-forwarded-proto': 'https',
        'x-forwarded-for': '6.6.6.6',
        'true-client-ip': '6.6.6.6',
      },
    });
    const h = upstream!.headers;
    expect(h['x-forwarded-for']).toBe('127.0.0.1');
    expect(h['x-real-ip']).toBe('127.0.0.1');
    expect(h['x-forwarded-host']).toBe(`127.0.0.1:${gw.port}`);
    expect(h['x-forwarded-proto']).toBe('http');
    // The route rewrites /v1/app to /legacy: the upstream learns the public prefix.
    expect(h['x-forwarded-prefix']).toBe('/v1/app');
    for (const gone of ['forwarded', 'x-original-url', 'x-rewrite-url', 'x-forwarded-port', 'true-client-ip']) expect(h[gone], gone).toBeUndefined();
  });

  it("an upstream's Location on its own origin comes back as the gateway's path", async () => {
    const { res } = await send('/v1/app/redirect', { anonymous: true, headers: { 'x-api-key': READER_KEY } });
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe('/v1/app/target?x=1');
    expect(res.headers['content-location']).toBe('/v1/app/target');
    const offsite = await send('/v1/app/offsite', { anonymous: true, headers: { 'x-api-key': READER_KEY } });
    expect(offsite.res.headers.location).toBe('https://idp.example/login?next=%2F');
  });
});

describe('cache poisoning through forwarding headers', () => {
  it('an anonymous request with forged forwarding headers does not poison the cached answer of a header-reflecting upstream', async () => {
    const evil = {
      'x-forwarded-host': 'evil.example',
      'x-forwarded-port': '666',
      'x-forwarded-prefix': '/evil',
      'x-forwarded-proto': 'https',
      forwarded: 'host=evil.example;proto=https',
      'x-original-url': '/evil',
      'x-rewrite-url': '/evil',
      'x-http-method-override': 'DELETE',
    };
    const poison = await send('/v1/public/page', { anonymous: true, headers: evil });
    expect(poison.res.status).toBe(200);
    expect(poison.res.headers['x-cache']).toBe('MISS');
    // Even the attacker's own answer carries none of it.
    expect(poison.res.text).not.toContain('evil');
    expect(poison.res.text).not.toContain('666');

    const victim = await send('/v1/public/page', { anonymous: true });
    expect(victim.res.headers['x-cache']).toBe('HIT');
    expect(victim.got).toEqual([]);
    expect(victim.res.text).not.toContain('evil');
    expect(victim.res.text).not.toContain('666');
    expect(victim.res.json().link).toBe(`http://127.0.0.1:${gw.port}/next`);
  });

  it('a forged Host is part of the cache key: it never answers requests for the real host', async () => {
    const poison = await send('/v1/public/host-page', { anonymous: true, headers: { host: 'evil.example' } });
    expect(poison.res.status).toBe(200);
    const victim = await send('/v1/public/host-page', { anonymous: true });
    expect(victim.res.text).not.toContain('evil');
    expect(victim.res.headers['x-cache']).toBe('MISS');
  });
});

describe('a route that opts in to forwarding the bearer token', () => {
  let pass: GatewayProcess;
  beforeAll(async () => {
    pass = await startGateway({
      env: { JWT_SECRET_KEY: JWT_SECRET, SECRET_KEY },
      yaml: `
services:
  legacy: { urls: ["${upstreamUrl}/base"] }
auth:
  apiKeys:
    - { name: reader, sha256: ${sha256Hex(READER_KEY)}, scopes: [read] }
routes:
  - { id: pass, prefix: /v1/pass, service: legacy, forwardAuthorization: true }
`,
    });
  });

  it('passes the bearer token, never an API key', async () => {
    const token = await hsToken({});
    const bearer = await send('/v1/pass/a', { anonymous: true, headers: { authorization: `Bearer ${token}` } }, pass);
    expect(bearer.upstream!.headers.authorization).toBe(`Bearer ${token}`);
    const key = await send('/v1/pass/b', { anonymous: true, headers: { authorization: `ApiKey ${READER_KEY}` } }, pass);
    expect(key.res.status).toBe(200);
    expect(key.upstream!.headers.authorization).toBeUndefined();
    expect(key.upstream!.headers['x-gateway-principal']).toBe('key:reader');
  });
});
