import { describe, expect, it } from 'vitest';
import { jwtVerify } from 'jose';
import type { Principal } from '../../src/auth/principal.js';
import { gatewayPath, upstreamPath } from '../../src/proxy/exchange.js';
import {
  acceptableRequestId,
  clientResponseHeaders,
  continueTrace,
  forwardingView,
  publicLocation,
  rewriteLocations,
  upstreamRequestHeaders,
} from '../../src/proxy/headers.js';
import { IdentityAssertions, identityHeaders, identityKey } from '../../src/proxy/identity.js';

const ctx = {
  clientIp: '10.0.0.9',
  forwardedFor: '10.0.0.9',
  protocol: 'https',
  host: 'api.example.org',
  requestId: 'req-1',
  traceparent: '00-aa-bb-01',
};

describe('upstream request headers', () => {
  it('removes hop-by-hop headers, including those named in Connection', () => {
    const out = upstreamRequestHeaders(
      {
        connection: 'keep-alive, X-Secret-Hop',
        'x-secret-hop': 'drop me',
        'keep-alive': 'timeout=5',
        'transfer-encoding': 'chunked',
        te: 'trailers',
        upgrade: 'websocket',
        'proxy-authorization': 'Basic x',
        host: 'api.example.org',
        expect: '100-continue',
        'content-type': 'application/json',
      },
      ctx,
    );
    for (const gone of ['connection', 'x-secret-hop', 'keep-alive', 'transfer-encoding', 'te', 'upgrade', 'proxy-authorization', 'host', 'expect']) {
      expect(out).not.toHaveProperty(gone);
    }
    expect(out['content-type']).toBe('application/json');
  });

  it("removes the gateway's credentials and its own cookie", () => {
    const out = upstreamRequestHeaders(
      {
        authorization: 'Bearer eyJhbGciOiJIUzI1NiJ9.x.y',
        'x-api-key': 'admin-key',
        'proxy-authorization': 'Bearer z',
        cookie: 'session=abc; ugw_split=0123456789abcdef0123456789abcdef; theme=dark',
        'x-custom': 'kept',
      },
      ctx,
    );
    expect(out).not.toHaveProperty('authorization');
    expect(out).not.toHaveProperty('x-api-key');
    expect(out).not.toHaveProperty('proxy-authorization');
    expect(out.cookie).toBe('session=abc; theme=dark');
    expect(out['x-custom']).toBe('kept');
    expect(upstreamRequestHeaders({ cookie: 'ugw_split=0123456789abcdef0123456789abcdef' }, ctx)).not.toHaveProperty('cookie');
    expect(upstreamRequestHeaders({ cookie: 'a=1' }, ctx).cookie).toBe('a=1');
  });

  it('forwards a bearer token only on a route that opts in, and never an API key', () => {
    const opted = { ...ctx, forwardAuthorization: true };
    expect(upstreamRequestHeaders({ authorization: 'Bearer tok' }, opted).authorization).toBe('Bearer tok');
    expect(upstreamRequestHeaders({ authorization: 'bearer tok' }, opted).authorization).toBe('bearer tok');
    expect(upstreamRequestHeaders({ authorization: 'ApiKey k' }, opted)).not.toHaveProperty('authorization');
    expect(upstreamRequestHeaders({ authorization: 'Basic dTpw' }, opted)).not.toHaveProperty('authorization');
    expect(upstreamRequestHeaders({ authorization: 'Bearer tok', 'x-api-key': 'k' }, opted)).not.toHaveProperty('x-api-key');
  });

  it('removes method overrides', () => {
    const out = upstreamRequestHeaders({ 'x-http-method-override': 'DELETE', 'x-method-override': 'PUT', 'x-http-method': 'PATCH' }, ctx);
    expect(Object.keys(out).filter((k) => k.includes('method'))).toEqual([]);
  });

  it("replaces or removes the client's forwarding and routing claims", () => {
    const out = upstreamRequestHeaders(
      {
        'x-forwarded-for': '1.1.1.1',
        'x-forwarded-proto': 'spoofed',
        'x-forwarded-host': 'evil.example',
        'x-forwarded-port': '666',
        'x-forwarded-prefix': '/evil',
        'x-real-ip': '6.6.6.6',
        forwarded: 'for=6.6.6.6;host=evil.example',
        'x-original-url': '/admin',
        'x-rewrite-url': '/admin',
        'x-original-host': 'evil.example',
        'true-client-ip': '6.6.6.6',
        'cf-connecting-ip': '6.6.6.6',
        'x-client-ip': '6.6.6.6',
        'x-request-id': 'client',
      },
      ctx,
    );
    expect(out).toEqual({
      'x-forwarded-for': '10.0.0.9',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'api.example.org',
      'x-real-ip': '10.0.0.9',
      'x-request-id': 'req-1',
      traceparent: '00-aa-bb-01',
    });
  });

  it('sets X-Forwarded-Prefix for a route that rewrites its prefix', () => {
    expect(upstreamRequestHeaders({ 'x-forwarded-prefix': '/evil' }, { ...ctx, prefix: '/v1/legacy' })['x-forwarded-prefix']).toBe('/v1/legacy');
  });

  it('sends the identity headers and never a client-sent copy', () => {
    const spoofed = { 'x-gateway-principal': 'root', 'x-gateway-scopes': 'admin', 'x-gateway-mfa': 'true', 'x-gateway-identity': 'forged', 'X-Gateway-Other': 'x' };
    const anonymous = upstreamRequestHeaders(spoofed, ctx);
    expect(Object.keys(anonymous).filter((k) => k.startsWith('x-gateway-'))).toEqual([]);
    const identity = identityHeaders({ kind: 'api-key', subject: 'key:reader', keyName: 'reader', scopes: ['read'], mfa: false });
    const out = upstreamRequestHeaders(spoofed, { ...ctx, identity });
    expect(Object.fromEntries(Object.entries(out).filter(([k]) => k.startsWith('x-gateway-')))).toEqual({
      'x-gateway-principal': 'key:reader',
      'x-gateway-scopes': 'read',
      'x-gateway-auth-method': 'api-key',
      'x-gateway-mfa': 'false',
    });
  });
});

