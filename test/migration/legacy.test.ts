import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { buildGateway, type Gateway } from '../../src/server/app.js';
import { cleanup, waitFor } from '../helpers/gateway.js';
import { testServer } from '../helpers/upstreams.js';

const open: Gateway[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((g) => g.close()));
  await cleanup();
});

const SUNSET = Date.parse('2027-06-30T00:00:00Z');

async function gateway(yaml: string, env: Record<string, string>, now: () => number): Promise<Gateway> {
  const file = join(mkdtempSync(join(tmpdir(), 'gw-legacy-')), 'gateway.yaml');
  writeFileSync(file, yaml);
  const result = loadConfig({ GATEWAY_HOST: '127.0.0.1', GATEWAY_PORT: '0', ...env }, { file });
  if (!result.ok) throw new Error(result.problems.join('\n'));
  const g = await buildGateway(result.config, { logger: pino({ level: 'silent' }), processMetrics: false, now });
  open.push(g);
  return g;
}

describe('legacy endpoints', () => {
  it('maps a legacy path through the one request path, with Deprecation, Sunset and Link, and 410 after the sunset', async () => {
    const seen: string[] = [];
    const upstream = await testServer((req, res) => {
      seen.push(req.url ?? '');
      res.setHeader('content-type', 'application/json');
      res.end('{"ok":true}');
    });
    let now = SUNSET - 86_400_000;
    const g = await gateway(
      'legacy:\n  - path: /notes\n    to: /v1/twin/notes\n    deprecated: 2026-01-01T00:00:00Z\n    sunset: 2027-06-30T00:00:00Z\n    docs: https://docs.example/migrate\n',
      { TWIN_SERVICE_URL: upstream.url, API_KEY: 'legacy-caller-key-0123456789' },
      () => now,
    );
    const res = await g.app.inject({ method: 'GET', url: '/notes?x=1', headers: { 'x-api-key': 'legacy-caller-key-0123456789' } });
    expect(res.statusCode).toBe(200);
    expect(seen).toEqual(['/v1/twin/notes?x=1']);
    expect(res.headers.deprecation).toBe(`@${Date.parse('2026-01-01T00:00:00Z') / 1000}`);
    expect(res.headers.sunset).toBe('Wed, 30 Jun 2027 00:00:00 GMT');
    expect(res.headers.link).toContain('<https://docs.example/migrate>; rel="deprecation"');
    // The legacy path is still protected like the new one: no credential, 401 (with the headers).
    const anonymous = await g.app.inject({ method: 'GET', url: '/notes' });
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.headers.deprecation).toBeDefined();
    // The new path itself carries no deprecation.
    const direct = await g.app.inject({ method: 'GET', url: '/v1/twin/notes', headers: { 'x-api-key': 'legacy-caller-key-0123456789' } });
    expect(direct.headers.deprecation).toBeUndefined();

    now = SUNSET;
    const gone = await g.app.inject({ method: 'GET', url: '/notes', headers: { 'x-api-key': 'legacy-caller-key-0123456789' } });
    expect(gone.statusCode).toBe(410);
    expect(gone.json().error.code).toBe('GW_LEGACY_GONE');
    expect(gone.json().error.message).toContain('/v1/twin/notes');
    expect(gone.headers.sunset).toBe('Wed, 30 Jun 2027 00:00:00 GMT');
    expect(seen).toHaveLength(2);

    // Counted per endpoint and caller (a 410 is answered before authentication: anonymous), and listed with the last time seen.
    const metrics = (await g.metrics.registry.getSingleMetricAsString('gateway_legacy_requests_total')).split('\n');
    expect(metrics).toContain('gateway_legacy_requests_total{endpoint="/notes",caller="key:env-api-key"} 1');
    expect(metrics).toContain('gateway_legacy_requests_total{endpoint="/notes",caller="anonymous"} 2');
    const usage = await waitFor(
      async () => {
        const r = await g.app.inject({ method: 'GET', url: '/admin/legacy-usage', headers: { 'x-api-key': 'legacy-caller-key-0123456789' } });
        const body = r.json() as { callers: Array<{ caller: string; calls: number; lastSeen: string }> };
        return body.callers.find((c) => c.caller === 'key:env-api-key' && c.calls === 1) ? body : undefined;
      },
      5000,
      'legacy usage recorded',
    );
    expect(usage.callers.find((c) => c.caller === 'key:env-api-key')!.lastSeen).toBe(new Date(SUNSET - 86_400_000).toISOString());
    expect(usage.callers.find((c) => c.caller === 'anonymous')!.calls).toBe(2);
  });

  it('has the seed mapping by default: /status is /healthz with the headers', async () => {
    const g = await gateway('{}\n', {}, () => Date.parse('2026-12-01T00:00:00Z'));
    const res = await g.app.inject({ method: 'GET', url: '/status' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toHaveProperty('status');
    expect(res.headers.deprecation).toMatch(/^@\d+$/);
    expect(g.config.legacy.map((e) => [e.path, e.to])).toEqual([
      ['/query', '/v1/query'],
      ['/upload', '/v1/upload'],
      ['/status', '/healthz'],
    ]);
    const metrics = await g.app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.headers.deprecation).toBeUndefined();
  });

  it('/query is /v1/query: the routing model picks the service (auto-detection), answered with the deprecation headers', async () => {
    const seen: string[] = [];
    const upstream = await testServer((req, res) => {
      seen.push(req.url ?? '');
      res.setHeader('content-type', 'application/json');
      res.end('{"answer":42}');
    });
    const urls = Object.fromEntries(['TWIN_SERVICE_URL', 'AGENT_CONTROLLER_URL', 'KNOWLEDGE_SYSTEM_URL', 'FOG_COORDINATOR_URL', 'P2P_BRIDGE_URL'].map((k) => [k, upstream.url]));
    const g = await gateway('{}\n', { ...urls, API_KEY: 'legacy-caller-key-0123456789' }, () => Date.parse('2026-12-01T00:00:00Z'));
    const res = await g.app.inject({
      method: 'POST',
      url: '/query',
      headers: { 'x-api-key': 'legacy-caller-key-0123456789', 'content-type': 'application/json' },
      payload: { query: 'What do my notes say about the meeting tomorrow?' },
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-routing-reason']).toBeDefined();
    expect(res.headers.deprecation).toMatch(/^@\d+$/);
    expect(res.headers.link).toContain('</v1/query>; rel="successor-version"');
    expect(seen).toHaveLength(1);
  });

  it('bounds the caller label: past the budget, callers are "other"', async () => {
    const { LegacyEndpoints } = await import('../../src/migration/legacy.js');
    const legacy = new LegacyEndpoints([], { callerLabels: 2, keyNames: ['ops'] });
    const req = (subject: string, keyName?: string) => ({ principal: { kind: keyName ? 'api-key' : 'jwt', subject, keyName, scopes: [], mfa: false } }) as never;
    expect(['a', 'b', 'c', 'a', 'd'].map((s) => legacy.callerLabel(req(s)))).toEqual(['a', 'b', 'other', 'a', 'other']);
    expect(legacy.callerLabel(req('key:ops', 'ops'))).toBe('key:ops');
    expect(legacy.callerLabel({ principal: null } as never)).toBe('anonymous');
  });
});
