import { Client, InMemoryTransport } from '@modelcontextprotocol/client';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { afterEach, describe, expect, it } from 'vitest';
import { createGatewayMcpServer, SERVER_CAPABILITIES, type McpRequestScope } from '../../../mcp/server/gateway-server.js';
import { withStandardFormats } from '../../../mcp/server/schemas.js';
import type { Principal } from '../../../src/auth/principal.js';
import { MetricsService } from '../../../src/admin/metrics-service.js';
import { RoutesService } from '../../../src/admin/routes-service.js';
import { createMetrics } from '../../../src/metrics/registry.js';
import { loadConfig, redactConfig } from '../../../src/config/index.js';
import type { HealthSnapshot } from '../../../src/health/prober.js';
import { buildRouteTable } from '../../../src/routing/route-table.js';

/*
 * The server instance of one request and a real MCP client (SDK 2), linked in-process
 * (InMemoryTransport). The instance is built for a principal and a method, as /mcp builds one
 * per request (mcp/server/http.ts).
 */

const ADMIN: Principal = { kind: 'api-key', subject: 'key:ops', keyName: 'ops', scopes: ['admin'], mfa: false };
const READER: Principal = { kind: 'api-key', subject: 'key:reader', keyName: 'reader', scopes: ['read'], mfa: false };

const snapshot: HealthSnapshot = {
  status: 'degraded',
  checkedAt: '2026-11-26T00:00:00.000Z',
  services: {
    twin: { service: 'twin', status: 'up', latencyMs: 1.2, lastCheck: '2026-11-26T00:00:00.000Z', httpStatus: 200 },
    knowledge: { service: 'knowledge', status: 'down', latencyMs: 2, lastCheck: '2026-11-26T00:00:00.000Z', error: 'ECONNREFUSED' },
  },
};

