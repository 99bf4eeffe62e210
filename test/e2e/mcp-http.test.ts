import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/auth/api-keys.js';
import { cleanup, E2E_API_KEY, startGateway, type GatewayProcess } from '../helpers/gateway.js';
import { call } from '../helpers/http.js';
import { standIns, type StandIn } from '../helpers/upstreams.js';

/* The gateway's MCP endpoint (/mcp, Streamable HTTP) with the SDK's own client. */

let gw: GatewayProcess;
let twin: StandIn;
const READER_KEY = 'mcp-reader-key-0123456789';

beforeAll(async () => {
  const ups = await standIns(['twin']);
  twin = ups.byName.twin;
  gw = await startGateway({
    env: ups.env,
    yaml:
      `auth:\n  apiKeys:\n    - { name: reader, sha256: ${sha256Hex(READER_KEY)}, scopes: [read] }\n` +
      'services:\n  twin:\n    breaker: { volumeThreshold: 3, errorThresholdPercentage: 50, resetTimeout: 60000 }\n    retries: { maxRetries: 0 }\n',
  });
});
afterAll(cleanup);

function client(headers: Record<string, string>) {
  const transport = new StreamableHTTPClientTransport(new URL(`${gw.url}/mcp`), { requestInit: { headers } });
  return { transport, client: new Client({ name: 'e2e-agent', version: '1.0.0' }) };
}

describe('/mcp', () => {
  it('serves the read-only tools to an authenticated agent, and ends the session on DELETE', async () => {
    const { client: c, transport } = client({ 'x-api-key': E2E_API_KEY });
    await c.connect(transport);
    // 32 random bytes, base64url: the session is a record in the state store (mcp/server/sessions.ts).
    expect(transport.sessionId).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const { tools } = await c.listTools();
    expect(tools.map((t) => t.name)).toContain('get_route');
    const res = await c.callTool({ name: 'get_route', arguments: { method: 'GET', path: '/v1/twin/notes' } });
    expect(res.structuredContent).toMatchObject({ match: 'route', route: { service: 'twin' }, requiredScope: 'read' });
    expect((await call(`${gw.url}/v1/twin/notes`)).status).toBe(200);
    const summary = await c.callTool({ name: 'get_metrics', arguments: { minutes: 1 } });
    const routes = (summary.structuredContent as { routes: { endpoint: string; requests: number }[] }).routes;
    expect(routes.find((r) => r.endpoint === '/v1/twin/*')?.requests).toBeGreaterThanOrEqual(1);
    const routed = await c.callTool({ name: 'explain_routing', arguments: { text: 'how much would a GPU compute job on the fog cost per hour?' } });
    expect(routed.structuredContent).toMatchObject({ service: 'fog' });
    expect((routed.structuredContent as { topFeatures: unknown[] }).topFeatures.length).toBeGreaterThan(0);
    const health = await c.callTool({ name: 'get_service_health', arguments: { service: 'twin' } });
    expect(health.structuredContent).toMatchObject({ services: [{ service: 'twin', status: 'up' }] });

    const sessionId = transport.sessionId!;
    await transport.terminateSession();
    await c.close();
    const after = await call(`${gw.url}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sessionId },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    expect(after.status).toBe(404);
    expect(after.json().error.data.code).toBe('GW_MCP_SESSION_NOT_FOUND');
  });

  it('offers the admin tool to admins only, and audits its use', async () => {
    const admin = client({ 'x-api-key': E2E_API_KEY });
    await admin.client.connect(admin.transport);
    const adminTools = (await admin.client.listTools()).tools.map((t) => t.name);
    expect(adminTools).toEqual(expect.arrayContaining(['list_blocked_clients', 'unblock_client']));
    const res = await admin.client.callTool({ name: 'unblock_client', arguments: { client: '203.0.113.9' } });
    expect(res.structuredContent).toEqual({ client: '203.0.113.9', unblocked: false });
    await gw.waitForLog((l) => l.msg === 'mcp tool call ended' && (l.audit as { tool?: string; result?: string } | undefined)?.tool === 'unblock_client');

    // Trip twin's breaker, then close it by hand: traffic flows again before its reset timeout.
    twin.behaviour.failStatus = 500;
    for (let i = 0; i < 4; i++) await call(`${gw.url}/v1/twin/trip`);
    twin.behaviour.failStatus = null;
    const open = await call(`${gw.url}/v1/twin/after`);
    expect(open.status).toBe(503);
    const reset = await admin.client.callTool({ name: 'reset_circuit_breaker', arguments: { service: 'twin' } });
    expect(reset.structuredContent).toEqual({ service: 'twin', reset: 1 });
    expect((await call(`${gw.url}/v1/twin/after`)).status).toBe(200);
    const unknown = await admin.client.callTool({ name: 'reset_circuit_breaker', arguments: { service: 'weather' } });
    expect(unknown.isError).toBe(true);
    await admin.client.close();

    const reader = client({ 'x-api-key': READER_KEY });
    await reader.client.connect(reader.transport);
    const readerTools = (await reader.client.listTools()).tools.map((t) => t.name);
    // Blocked clients' addresses are for admins, as on GET /admin/blocked-clients (src/admin/access.ts).
    expect(readerTools).not.toContain('list_blocked_clients');
    expect(readerTools).not.toContain('unblock_client');
    expect(readerTools).not.toContain('reset_circuit_breaker');
    await reader.client.close();
  });

  it('refuses agents without credentials (401) and 2025 requests without a session (400), as JSON-RPC error bodies', async () => {
    const anonymous = await call(`${gw.url}/mcp`, {
      method: 'POST',
      anonymous: true,
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers['www-authenticate']).toContain('Bearer');
    expect(anonymous.json()).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32000, data: { code: 'GW_AUTH_MISSING_CREDENTIALS' } } });

    const noSession = await call(`${gw.url}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    expect(noSession.status).toBe(400);
    expect(noSession.json()).toMatchObject({ jsonrpc: '2.0', id: 1, error: { data: { code: 'GW_MCP_SESSION_REQUIRED' } } });
  });
});
