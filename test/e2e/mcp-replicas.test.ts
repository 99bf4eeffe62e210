import { Client as Client2, StreamableHTTPClientTransport as Transport2 } from '@modelcontextprotocol/client';
import { Client as Client1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as Transport1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { argsHash } from '../../mcp/server/gateway-server.js';
import { sha256Hex } from '../../src/auth/api-keys.js';
import { cleanup, E2E_API_KEY, startGateway, waitFor, type GatewayProcess } from '../helpers/gateway.js';
import { call } from '../helpers/http.js';
import { initializeMessage, mcpMessages, mcpRaw } from '../helpers/mcp.js';
import { describeWithRedis, startRedis } from '../helpers/redis.js';
import { standIn, standIns } from '../helpers/upstreams.js';

/*
 * Two gateway replicas sharing a real redis-server, MFA required for the admin tools. An SDK 2
 * client pinned to 2026-07-28 and an SDK 1.x client (2025-11-25) each list the tools, call
 * list_routes, get_metrics and, with an admin token that proves a second factor,
 * shift_traffic on replica A, and hear of the shift on a listener held on replica B: a
 * 2026-07-28 `subscriptions/listen` stream, and the GET stream of the 1.x client's own
 * session (opened on A, continued on B). The delay from the call to the notification is
 * printed and must stay under a second.
 */

const JWT_SECRET = 'e2e-replicas-jwt-secret-0123456789-abcdefghij';
const OTHER_ADMIN_KEY = 'replicas-second-admin-0123456789';

/** An HS256 admin token with `amr: ["mfa"]` (what POST /auth/token issues after a TOTP code). */
function mfaAdminToken(sub: string): Promise<string> {
  return new SignJWT({ scope: 'admin', amr: ['pwd', 'otp', 'mfa'] })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(new TextEncoder().encode(JWT_SECRET));
}

describeWithRedis('MCP on two replicas sharing Redis, both protocol eras', () => {
  let a: GatewayProcess;
  let b: GatewayProcess;
  let token: string;

  beforeAll(async () => {
    const redis = await startRedis();
    const ups = await standIns(['twin']);
    const canary = await standIn('twin-v2');
    const yaml =
      `auth:\n  requireMfaForAdmin: true\n  apiKeys:\n    - { name: other-admin, sha256: ${sha256Hex(OTHER_ADMIN_KEY)}, scopes: [admin] }\n` +
      `routes:\n  - { id: twin, prefix: /v1/twin, service: twin, split: { canary: { urls: ["${canary.url}"] } } }\n`;
    const env = { ...ups.env, REDIS_URL: redis.url, JWT_SECRET_KEY: JWT_SECRET };
    [a, b] = await Promise.all([startGateway({ env, yaml }), startGateway({ env, yaml })]);
    token = await mfaAdminToken('ops-oncall');
  });
  afterAll(cleanup);

  const auth = () => ({ authorization: `Bearer ${token}` });

  /** The calls both clients make on replica A, the shift last; returns when it was sent. */
  type Result = { structuredContent?: unknown; isError?: unknown };
  async function callsOnA(client: { listTools(): Promise<{ tools: Array<{ name: string }> }>; callTool(p: { name: string; arguments: Record<string, unknown> }): Promise<unknown> }, canary: number, reason: string) {
    const tools = (await client.listTools()).tools.map((t) => t.name);
    expect(tools).toEqual(expect.arrayContaining(['list_routes', 'get_metrics', 'shift_traffic']));
    const routes = (await client.callTool({ name: 'list_routes', arguments: {} })) as Result;
    expect((routes.structuredContent as { routes: Array<{ id: string }> }).routes.map((r) => r.id)).toContain('twin');
    const metrics = (await client.callTool({ name: 'get_metrics', arguments: { minutes: 1 } })) as Result;
    expect(metrics.structuredContent).toMatchObject({ routes: expect.any(Array), services: expect.any(Array) });
    const sent = performance.now();
    const shifted = (await client.callTool({ name: 'shift_traffic', arguments: { route: 'twin', stable: 100 - canary, canary, reason } })) as Result;
    const returned = performance.now();
    expect(shifted.isError).toBeFalsy();
    expect(shifted.structuredContent).toMatchObject({ applied: true, shared: true, by: 'ops-oncall' });
    return { sent, returned };
  }

  it('an SDK 2 client pinned to 2026-07-28: calls on A, heard on a subscriptions/listen stream on B within a second', async () => {
    const caller = new Client2({ name: 'e2e-modern', version: '1.0.0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
    await caller.connect(new Transport2(new URL(`${a.url}/mcp`), { requestInit: { headers: auth() } }));
    const listener = new Client2({ name: 'e2e-modern-listener', version: '1.0.0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
    await listener.connect(new Transport2(new URL(`${b.url}/mcp`), { requestInit: { headers: { 'x-api-key': E2E_API_KEY } } }));
    let heardAt: number | undefined;
    listener.setNotificationHandler('notifications/resources/updated', (n) => {
      if (n.params.uri === 'gateway://routes') heardAt ??= performance.now();
    });
    const subscription = await listener.listen({ resourceSubscriptions: ['gateway://routes'] });

    const { sent, returned } = await callsOnA(caller, 30, 'modern e2e');
    await waitFor(() => heardAt, 2000, 'the listener on B to hear the shift');
    const delay = heardAt! - sent;
    console.log(`mcp replicas e2e (2026-07-28): listen stream on B heard the shift made on A ${delay.toFixed(1)} ms after shift_traffic was sent (${(heardAt! - returned).toFixed(1)} ms after it returned)`);
    expect(delay).toBeLessThan(1000);
    // Replica B applied it too.
    await waitFor(async () => ((await call(`${b.url}/v1/twin/x`)).status === 200 ? true : undefined), 1000, 'B to serve');
    await subscription.close();
    await Promise.all([caller.close(), listener.close()]);
  });

  it('an SDK 1.x client: its session opened on A is continued on B, where its GET stream hears a shift made on A within a second', async () => {
    // Opened on A by hand (initialize, initialized): a client that moved to B holds no GET
    // stream of this session on A. (One stream per session across replicas, the newer one
    // wins: an SDK client left connected on A would open its own GET stream there, and on a
    // busy machine that could come after B's and replace it until B's client reconnects.)
    const init = await mcpRaw(a.url, { headers: auth(), body: initializeMessage() });
    expect(init.status).toBe(200);
    const sessionId = String(init.headers['mcp-session-id']);
    const version = (mcpMessages(init)[0]!.result as { protocolVersion: string }).protocolVersion;
    const initialized = await mcpRaw(a.url, { sessionId, headers: { ...auth(), 'mcp-protocol-version': version }, body: { jsonrpc: '2.0', method: 'notifications/initialized' } });
    expect(initialized.status).toBe(202);
    // The same session on B (the SDK's resumption path: no initialize); it subscribes there and
    // holds the session's GET stream on B.
    const transportB = new Transport1(new URL(`${b.url}/mcp`), { requestInit: { headers: auth() }, sessionId });
    const listener = new Client1({ name: 'e2e-legacy', version: '1.0.0' });
    await listener.connect(transportB);
    let heardAt: number | undefined;
    listener.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
      if (n.params.uri === 'gateway://routes') heardAt ??= performance.now();
    });
    // The SDK opens the GET stream once `notifications/initialized` is accepted: here, on B.
    await transportB.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    await listener.subscribeResource({ uri: 'gateway://routes' });

    // The shifts are made on A by another client of the same principal (a session of its own).
    const caller = new Client1({ name: 'e2e-legacy-caller', version: '1.0.0' });
    await caller.connect(new Transport1(new URL(`${a.url}/mcp`), { requestInit: { headers: auth() } }));
    // The GET stream on B is up once it hears a first shift (instead of guessing how long the SDK takes to open it).
    let probe = 0;
    await waitFor(async () => {
      if (heardAt !== undefined) return true;
      probe += 1;
      await caller.callTool({ name: 'shift_traffic', arguments: { route: 'twin', stable: 50 + (probe % 2), canary: 50 - (probe % 2), reason: 'legacy e2e: stream up?' } });
      return undefined;
    }, 15_000, 'the GET stream on B to hear a first shift', 300);
    heardAt = undefined;

    const { sent, returned } = await callsOnA(caller, 60, 'legacy e2e');
    await waitFor(() => heardAt, 2000, 'the GET stream on B to hear the shift');
    const delay = heardAt! - sent;
    console.log(`mcp replicas e2e (2025-11-25): GET stream on B heard the shift made on A ${delay.toFixed(1)} ms after shift_traffic was sent (${(heardAt! - returned).toFixed(1)} ms after it returned)`);
    expect(delay).toBeLessThan(1000);

    // The session is one across replicas: another principal presenting its id gets 404 on both.
    for (const gw of [a, b]) {
      const stolen = await mcpRaw(gw.url, { sessionId, headers: { 'x-api-key': OTHER_ADMIN_KEY }, body: { jsonrpc: '2.0', id: 9, method: 'tools/list' } });
      expect([stolen.status, stolen.json().error.data.code]).toEqual([404, 'GW_MCP_SESSION_NOT_FOUND']);
    }
    // DELETE on B ends it on A as well.
    await transportB.terminateSession();
    const after = await mcpRaw(a.url, { sessionId, headers: auth(), body: { jsonrpc: '2.0', id: 10, method: 'tools/list' } });
    expect([after.status, after.json().error.data.code]).toEqual([404, 'GW_MCP_SESSION_NOT_FOUND']);
    await Promise.all([caller.close(), listener.close()]);
  });

  it('a batch gets 400 -32600 and runs nothing; a cancelled shift_traffic still leaves its audit lines, saying how it ended', async () => {
    const transport = new Transport1(new URL(`${a.url}/mcp`), { requestInit: { headers: auth() } });
    const client = new Client1({ name: 'e2e-cancel', version: '1.0.0' });
    await client.connect(transport);
    const sessionId = transport.sessionId!;
    const batch = await mcpRaw(a.url, {
      sessionId,
      headers: auth(),
      body: [
        { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'shift_traffic', arguments: { route: 'twin', stable: 10, canary: 90, reason: 'batched' } } },
        { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 1 } },
      ],
    });
    expect(batch.status).toBe(400);
    expect(batch.json()).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32600, data: { code: 'GW_MCP_BATCH_UNSUPPORTED' } } });
    await a.logMark(); // a line that would be there has arrived by now (the log is buffered)
    expect(a.logs.some((l) => (l.audit as { tool?: string } | undefined)?.tool === 'shift_traffic' && JSON.stringify(l).includes('batched'))).toBe(false);

    // Cancelled by the client right after sending: whether the answer was already on its way
    // or not, the call is on record twice (arrival, end), the end saying how it ended.
    const controller = new AbortController();
    const args = { route: 'twin', stable: 80, canary: 20, reason: 'cancelled e2e' };
    const pending = client.callTool({ name: 'shift_traffic', arguments: args }, undefined, { signal: controller.signal });
    setTimeout(() => controller.abort('changed my mind'), 1);
    await pending.catch(() => undefined);
    const arrived = await a.waitForLog((l) => l.msg === 'mcp tool call' && (l.audit as { argsHash?: string }).argsHash === argsHash(args), 3000);
    const call = (arrived.audit as { call: string }).call;
    const ended = await a.waitForLog((l) => l.msg === 'mcp tool call ended' && (l.audit as { call?: string }).call === call, 3000);
    const end = ended.audit as { result: string; toolEnded?: string };
    console.log(`mcp replicas e2e: cancelled shift_traffic audited as ${JSON.stringify(end)}`);
    expect(['ok', 'cancelled']).toContain(end.result);
    if (end.result === 'cancelled') expect(['ok', 'running']).toContain(end.toolEnded);
    await client.close();
  });

  it('the 2026-07-28 stream of B sees what its own replica did not do: a shift through REST on A', async () => {
    const listener = new Client2({ name: 'e2e-rest', version: '1.0.0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
    await listener.connect(new Transport2(new URL(`${b.url}/mcp`), { requestInit: { headers: { 'x-api-key': E2E_API_KEY } } }));
    const heard: string[] = [];
    listener.setNotificationHandler('notifications/resources/updated', (n) => void heard.push(n.params.uri));
    const subscription = await listener.listen({ resourceSubscriptions: ['gateway://routes'] });
    const rest = await call(`${a.url}/admin/traffic/twin`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ stable: 100, canary: 0, reason: 'reset through REST' }),
    });
    expect(rest.status).toBe(200);
    await waitFor(() => (heard.includes('gateway://routes') ? true : undefined), 1000, 'the listener on B');
    // One event per shift, although both replicas announce it.
    await new Promise((r) => setTimeout(r, 300));
    expect(heard).toEqual(['gateway://routes']);
    await subscription.close();
    await listener.close();
    // And the listen stream is gone from B's raw view too: a raw listen request still works.
    const raw = await mcpRaw(b.url, {
      headers: { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/list' },
      body: { jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} } } },
    });
    expect(mcpMessages(raw)[0]).toMatchObject({ result: { cacheScope: 'private' } });
  });
});