describe('forwarding view', () => {
  const request = (over: Partial<Record<'ip' | 'ips' | 'protocol' | 'host', unknown>> = {}) =>
    ({ ip: '127.0.0.1', ips: undefined, protocol: 'http', host: 'gw.example:8000', socket: { remoteAddress: '127.0.0.1' }, ...over }) as never;

  it('without trusted proxies: the peer alone', () => {
    expect(forwardingView(request())).toEqual({ clientIp: '127.0.0.1', forwardedFor: '127.0.0.1', protocol: 'http', host: 'gw.example:8000' });
  });

  it('behind trusted proxies: the trusted chain, client first', () => {
    // Fastify's request.ips: the peer, each trusted hop, then the client.
    const view = forwardingView(request({ ip: '203.0.113.7', ips: ['127.0.0.1', '10.0.0.2', '203.0.113.7'], protocol: 'https' }));
    expect(view).toMatchObject({ clientIp: '203.0.113.7', forwardedFor: '203.0.113.7, 10.0.0.2, 127.0.0.1', protocol: 'https' });
  });

  it('never passes a protocol or host that is not one', () => {
    expect(forwardingView(request({ protocol: 'gopher' })).protocol).toBe('http');
    for (const host of ['evil.example/x', 'a b', 'evil"x', '', 'x'.repeat(300)]) expect(forwardingView(request({ host })).host).toBeUndefined();
    for (const host of ['gw.example', 'gw.example:443', '[::1]:8000', '127.0.0.1']) expect(forwardingView(request({ host })).host).toBe(host);
  });
});