const clients: Client[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

async function connect(env: Record<string, string> = {}, scope: Partial<McpRequestScope> = {}): Promise<Client> {
  const result = loadConfig({ TWIN_SERVICE_URL: 'http://user:pw@twin.internal:8001', ...env });
  if (!result.ok) throw new Error(result.problems.join('\n'));
  const routes = new RoutesService(result.config, buildRouteTable(result.config), { snapshot: () => snapshot });
  const metrics = createMetrics({ durationBuckets: [0.01, 0.1, 1], defaultMetrics: false });
  const server = createGatewayMcpServer({
    routes,
    metrics: new MetricsService(metrics.registry),
    requireMfaForAdmin: false,
    redactedConfig: () => redactConfig(result.config),
    version: '0.1.0',
    blockedClients: { list: async () => ({ clients: [], shared: false }), unblock: async () => ({ client: 'x', unblocked: false }) } as never,
  }, { principal: READER, era: 'legacy', method: 'tools/list', ...scope });
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  const client = new Client({ name: 'test-agent', version: '1.0.0' });
  await Promise.all([server.connect(serverSide), client.connect(clientSide)]);
  clients.push(client);
  return client;
}

describe('gateway MCP server: read-only tools', () => {
  it('lists the read tools to a reader with schemas and truthful read-only annotations; an admin also gets the admin tool', async () => {
    const client = await connect();
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(['get_metrics', 'get_route', 'get_service_health', 'list_routes', 'list_services', 'query_metric']);
    for (const tool of tools) {
      expect(tool.annotations).toMatchObject({ readOnlyHint: true, destructiveHint: false });
      expect(tool.outputSchema?.type).toBe('object');
    }
    const getRoute = tools.find((t) => t.name === 'get_route')!;
    expect(getRoute.inputSchema.required).toEqual(['method', 'path']);
    const admin = await connect({}, { principal: ADMIN });
    expect((await admin.listTools()).tools.map((t) => t.name)).toContain('list_blocked_clients');
  });

  it('publishes every tool schema as valid JSON Schema 2020-12 with standard formats only (a strict validator compiles them)', async () => {
    const client = await connect({}, { principal: ADMIN });
    const { tools } = await client.listTools();
    const ajv = new Ajv2020({ strict: true, strictRequired: false, allowUnionTypes: true });
    addFormats.default(ajv);
    for (const tool of tools) {
      for (const schema of [tool.inputSchema, tool.outputSchema]) {
        if (schema === undefined) continue;
        expect(schema.$schema ?? 'https://json-schema.org/draft/2020-12/schema', tool.name).toBe('https://json-schema.org/draft/2020-12/schema');
        expect(() => ajv.compile(schema), `${tool.name}: ${JSON.stringify(schema).slice(0, 300)}`).not.toThrow();
      }
    }
    // get_route's path: "must start with /" stays as its pattern, without zod's own format name.
    const path = (tools.find((t) => t.name === 'get_route')!.inputSchema.properties as Record<string, { format?: string; pattern?: string }>).path!;
    expect(path.format).toBeUndefined();
    expect(path.pattern).toBe('^\\/.*');
  });

  it('drops only the formats 2020-12 does not define, at any depth, and keeps properties named "format"', () => {
    expect(
      withStandardFormats({ type: 'object', properties: { a: { type: 'string', format: 'starts_with' }, b: { type: 'string', format: 'date-time' }, format: { type: 'string' } }, items: [{ format: 'cuid' }] }),
    ).toEqual({ type: 'object', properties: { a: { type: 'string' }, b: { type: 'string', format: 'date-time' }, format: { type: 'string' } }, items: [{}] });
  });

  it('claims only the capabilities it uses: subscribe to resources, no listChanged, no logging', async () => {
    const client = await connect();
    expect(client.getServerCapabilities()).toEqual(SERVER_CAPABILITIES);
    expect(SERVER_CAPABILITIES).toEqual({ tools: { listChanged: false }, resources: { subscribe: true, listChanged: false }, prompts: { listChanged: false } });
    await expect(client.setLoggingLevel('debug')).rejects.toThrow();
  });

  it('answers an unknown tool with the protocol error -32602, not a tool result', async () => {
    const client = await connect();
    await expect(client.callTool({ name: 'no_such_tool', arguments: {} })).rejects.toMatchObject({ code: -32602 });
  });

  it('list_routes returns the route table as structured content', async () => {
    const client = await connect({ ENABLE_P2P_FOG: 'false' });
    const res = await client.callTool({ name: 'list_routes', arguments: {} });
    const routes = (res.structuredContent as { routes: { id: string; service: string; enabled: boolean; disabledBy?: string }[] }).routes;
    expect(routes.find((r) => r.id === 'twin')).toMatchObject({ service: 'twin', enabled: true });
    expect(routes.find((r) => r.id === 'fog')).toMatchObject({ enabled: false, disabledBy: 'ENABLE_P2P_FOG=false' });
  });

  it('get_route explains which service serves a request and what it needs', async () => {
    const client = await connect();
    const post = await client.callTool({ name: 'get_route', arguments: { method: 'POST', path: '/v1/twin/notes?x=1' } });
    expect(post.isError).toBeFalsy();
    expect(post.structuredContent).toMatchObject({
      match: 'route',
      route: { id: 'twin', service: 'twin' },
      requiredScope: 'write',
      upstreamUrls: ['http://***@twin.internal:8001'],
    });
    const none = await client.callTool({ name: 'get_route', arguments: { method: 'GET', path: '/v2/nothing' } });
    expect(none.structuredContent).toMatchObject({ match: 'none' });
  });

  it('refuses invalid arguments before the tool runs, naming the problem', async () => {
    const client = await connect({}, { method: 'tools/call' });
    const res = await client.callTool({ name: 'get_route', arguments: { method: 'FETCH', path: 'no-slash' } });
    expect(res.isError).toBe(true);
    expect(JSON.stringify(res.content)).toMatch(/Invalid|invalid/);
  });

  it('list_services hides credentials in upstream URLs', async () => {
    const client = await connect();
    const res = await client.callTool({ name: 'list_services', arguments: {} });
    const text = JSON.stringify(res.structuredContent);
    expect(text).not.toContain('pw@');
    expect(text).toContain('http://***@twin.internal:8001');
  });

  it('get_service_health reads the snapshot, and an unknown service is a tool error', async () => {
    const client = await connect();
    const all = await client.callTool({ name: 'get_service_health', arguments: {} });
    expect(all.structuredContent).toMatchObject({ status: 'degraded', services: [{ service: 'twin' }, { service: 'knowledge', status: 'down' }] });
    const one = await client.callTool({ name: 'get_service_health', arguments: { service: 'knowledge' } });
    expect((one.structuredContent as { services: unknown[] }).services).toHaveLength(1);
    const unknown = await client.callTool({ name: 'get_service_health', arguments: { service: 'weather' } });
    expect(unknown.isError).toBe(true);
    expect((unknown.content as { text: string }[])[0]?.text).toContain('unknown service "weather"');
  });
});

describe('gateway MCP server: resources and prompts', () => {
  it('serves routes, services, the redacted config and a metrics summary as resources', async () => {
    // (one instance serves all these calls here; on /mcp each request has its own, built for its method)
    const client = await connect({ JWT_SECRET_KEY: 'very-secret-value-1234567890' }, { method: 'resources/list' });
    const { resources } = await client.listResources();
    expect(resources.map((r) => r.uri).sort()).toEqual(['gateway://config', 'gateway://metrics/summary', 'gateway://routes', 'gateway://services']);
    const config = await client.readResource({ uri: 'gateway://config' });
    const text = (config.contents[0] as { text: string }).text;
    expect(text).not.toContain('very-secret-value');
    expect(text).not.toContain('pw@');
    expect(JSON.parse(text).secrets.jwtSecretKey).toBe('***');
    const routes = await client.readResource({ uri: 'gateway://routes' });
    expect(JSON.parse((routes.contents[0] as { text: string }).text).routes.length).toBeGreaterThan(0);
  });

  it('builds the diagnose prompt from live data', async () => {
    const client = await connect({}, { method: 'prompts/get' });
    const prompt = await client.getPrompt({ name: 'diagnose_service', arguments: { service: 'knowledge' } });
    const text = (prompt.messages[0]!.content as { text: string }).text;
    expect(text).toContain('"knowledge"');
    expect(text).toContain('ECONNREFUSED');
  });
});

describe('gateway MCP server: one request, what it reaches', () => {
  it('a tools/call instance holds only the tool it names; an unknown name still gets "not found", not "method not found"', async () => {
    const named = await connect({}, { method: 'tools/call', toolName: 'get_route' });
    // The instance of a tools/call lists (were it asked) only the tool it was built for.
    expect((await named.listTools()).tools.map((t) => t.name)).toEqual(['get_route']);
    const res = await named.callTool({ name: 'get_route', arguments: { method: 'GET', path: '/v1/twin/x' } });
    expect(res.isError).toBeFalsy();

    const unknown = await connect({}, { method: 'tools/call', toolName: 'no_such_tool' });
    const err = await unknown.callTool({ name: 'no_such_tool', arguments: {} }).then(
      (r) => r,
      (e: unknown) => e as Error,
    );
    const text = err instanceof Error ? err.message : JSON.stringify(err);
    expect(text).toMatch(/no_such_tool/);
    expect(text).not.toMatch(/Method not found/i);
    expect((await unknown.listTools()).tools.length).toBeGreaterThan(5);
  });

  it('a resources or prompts request registers no tools; initialize and unknown methods get everything', async () => {
    const read = await connect({}, { method: 'resources/read' });
    expect((await read.listResources()).resources.length).toBeGreaterThan(0);
    expect((await read.listTools()).tools).toEqual([]);
    const all = await connect({}, { method: 'initialize' });
    expect((await all.listTools()).tools.length).toBeGreaterThan(5);
    expect((await all.listPrompts()).prompts.map((p) => p.name)).toContain('diagnose_service');
  });
});
