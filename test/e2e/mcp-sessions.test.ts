import { ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, E2E_API_KEY, sleep, startGateway, type GatewayProcess } from '../helpers/gateway.js';
import { connectMcp, initializeMessage, mcpRaw } from '../helpers/mcp.js';
import { standIn, standIns } from '../helpers/upstreams.js';

/*
 * Idle 2025 MCP sessions end (their state-store record expires sessionIdleSeconds after its last
 * renewal); a client listening on its GET stream is not idle (the stream renews the record).
 */

let gw: GatewayProcess;

beforeAll(async () => {
  const ups = await standIns(['twin']);
  const canary = await standIn('twin-v2');
  gw = await startGateway({
    env: ups.env,
    yaml: `mcp:\n  sessionIdleSeconds: 2\nroutes:\n  - { id: twin, prefix: /v1/twin, service: twin, split: { canary: { urls: ["${canary.url}"] } } }\n`,
  });
});
afterAll(cleanup);

describe('MCP session lifetime', () => {
  it('closes a session idle past mcp.sessionIdleSeconds, but keeps one whose client listens on its stream', async () => {
    // Raw initialize: no GET stream (the SDK client would open one).
    const init = await mcpRaw(gw.url, { body: initializeMessage() });
    expect(init.status).toBe(200);
    const idleId = String(init.headers['mcp-session-id']);
    // A client that closed its stream is idle from then on.
    const closed = await connectMcp(gw.url, { 'x-api-key': E2E_API_KEY });
    const closedId = closed.transport.sessionId!;
    await closed.client.close();
    const listening = await connectMcp(gw.url, { 'x-api-key': E2E_API_KEY });
    const heard: string[] = [];
    listening.client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
      heard.push(n.params.uri);
    });
    await listening.client.subscribeResource({ uri: 'gateway://routes' });

    // Idle for 2 s: the record has expired well before 5 s.
    await sleep(5000);
    for (const id of [idleId, closedId]) {
      const after = await mcpRaw(gw.url, { sessionId: id, body: { jsonrpc: '2.0', id: 1, method: 'tools/list' } });
      expect([after.status, after.json().error.data.code]).toEqual([404, 'GW_MCP_SESSION_NOT_FOUND']);
    }

    // The listening client made no request either, but its stream is open: still served, still hearing.
    const admin = await connectMcp(gw.url, { 'x-api-key': E2E_API_KEY });
    await admin.client.callTool({ name: 'shift_traffic', arguments: { route: 'twin', stable: 50, canary: 50, reason: 'session lifetime test' } });
    const deadline = Date.now() + 2000;
    while (!heard.includes('gateway://routes') && Date.now() < deadline) await sleep(20);
    expect(heard).toContain('gateway://routes');
    expect((await listening.client.listTools()).tools.length).toBeGreaterThan(0);
    await Promise.all([listening.client.close(), admin.client.close()]);
  }, 20_000);
});