describe('identity', () => {
  const reader: Principal = { kind: 'jwt', subject: 'alice', scopes: ['read', 'write'], mfa: true };

  it('signs a 60 s assertion per service with a key derived from SECRET_KEY', async () => {
    let now = 1_700_000_000_000;
    const ids = new IdentityAssertions({ secretKey: 's'.repeat(40), issuer: 'unified-gateway', now: () => now });
    const headers = (await ids.headers(reader, 'twin'))!;
    expect(headers).toMatchObject({ 'x-gateway-principal': 'alice', 'x-gateway-scopes': 'read write', 'x-gateway-auth-method': 'jwt', 'x-gateway-mfa': 'true' });
    const { payload } = await jwtVerify(headers['x-gateway-identity']!, identityKey('s'.repeat(40), 'twin'), {
      audience: 'twin',
      issuer: 'unified-gateway',
      currentDate: new Date(now),
      algorithms: ['HS256'],
    });
    expect(payload).toMatchObject({ sub: 'alice', scope: 'read write', auth_method: 'jwt', mfa: true });
    expect(payload.exp! - payload.iat!).toBe(60);
    // Another service's key does not verify it.
    await expect(jwtVerify(headers['x-gateway-identity']!, identityKey('s'.repeat(40), 'knowledge'), { currentDate: new Date(now) })).rejects.toThrow();
    // Reused while at least 30 s are left, then renewed.
    now += 29_000;
    expect((await ids.headers(reader, 'twin'))!['x-gateway-identity']).toBe(headers['x-gateway-identity']);
    now += 2_000;
    expect((await ids.headers(reader, 'twin'))!['x-gateway-identity']).not.toBe(headers['x-gateway-identity']);
  });

  it('sends the plain headers only without SECRET_KEY, and nothing for anonymous requests', async () => {
    const ids = new IdentityAssertions({ secretKey: undefined, issuer: 'unified-gateway' });
    expect(await ids.headers(reader, 'twin')).not.toHaveProperty('x-gateway-identity');
    expect(await ids.headers(null, 'twin')).toBeUndefined();
  });

  it('keeps header values valid whatever the subject', () => {
    expect(identityHeaders({ ...reader, subject: 'a\r\nx-evil: 1' })['x-gateway-principal']).toBe('a%0D%0Ax-evil: 1');
    expect(identityHeaders({ ...reader, subject: 'josé 50%' })['x-gateway-principal']).toBe('jos%C3%A9 50%25');
    expect(decodeURIComponent(identityHeaders({ ...reader, subject: 'josé 50%' })['x-gateway-principal']!)).toBe('josé 50%');
  });
});

describe('upstream Location', () => {
  const route = { prefix: '/v1/legacyapp', rewritePrefix: '/legacy' };
  const toGateway = (p: string) => gatewayPath(p, route, '/base');
  const origin = 'http://10.1.2.3:8080';

  it('maps the upstream origin and path back to the gateway path', () => {
    expect(publicLocation('http://10.1.2.3:8080/base/legacy/users/7?x=1#f', origin, toGateway)).toBe('/v1/legacyapp/users/7?x=1#f');
    expect(publicLocation('HTTP://10.1.2.3:8080/base/legacy', origin, toGateway)).toBe('/v1/legacyapp');
    expect(publicLocation('//10.1.2.3:8080/base/legacy/a', origin, toGateway)).toBe('/v1/legacyapp/a');
    expect(publicLocation('/base/legacy/a', origin, toGateway)).toBe('/v1/legacyapp/a');
  });

  it("drops the upstream's origin even outside the route, and leaves other URLs alone", () => {
    expect(publicLocation('http://10.1.2.3:8080/elsewhere', origin, toGateway)).toBe('/elsewhere');
    expect(publicLocation('http://10.1.2.3:8081/base/legacy/a', origin, toGateway)).toBe('http://10.1.2.3:8081/base/legacy/a');
    expect(publicLocation('https://idp.example/login', origin, toGateway)).toBe('https://idp.example/login');
    expect(publicLocation('/elsewhere', origin, toGateway)).toBe('/elsewhere');
    expect(publicLocation('relative/x', origin, toGateway)).toBe('relative/x');
  });

  it('rewrites Location and Content-Location in place', () => {
    const headers: Record<string, string | string[] | undefined> = { location: `${origin}/base/legacy/a`, 'content-location': '/base/legacy/b', etag: '"x"' };
    rewriteLocations(headers, origin, toGateway);
    expect(headers).toEqual({ location: '/v1/legacyapp/a', 'content-location': '/v1/legacyapp/b', etag: '"x"' });
  });

  it('is the reverse of the forward path mapping', () => {
    const cases: Array<[{ prefix: string; rewritePrefix?: string }, string, string]> = [
      [{ prefix: '/v1/twin' }, '', '/v1/twin/a?b=1'],
      [{ prefix: '/v1/twin' }, '/api', '/v1/twin/a'],
      [{ prefix: '/v1/twin', rewritePrefix: '/' }, '', '/v1/twin/a?b=1'],
      [{ prefix: '/v1/twin', rewritePrefix: '/' }, '', '/v1/twin'],
      [{ prefix: '/v1/twin', rewritePrefix: '/v2/me' }, '/base', '/v1/twin/a'],
      [{ prefix: '/', rewritePrefix: '/api' }, '', '/x/y'],
    ];
    for (const [r, base, path] of cases) expect(gatewayPath(upstreamPath(path, r, base), r, base), JSON.stringify([r, base, path])).toBe(path);
    expect(gatewayPath('/other', { prefix: '/v1/twin', rewritePrefix: '/v2' }, '')).toBeUndefined();
    expect(gatewayPath('/v2x/a', { prefix: '/v1/twin', rewritePrefix: '/v2' }, '')).toBeUndefined();
  });
});

