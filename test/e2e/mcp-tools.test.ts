import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, E2E_API_KEY, startGateway, type GatewayProcess } from '../helpers/gateway.js';
import { call } from '../helpers/http.js';
import { ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { connectMcp, mcpRaw, type McpTestClient } from '../helpers/mcp.js';
import { standIn, standIns, type StandIn } from '../helpers/upstreams.js';

/*
 * Every tool, resource and prompt of the gateway's MCP server called once through the real
 * /mcp endpoint by an admin agent, each checked against what the REST side or the proxy says.
 */

let gw: GatewayProcess;
let agent: McpTestClient;
let canary: StandIn;

beforeAll(async () => {
  const ups = await standIns(['twin', 'knowledge']);
  canary = await standIn('knowledge-v2');
  gw = await startGateway({
    env: ups.env,
    yaml:
      `routes:\n  - { id: knowledge, prefix: /v1/knowledge, service: knowledge, split: { canary: { urls: ["${canary.url}"] } } }\n` +
      'health:\n  intervalMs: 200\n',
  });
  agent = await connectMcp(gw.url, { 'x-api-key': E2E_API_KEY });
});
afterAll(async () => {
  await agent?.client.close();
  await cleanup();
});

const structured = async (name: string, args: Record<string, unknown> = {}) => {
  const res = await agent.client.callTool({ name, arguments: args });
  expect(res.isError, `${name}: ${JSON.stringify(res.content)}`).toBeFalsy();
  return res.structuredContent as Record<string, any>;
};

describe('every MCP tool, resource and prompt over /mcp', () => {
  it('lists the tools, each with an output schema and annotations', async () => {
    const { tools } = await agent.client.listTools();
    const names = tools.map((t) => t.name).sort();
    expect(names).toEqual(
      [
        'analyze_routing',
        'explain_routing',
        'review_routing',
        'get_metrics',
        'get_route',
        'get_service_health',
        'get_traffic_split',
        'list_blocked_clients',
        'list_mcp_servers',
        'list_routes',
        'list_services',
        'query_metric',
        'reset_circuit_breaker',
        'restart_mcp_server',
        'shift_traffic',
        'unblock_client',
        'validate_routing_model',
        // migration (src/migration)
        'start_migration',
        'get_migration',
        'list_migrations',
        'approve_migration_step',
        'pause_migration',
        'resume_migration',
        'rollback_migration',
        'abort_migration',
        'legacy_usage',
      ].sort(),
    );
    for (const t of tools) {
      expect(t.outputSchema?.type, t.name).toBe('object');
      expect(typeof t.annotations?.readOnlyHint, t.name).toBe('boolean');
    }
  });

  it('migration tools: start_migration dry run, list_migrations, get_migration refusal, legacy_usage', async () => {
    const dry = await structured('start_migration', { route: 'knowledge', dry_run: true });
    expect(dry).toMatchObject({ applied: false, migration: { route: 'knowledge', state: 'running', steps: [{ percent: 10 }, { percent: 25 }, { percent: 50 }, { percent: 100 }] } });
    expect((await structured('list_migrations', {})).migrations).toEqual([]);
    const missing = await agent.client.callTool({ name: 'get_migration', arguments: { route: 'knowledge' } });
    expect(missing.isError).toBe(true);
    expect(JSON.stringify(missing.content)).toContain('no migration on route');
    const badSteps = await agent.client.callTool({ name: 'start_migration', arguments: { route: 'knowledge', steps: [50, 25, 100] } });
    expect(badSteps.isError).toBe(true);
    expect((await structured('legacy_usage', {})).endpoints.map((e: any) => e.path)).toEqual(['/query', '/upload', '/status']);
  });

  it('read tools agree with the gateway', async () => {
    expect((await call(`${gw.url}/v1/twin/hello`)).status).toBe(200);
    const routes = await structured('list_routes');
    expect(routes.routes.find((r: any) => r.id === 'knowledge')).toMatchObject({ service: 'knowledge', split: { canaryService: 'knowledge-canary' } });
    const services = await structured('list_services');
    expect(services.services.map((s: any) => s.name)).toEqual(expect.arrayContaining(['twin', 'knowledge', 'knowledge-canary']));
    const health = await structured('get_service_health', { service: 'twin' });
    expect(health.services[0]).toMatchObject({ service: 'twin', status: 'up' });
    const unknownService = await agent.client.callTool({ name: 'get_service_health', arguments: { service: 'nope' } });
    expect(unknownService.isError).toBe(true);
    const metrics = await structured('get_metrics', { minutes: 5 });
    expect(metrics.services.find((s: any) => s.service === 'twin')?.requests).toBeGreaterThanOrEqual(1);
    const metric = await structured('query_metric', { name: 'gateway_service_requests', labels: { service: 'twin' } });
    expect(metric.series.length).toBeGreaterThanOrEqual(1);
    expect(metric.series[0].labels).toMatchObject({ service: 'twin', side: 'stable' });
    const unknownMetric = await agent.client.callTool({ name: 'query_metric', arguments: { name: 'no_such_metric' } });
    expect(unknownMetric.isError).toBe(true);
    const route = await structured('get_route', { method: 'GET', path: '/v1/knowledge/search' });
    expect(route).toMatchObject({ match: 'route', requiredScope: 'read' });
    expect(route.explanation).toContain('Traffic is split: 100% to knowledge (stable), 0% to knowledge-canary');
    const split = await structured('get_traffic_split', {});
    expect(split.splits.map((s: any) => s.route)).toEqual(['knowledge']);
    const routing = await structured('explain_routing', { text: 'search the onboarding documents for the vacation policy' });
    expect(routing.service).toBe('knowledge');
    // No sequential-thinking server here: the chain is built and returned, marked local.
    const analysis = await structured('analyze_routing', { text: 'search the onboarding documents for the vacation policy' });
    expect(analysis).toMatchObject({ recordedBy: 'local', decision: { service: 'knowledge' } });
    expect(analysis.steps.length).toBeGreaterThanOrEqual(4);
    // The split of the knowledge route is one of the steps.
    expect(analysis.steps.map((s: any) => s.thought).join('\n')).toContain('route knowledge splits stable 100 / canary 0');
    const review = await structured('review_routing', { minutes: 5 });
    expect(review).toMatchObject({ recordedBy: 'local' });
    expect(review.steps.length).toBeGreaterThanOrEqual(5);
  });

  it('admin tools change the gateway, and the REST admin API sees the change', async () => {
    const block = await call(`${gw.url}/admin/blocked-clients`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ client: '203.0.113.7', seconds: 600, reason: 'e2e' }) });
    expect(block.status).toBe(201);
    const blocked = await structured('list_blocked_clients');
    expect(blocked.clients.map((c: any) => c.client)).toContain('203.0.113.7');
    expect(await structured('unblock_client', { client: '203.0.113.7' })).toEqual({ client: '203.0.113.7', unblocked: true });
    expect((await call(`${gw.url}/admin/blocked-clients`)).json().clients).toEqual([]);

    expect(await structured('reset_circuit_breaker', { service: 'twin' })).toEqual({ service: 'twin', reset: 0 });
    const unknown = await agent.client.callTool({ name: 'reset_circuit_breaker', arguments: { service: 'nope' } });
    expect(unknown.isError).toBe(true);

    const shifted = await structured('shift_traffic', { route: 'knowledge', stable: 20, canary: 80, reason: 'e2e every tool' });
    expect(shifted).toMatchObject({ applied: true, after: { stable: 20, canary: 80 } });
    expect((await call(`${gw.url}/admin/traffic/knowledge`)).json().splits[0].weights).toEqual({ stable: 20, canary: 80 });
    await structured('shift_traffic', { route: 'knowledge', stable: 100, canary: 0, reason: 'reset' });
  });

  it('resources can be listed and read; prompts are built from live data', async () => {
    const { resources } = await agent.client.listResources();
    expect(resources.map((r) => r.uri).sort()).toEqual(['gateway://config', 'gateway://mcp-servers', 'gateway://metrics/summary', 'gateway://migrations', 'gateway://routes', 'gateway://services']);
    expect(JSON.parse(((await agent.client.readResource({ uri: 'gateway://migrations' })).contents[0] as { text: string }).text)).toEqual({ migrations: [] });
    for (const r of resources) {
      const read = await agent.client.readResource({ uri: r.uri });
      const content = read.contents[0] as { mimeType?: string; text: string };
      expect(content.mimeType, r.uri).toBe('application/json');
      expect(() => JSON.parse(content.text), r.uri).not.toThrow();
    }
    const config = (await agent.client.readResource({ uri: 'gateway://config' })).contents[0] as { text: string };
    expect(config.text).not.toContain(E2E_API_KEY);

    const diagnose = await agent.client.getPrompt({ name: 'diagnose_service', arguments: { service: 'twin' } });
    expect((diagnose.messages[0]!.content as { text: string }).text).toContain('"service": "twin"');
    const plan = await agent.client.getPrompt({ name: 'plan_canary_rollout', arguments: { route: 'knowledge' } });
    expect((plan.messages[0]!.content as { text: string }).text).toContain('knowledge (stable) to knowledge-canary (canary), now 100/0');
    // No log notifications are ever sent, so logging is not a capability: logging/setLevel is unknown.
    await expect(agent.client.setLoggingLevel('warning')).rejects.toMatchObject({ code: -32601 });
  });

  it('checks MCP-Protocol-Version against the version the session negotiated: another one, supported or not, is 400', async () => {
    const sessionId = agent.transport.sessionId!;
    const list = { jsonrpc: '2.0', id: 77, method: 'tools/list' };
    for (const version of ['1999-01-01', '2025-06-18']) {
      const bad = await mcpRaw(gw.url, { sessionId, body: list, headers: { 'mcp-protocol-version': version } });
      expect([bad.status, bad.json().error.data.code]).toEqual([400, 'GW_MCP_PROTOCOL_VERSION_MISMATCH']);
    }
    const good = await mcpRaw(gw.url, { sessionId, body: list, headers: { 'mcp-protocol-version': agent.transport.protocolVersion! } });
    expect(good.status).toBe(200);
  });

  it('a subscriber to gateway://services hears when a service goes down', async () => {
    const heard: string[] = [];
    agent.client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
      heard.push(n.params.uri);
    });
    await agent.client.subscribeResource({ uri: 'gateway://services' });
    await new Promise((r) => setTimeout(r, 200)); // the GET stream that carries notifications opens
    await canary.close();
    // Each update is read back; another service's change (a slow probe on a busy machine) is
    // also an update of gateway://services, so the one that matters is the one after which the
    // canary reads as down.
    const canaryStatus = async () => {
      const services = JSON.parse(((await agent.client.readResource({ uri: 'gateway://services' })).contents[0] as { text: string }).text);
      return services.health.services.find((s: { service: string }) => s.service === 'knowledge-canary').status as string;
    };
    const deadline = Date.now() + 10_000;
    let status = 'not heard';
    while (status !== 'down' && Date.now() < deadline) {
      if (heard.includes('gateway://services')) {
        heard.length = 0;
        status = await canaryStatus();
      } else await new Promise((r) => setTimeout(r, 20));
    }
    expect(status).toBe('down');
  });
});
