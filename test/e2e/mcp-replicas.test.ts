import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { sha256Hex } from '../../src/auth/api-keys.js';
import { cleanup, E2E_API_KEY, startGateway, waitFor, type GatewayProcess } from '../helpers/gateway.js';
import { call } from '../helpers/http.js';
import { describeWithRedis, startRedis } from '../helpers/redis.js';
import { standIn, standIns } from '../helpers/upstreams.js';

/*
 * Two gateway replicas sharing Redis: an MCP session opened on one is served by the other
 * (its record is in the state store), a traffic shift made on one applies on both within a
 * second, and a subscriber on one replica hears of a shift made through the other.
 */

const OTHER_ADMIN_KEY = 'replicas-second-admin-0123456789';

describeWithRedis('MCP sessions and traffic splits across replicas (Redis)', () => {
  let a: GatewayProcess;
  let b: GatewayProcess;

  beforeAll(async () => {
    const redis = await startRedis();
    const ups = await standIns(['twin']);
    const canary = await standIn('twin-v2');
    const yaml =
      `auth:\n  apiKeys:\n    - { name: other-admin, sha256: ${sha256Hex(OTHER_ADMIN_KEY)}, scopes: [admin] }\n` +
      `routes:\n  - { id: twin, prefix: /v1/twin, service: twin, split: { canary: { urls: ["${canary.url}"] } } }\n`;
    const env = { ...ups.env, REDIS_URL: redis.url };
    [a, b] = await Promise.all([startGateway({ env, yaml }), startGateway({ env, yaml })]);
  });
  afterAll(cleanup);

  const mcp = (gw: GatewayProcess, key = E2E_API_KEY) => {
    const transport = new StreamableHTTPClientTransport(new URL(`${gw.url}/mcp`), { requestInit: { headers: { 'x-api-key': key } } });
    return { transport, client: new Client({ name: 'e2e-replicas', version: '1.0.0' }) };
  };

  it('a session opened on replica A is served by replica B, but only for the principal that opened it', async () => {
    const { client, transport } = mcp(a);
    await client.connect(transport);
    const sessionId = transport.sessionId!;
    const onB = new StreamableHTTPClientTransport(new URL(`${b.url}/mcp`), { requestInit: { headers: { 'x-api-key': E2E_API_KEY } }, sessionId });
    const clientB = new Client({ name: 'e2e-replicas', version: '1.0.0' });
    // Connecting with a session id skips initialize (the SDK's resumption path).
    await clientB.connect(onB);
    const tools = await clientB.listTools();
    expect(tools.tools.map((t) => t.name)).toContain('shift_traffic');
    const res = await clientB.callTool({ name: 'get_traffic_split', arguments: { route: 'twin' } });
    expect(res.structuredContent).toMatchObject({ splits: [{ route: 'twin' }] });

    // The same session id with another principal's credentials: not found, on either replica.
    for (const gw of [a, b]) {
      const stolen = await call(`${gw.url}/mcp`, {
        method: 'POST',
        headers: { 'x-api-key': OTHER_ADMIN_KEY, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list' }),
      });
      expect([stolen.status, stolen.json().error.data.code]).toEqual([404, 'GW_MCP_SESSION_NOT_FOUND']);
    }
    await transport.terminateSession();
    await client.close();
    await clientB.close();
  });

  it('a shift through replica B applies on A within a second and reaches a subscriber on A', async () => {
    const { client, transport } = mcp(a);
    await client.connect(transport);
    const updates: string[] = [];
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
      updates.push(n.params.uri);
    });
    await client.subscribeResource({ uri: 'gateway://routes' });
    // The GET stream that carries notifications may take a moment to open.
    await new Promise((r) => setTimeout(r, 200));

    const other = mcp(b, OTHER_ADMIN_KEY);
    await other.client.connect(other.transport);
    const started = Date.now();
    const shifted = await other.client.callTool({ name: 'shift_traffic', arguments: { route: 'twin', stable: 0, canary: 100, reason: 'replica test' } });
    expect(shifted.structuredContent).toMatchObject({ applied: true, shared: true, by: 'key:other-admin' });
    await waitFor(async () => ((await call(`${a.url}/v1/twin/x`)).headers['x-gateway-upstream'] === 'canary' ? true : undefined), 1000, 'replica A to apply the shift', 20);
    const appliedAfterMs = Date.now() - started;
    console.log(`mcp replicas e2e: replica A applied the shift ${appliedAfterMs} ms after replica B's shift_traffic returned`);
    await waitFor(() => (updates.includes('gateway://routes') ? true : undefined), 2000, 'the subscriber on A to hear of it', 20);
    const split = await client.callTool({ name: 'get_traffic_split', arguments: { route: 'twin' } });
    expect(split.structuredContent).toMatchObject({ splits: [{ weights: { stable: 0, canary: 100 }, updatedBy: 'key:other-admin', reason: 'replica test' }] });
    await other.client.callTool({ name: 'shift_traffic', arguments: { route: 'twin', stable: 100, canary: 0, reason: 'reset' } });
    await client.close();
    await other.client.close();
  });
});