describe('client response headers', () => {
  it('drops hop-by-hop headers and keeps the rest', () => {
    const out = clientResponseHeaders({
      connection: 'close, x-internal',
      'x-internal': '1',
      'transfer-encoding': 'chunked',
      'x-powered-by': 'Express',
      server: 'gunicorn/21',
      'set-cookie': ['a=1', 'b=2'],
      etag: '"x"',
    });
    expect(out).toEqual({ 'set-cookie': ['a=1', 'b=2'], etag: '"x"' });
  });
});

describe('trace context', () => {
  it('keeps the trace id and flags and makes a new parent span', () => {
    const incoming = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const t = continueTrace(incoming);
    expect(t.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(t.traceparent).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
    expect(t.traceparent).not.toContain('00f067aa0ba902b7');
  });

  it('makes distinct ids across pool refills', () => {
    const ids = new Set(Array.from({ length: 2000 }, () => continueTrace(undefined).traceparent));
    expect(ids.size).toBe(2000);
  });

  it('starts a new trace for missing or invalid headers', () => {
    for (const bad of [undefined, 'garbage', '00-00000000000000000000000000000000-00f067aa0ba902b7-01', 'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01']) {
      const t = continueTrace(bad);
      expect(t.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      expect(t.traceId).not.toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    }
  });
});

describe('request ids', () => {
  it('keeps sane ids and refuses others', () => {
    expect(acceptableRequestId('abc-123_X.y:z')).toBe('abc-123_X.y:z');
    expect(acceptableRequestId('has space')).toBeUndefined();
    expect(acceptableRequestId('x'.repeat(129))).toBeUndefined();
    expect(acceptableRequestId(['a', 'b'])).toBeUndefined();
  });
});

describe('upstream path', () => {
  const route = { id: 'r', prefix: '/v1/twin', service: 'twin', methods: null };
  it('forwards the path unchanged by default and prepends the upstream base path', () => {
    expect(upstreamPath('/v1/twin/a?b=1', route, '')).toBe('/v1/twin/a?b=1');
    expect(upstreamPath('/v1/twin/a', route, '/api')).toBe('/api/v1/twin/a');
  });
  it('rewrites the prefix when configured', () => {
    const strip = { ...route, rewritePrefix: '/' };
    expect(upstreamPath('/v1/twin/a?b=1', strip, '')).toBe('/a?b=1');
    expect(upstreamPath('/v1/twin', strip, '')).toBe('/');
    expect(upstreamPath('/v1/twin?x=1', strip, '')).toBe('/?x=1');
    expect(upstreamPath('/v1/twin/a', { ...route, rewritePrefix: '/v2/me' }, '/base')).toBe('/base/v2/me/a');
  });
});
