import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_ROUTES, loadConfig } from '../../src/config/index.js';
import { fileSchema } from '../../src/config/schema.js';
import { buildRouteTable, matchRoute, prefixMatches, routePatterns } from '../../src/routing/route-table.js';

function table(env: Record<string, string> = {}) {
  const result = loadConfig(env);
  if (!result.ok) throw new Error(result.problems.join('\n'));
  return buildRouteTable(result.config);
}

describe('route table', () => {
  it('maps the default prefixes to the five services', () => {
    const t = table();
    expect(matchRoute(t, 'GET', '/v1/twin/notes')).toMatchObject({ kind: 'route', route: { service: 'twin' } });
    expect(matchRoute(t, 'POST', '/v1/agents')).toMatchObject({ kind: 'route', route: { service: 'agent-controller' } });
    expect(matchRoute(t, 'GET', '/v1/knowledge/search?q=x')).toMatchObject({ kind: 'route', route: { service: 'knowledge' } });
    expect(matchRoute(t, 'DELETE', '/v1/fog/jobs/1')).toMatchObject({ kind: 'route', route: { service: 'fog' } });
    expect(matchRoute(t, 'PUT', '/v1/p2p/peers/7')).toMatchObject({ kind: 'route', route: { service: 'p2p' } });
  });

  it('matches whole path segments only', () => {
    const t = table();
    expect(matchRoute(t, 'GET', '/v1/twinkle')).toEqual({ kind: 'none' });
    expect(matchRoute(t, 'GET', '/v1')).toEqual({ kind: 'none' });
    expect(prefixMatches('/v1/twin', '/v1/twin')).toBe(true);
    expect(prefixMatches('/v1/twin', '/v1/twin/')).toBe(true);
    expect(prefixMatches('/', '/anything')).toBe(true);
  });

  it('matches on the canonical path, as the server does', () => {
    const t = table();
    expect(matchRoute(t, 'GET', '//v1//%74win/notes')).toMatchObject({ kind: 'route', route: { service: 'twin' } });
    expect(matchRoute(t, 'GET', 'http://evil.example/v1/fog/x?y=1')).toMatchObject({ kind: 'route', route: { service: 'fog' } });
  });

  it('says which switch disabled a route', () => {
    const t = table({ ENABLE_P2P_FOG: 'false', ENABLE_AGENT_FORGE: 'no' });
    expect(matchRoute(t, 'GET', '/v1/fog/x')).toMatchObject({ kind: 'disabled', reason: 'ENABLE_P2P_FOG=false' });
    expect(matchRoute(t, 'GET', '/v1/p2p')).toMatchObject({ kind: 'disabled', reason: 'ENABLE_P2P_FOG=false' });
    expect(matchRoute(t, 'GET', '/v1/agents/1')).toMatchObject({ kind: 'disabled', reason: 'ENABLE_AGENT_FORGE=false' });
    expect(t.active.map((r) => r.service).sort()).toEqual(['knowledge', 'twin']);
  });

  it('prefers the longest prefix and reports methods a route does not accept', () => {
    const t = buildRouteTable({
      services: {
        a: { name: 'a', urls: ['http://a'], healthPath: '/health', timeoutMs: 1, enabled: true },
        b: { name: 'b', urls: ['http://b'], healthPath: '/health', timeoutMs: 1, enabled: true },
      },
      routes: [
        { ...DEFAULT_ROUTES[0]!, id: 'a', prefix: '/v1', service: 'a', methods: null },
        { ...DEFAULT_ROUTES[0]!, id: 'b', prefix: '/v1/b', service: 'b', methods: ['GET'] },
      ],
    });
    expect(matchRoute(t, 'GET', '/v1/b/x')).toMatchObject({ kind: 'route', route: { id: 'b' } });
    expect(matchRoute(t, 'POST', '/v1/b/x')).toEqual({ kind: 'method-not-allowed', route: t.active[0], allowed: ['GET'] });
    expect(matchRoute(t, 'POST', '/v1/c')).toMatchObject({ kind: 'route', route: { id: 'a' } });
  });

  it('covers a prefix and everything under it with Fastify patterns', () => {
    expect(routePatterns('/v1/twin')).toEqual(['/v1/twin', '/v1/twin/*']);
    expect(routePatterns('/')).toEqual(['/*']);
  });
});

describe('route keys of the request path and upstream credentials', () => {
  it('are off unless a route opts in', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'ugw-routes-')), 'gateway.yaml');
    writeFileSync(
      file,
      'routes:\n  - { id: files, prefix: /v1/files, service: p2p, allowEncodedSlashes: true, allowSemicolons: true, forwardAuthorization: true }\n  - { id: plain, prefix: /v1/plain, service: p2p }\n',
    );
    const result = loadConfig({}, { file });
    if (!result.ok) throw new Error(result.problems.join('\n'));
    const routes = result.config.routes;
    expect(routes.find((r) => r.id === 'files')).toMatchObject({ allowEncodedSlashes: true, allowSemicolons: true, forwardAuthorization: true });
    const plain = routes.find((r) => r.id === 'plain')!;
    expect([plain.allowEncodedSlashes, plain.allowSemicolons, plain.forwardAuthorization]).toEqual([undefined, undefined, undefined]);
    expect(DEFAULT_ROUTES.every((r) => r.allowEncodedSlashes === undefined && r.forwardAuthorization === undefined)).toBe(true);
  });

  it('refuse prefixes and rewrites with dot or empty segments', () => {
    const parse = (route: Record<string, unknown>) => fileSchema.safeParse({ routes: [{ service: 'twin', ...route }] }).success;
    expect(parse({ prefix: '/v1/x' })).toBe(true);
    expect(parse({ prefix: '/v1/../admin' })).toBe(false);
    expect(parse({ prefix: '/v1/./x' })).toBe(false);
    expect(parse({ prefix: '/v1/..' })).toBe(false);
    expect(parse({ prefix: '/v1/x', rewritePrefix: '/api' })).toBe(true);
    expect(parse({ prefix: '/v1/x', rewritePrefix: '/' })).toBe(true);
    expect(parse({ prefix: '/v1/x', rewritePrefix: '//evil.example/x' })).toBe(false);
    expect(parse({ prefix: '/v1/x', rewritePrefix: '/a/../admin' })).toBe(false);
    expect(parse({ prefix: '/v1/x', rewritePrefix: '/a?b' })).toBe(false);
  });
});

