import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { SignJWT } from 'jose';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/auth/api-keys.js';
import { cleanup, E2E_API_KEY, startGateway, type GatewayProcess } from '../helpers/gateway.js';
import { call } from '../helpers/http.js';
import { parsePrometheusText } from '../helpers/prometheus.js';
import { standIn, standIns } from '../helpers/upstreams.js';

/*
 * Traffic split of /v1/twin between the twin stand-in (stable) and a second URL set (the
 * canary, a stand-in answering as "twin-v2"), shifted through the MCP tool shift_traffic.
 */

const JWT_SECRET = 'traffic-split-e2e-secret-0123456789abcdef';
const WRITER_KEY = 'traffic-writer-key-0123456789';
const READER_KEY = 'traffic-reader-key-0123456789';
let gw: GatewayProcess;

beforeAll(async () => {
  const ups = await standIns(['twin']);
  const canary = await standIn('twin-v2');
  gw = await startGateway({
    env: { ...ups.env, JWT_SECRET_KEY: JWT_SECRET },
    yaml:
      `auth:\n  apiKeys:\n    - { name: writer, sha256: ${sha256Hex(WRITER_KEY)}, scopes: [write] }\n    - { name: reader, sha256: ${sha256Hex(READER_KEY)}, scopes: [read] }\n` +
      'routes:\n' +
      `  - { id: twin, prefix: /v1/twin, service: twin, split: { canary: { urls: ["${canary.url}"] } } }\n` +
      '  - { id: public-twin, prefix: /v1/public, service: twin, rewritePrefix: /v1/twin, auth: { required: false }, split: { canary: { urls: ["' +
      canary.url +
      '"] }, weights: { stable: 50, canary: 50 } } }\n',
  });
});
afterAll(cleanup);

function mcpClient() {
  const transport = new StreamableHTTPClientTransport(new URL(`${gw.url}/mcp`), { requestInit: { headers: { 'x-api-key': E2E_API_KEY } } });
  return { transport, client: new Client({ name: 'e2e-rollout', version: '1.0.0' }) };
}

function token(sub: string): Promise<string> {
  return new SignJWT({ scope: 'read' }).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime('10m').sign(new TextEncoder().encode(JWT_SECRET));
}

