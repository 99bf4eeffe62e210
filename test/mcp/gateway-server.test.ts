import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { afterEach, describe, expect, it } from 'vitest';
import { createGatewayMcpServer } from '../../mcp/server/gateway-server.js';
import { MetricsService } from '../../src/admin/metrics-service.js';
import { RoutesService } from '../../src/admin/routes-service.js';
import { createMetrics } from '../../src/metrics/registry.js';
import { loadConfig, redactConfig } from '../../src/config/index.js';
import type { HealthSnapshot } from '../../src/health/prober.js';
import { buildRouteTable } from '../../src/routing/route-table.js';

/* The MCP server and a real MCP client, linked in-process (InMemoryTransport). */

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

async function connect(env: Record<string, string> = {}): Promise<Client> {
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
  });
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  const client = new Client({ name: 'test-agent', version: '1.0.0' });
  await Promise.all([server.connect(serverSide), client.connect(clientSide)]);
  clients.push(client);
  return client;
}

describe('gateway MCP server: read-only tools', () => {
  it('lists the tools with schemas and truthful read-only annotations', async () => {
    const client = await connect();
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(['get_metrics', 'get_route', 'get_service_health', 'list_routes', 'list_services', 'query_metric']);
    for (const tool of tools) {
      expect(tool.annotations).toMatchObject({ readOnlyHint: true, destructiveHint: false });
      expect(tool.outputSchema?.type).toBe('object');
    }
    const getRoute = tools.find((t) => t.name === 'get_route')!;
    expect(getRoute.inputSchema.required).toEqual(['method', 'path']);
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
    const client = await connect();
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
    const client = await connect({ JWT_SECRET_KEY: 'very-secret-value-1234567890' });
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
    const client = await connect();
    const prompt = await client.getPrompt({ name: 'diagnose_service', arguments: { service: 'knowledge' } });
    const text = (prompt.messages[0]!.content as { text: string }).text;
    expect(text).toContain('"knowledge"');
    expect(text).toContain('ECONNREFUSED');
  });
});
