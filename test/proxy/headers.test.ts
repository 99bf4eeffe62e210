import { describe, expect, it } from 'vitest';
import { acceptableRequestId, clientResponseHeaders, continueTrace, upstreamRequestHeaders } from '../../src/proxy/headers.js';
import { upstreamPath } from '../../src/proxy/forward.js';

const ctx = { clientIp: '10.0.0.9', protocol: 'https', host: 'api.example.org', requestId: 'req-1', traceparent: '00-aa-bb-01' };

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
        authorization: 'Bearer t',
      },
      ctx,
    );
    for (const gone of ['connection', 'x-secret-hop', 'keep-alive', 'transfer-encoding', 'te', 'upgrade', 'proxy-authorization', 'host', 'expect']) {
      expect(out).not.toHaveProperty(gone);
    }
    expect(out['content-type']).toBe('application/json');
    expect(out.authorization).toBe('Bearer t');
  });

  it('appends the client to X-Forwarded-For and sets the other forwarding headers', () => {
    const out = upstreamRequestHeaders({ 'x-forwarded-for': '1.1.1.1', 'x-forwarded-proto': 'spoofed', 'x-request-id': 'client' }, ctx);
    expect(out).toMatchObject({
      'x-forwarded-for': '1.1.1.1, 10.0.0.9',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'api.example.org',
      'x-request-id': 'req-1',
      traceparent: '00-aa-bb-01',
    });
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