describe('traffic split', () => {
  it('starts all-stable; shift_traffic to 30% (dry run first) is heard by a subscriber, and 10,000 requests split 30% ± 2%', async () => {
    const { client, transport } = mcpClient();
    await client.connect(transport);
    const updates: string[] = [];
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
      updates.push(n.params.uri);
    });
    await client.subscribeResource({ uri: 'gateway://routes' });

    const before = await client.callTool({ name: 'get_traffic_split', arguments: { route: 'twin' } });
    expect(before.structuredContent).toMatchObject({ splits: [{ route: 'twin', stableService: 'twin', canaryService: 'twin-canary', weights: { stable: 100, canary: 0 }, active: true }] });
    expect((await call(`${gw.url}/v1/twin/x`)).headers['x-gateway-upstream']).toBe('stable');

    const bad = await client.callTool({ name: 'shift_traffic', arguments: { route: 'twin', stable: 60, canary: 30, reason: 'typo' } });
    expect(bad.isError).toBe(true);
    expect(JSON.stringify(bad.content)).toContain('stable + canary must be 100');
    const unknown = await client.callTool({ name: 'shift_traffic', arguments: { route: 'nope', stable: 70, canary: 30, reason: 'wrong route' } });
    expect(unknown.isError).toBe(true);
    expect(JSON.stringify(unknown.content)).toContain('has no traffic split');

    const dry = await client.callTool({ name: 'shift_traffic', arguments: { route: 'twin', stable: 70, canary: 30, reason: 'canary step 1', dry_run: true } });
    expect(dry.structuredContent).toMatchObject({ applied: false, before: { canary: 0 }, after: { canary: 30 } });
    expect((await client.callTool({ name: 'get_traffic_split', arguments: { route: 'twin' } })).structuredContent).toMatchObject({ splits: [{ weights: { canary: 0 } }] });
    expect(updates).toEqual([]);

    const shifted = await client.callTool({ name: 'shift_traffic', arguments: { route: 'twin', stable: 70, canary: 30, reason: 'canary step 1' } });
    expect(shifted.structuredContent).toMatchObject({ applied: true, shared: true, after: { stable: 70, canary: 30 }, by: 'key:env-api-key', reason: 'canary step 1' });
    const deadline = Date.now() + 2000;
    while (updates.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(updates).toContain('gateway://routes');
    const route = await client.callTool({ name: 'get_route', arguments: { method: 'GET', path: '/v1/twin/notes' } });
    expect(route.structuredContent).toMatchObject({ route: { split: { canaryService: 'twin-canary', weights: { stable: 70, canary: 30 } } } });
    await client.close();

    // 10,000 clients (distinct principals), each one request.
    const tokens = await Promise.all(Array.from({ length: 10_000 }, (_, i) => token(`user-${i}`)));
    const agent = new Agent({ connections: 32 });
    const sides = { stable: 0, canary: 0 } as Record<string, number>;
    const served = { twin: 0, 'twin-v2': 0 } as Record<string, number>;
    let next = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < tokens.length) {
          const t = tokens[next++]!;
          const res = await request(`${gw.url}/v1/twin/notes`, { dispatcher: agent, headers: { authorization: `Bearer ${t}` } });
          const body = (await res.body.json()) as { service: string };
          expect(res.statusCode).toBe(200);
          sides[String(res.headers['x-gateway-upstream'])]! += 1;
          served[body.service]! += 1;
        }
      }),
    );
    await agent.close();
    const share = sides.canary! / 10_000;
    // Figure for the issue note.
    console.log(`traffic split e2e: canary ${sides.canary} / 10000 = ${(share * 100).toFixed(2)}% (target 30% ± 2%)`);
    expect(share).toBeGreaterThanOrEqual(0.28);
    expect(share).toBeLessThanOrEqual(0.32);
    // The header tells the truth: the canary stand-in answered exactly those requests.
    expect(served['twin-v2']).toBe(sides.canary);

    const metrics = parsePrometheusText((await call(`${gw.url}/metrics`)).text);
    const samples = metrics.get('gateway_service_requests')!.samples;
    const count = (service: string, side: string) => samples.filter((s) => s.labels.service === service && s.labels.side === side).reduce((n, s) => n + s.value, 0);
    expect(count('twin-canary', 'canary')).toBeGreaterThanOrEqual(sides.canary!);
    expect(count('twin', 'stable')).toBeGreaterThanOrEqual(sides.stable!);
    expect(count('twin-canary', 'stable')).toBe(0);
  }, 120_000);

  it('keeps a principal on its side, and lets write-scoped callers force one with X-Canary', async () => {
    const alice = await token('alice');
    const first = (await call(`${gw.url}/v1/twin/a`, { headers: { authorization: `Bearer ${alice}` }, anonymous: true })).headers['x-gateway-upstream'];
    for (let i = 0; i < 20; i++) {
      const res = await call(`${gw.url}/v1/twin/a`, { headers: { authorization: `Bearer ${alice}` }, anonymous: true });
      expect(res.headers['x-gateway-upstream']).toBe(first);
    }
    for (const [value, side, service] of [
      ['always', 'canary', 'twin-v2'],
      ['never', 'stable', 'twin'],
    ] as const) {
      const res = await call(`${gw.url}/v1/twin/forced`, { headers: { 'x-api-key': WRITER_KEY, 'x-canary': value }, anonymous: true });
      expect([res.headers['x-gateway-upstream'], res.json().service]).toEqual([side, service]);
    }
    // A read-only caller's X-Canary is ignored: it gets its own sticky side every time.
    const reader = await Promise.all(Array.from({ length: 5 }, () => call(`${gw.url}/v1/twin/r`, { headers: { 'x-api-key': READER_KEY, 'x-canary': 'always' }, anonymous: true })));
    expect(new Set(reader.map((r) => r.headers['x-gateway-upstream'])).size).toBe(1);
    const invalid = await call(`${gw.url}/v1/twin/forced`, { headers: { 'x-api-key': WRITER_KEY, 'x-canary': 'sometimes' }, anonymous: true });
    expect(invalid.status).toBe(400);
    expect(invalid.json().error.message).toContain('X-Canary');
  });

  it('sticks anonymous clients with a cookie the gateway sets', async () => {
    const first = await call(`${gw.url}/v1/public/p`, { anonymous: true });
    expect(first.status).toBe(200);
    const setCookie = String(first.headers['set-cookie']);
    expect(setCookie).toMatch(/^ugw_split=[0-9a-f]{32}; Path=\/; Max-Age=\d+; HttpOnly; SameSite=Lax$/);
    const cookie = setCookie.split(';')[0]!;
    for (let i = 0; i < 10; i++) {
      const res = await call(`${gw.url}/v1/public/p`, { headers: { cookie }, anonymous: true });
      expect(res.headers['x-gateway-upstream']).toBe(first.headers['x-gateway-upstream']);
      expect(res.headers['set-cookie']).toBeUndefined();
    }
    // At 50/50, fresh clients land on both sides.
    const fresh = await Promise.all(Array.from({ length: 40 }, () => call(`${gw.url}/v1/public/p`, { anonymous: true })));
    expect(new Set(fresh.map((r) => r.headers['x-gateway-upstream']))).toEqual(new Set(['stable', 'canary']));
  });

  it('REST admin API: same view and validation as the MCP tools', async () => {
    const list = await call(`${gw.url}/admin/traffic`);
    expect(list.status).toBe(200);
    expect(list.json().splits.map((s: { route: string }) => s.route).sort()).toEqual(['public-twin', 'twin']);
    const missing = await call(`${gw.url}/admin/traffic/nope`);
    expect([missing.status, missing.json().error.code]).toEqual([404, 'GW_ADMIN_SPLIT_NOT_FOUND']);
    const bad = await call(`${gw.url}/admin/traffic/twin`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ stable: 50, canary: 60, reason: 'bad sum' }) });
    expect([bad.status, bad.json().error.code]).toEqual([400, 'GW_REQUEST_INVALID']);
    const outOfRange = await call(`${gw.url}/admin/traffic/twin`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ stable: -10, canary: 110, reason: 'range' }) });
    expect(outOfRange.status).toBe(400);
    const forbidden = await call(`${gw.url}/admin/traffic/twin`, { method: 'PUT', headers: { 'content-type': 'application/json', 'x-api-key': WRITER_KEY }, anonymous: true, body: JSON.stringify({ stable: 0, canary: 100, reason: 'not an admin' }) });
    expect(forbidden.status).toBe(403);
    const ok = await call(`${gw.url}/admin/traffic/twin`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ stable: 100, canary: 0, reason: 'roll back' }) });
    expect(ok.status).toBe(200);
    expect(ok.json()).toMatchObject({ applied: true, after: { stable: 100, canary: 0 } });
    expect(ok.json().split.history[0]).toMatchObject({ by: 'key:env-api-key', reason: 'roll back', weights: { stable: 100, canary: 0 } });
    expect((await call(`${gw.url}/v1/twin/x`)).headers['x-gateway-upstream']).toBe('stable');
  });
});
