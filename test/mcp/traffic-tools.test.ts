import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { EmptyResultSchema, ResourceUpdatedNotificationSchema, type RequestId } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it } from 'vitest';
import { authInfoFor } from '../../mcp/server/auth.js';
import { createGatewayMcpServer, hiddenTools, type McpAuditEntry, type SubscribableResource } from '../../mcp/server/gateway-server.js';
import { observeTransport } from '../../mcp/server/observe.js';
import { MetricsService } from '../../src/admin/metrics-service.js';
import { RoutesService } from '../../src/admin/routes-service.js';
import { TrafficService } from '../../src/admin/traffic-service.js';
import type { Principal } from '../../src/auth/principal.js';
import { loadConfig, redactConfig } from '../../src/config/index.js';
import { createMetrics } from '../../src/metrics/registry.js';
import { buildRouteTable } from '../../src/routing/route-table.js';
import { TrafficSplits } from '../../src/routing/traffic-split.js';
import { MemoryStore } from '../../src/state/index.js';

/* The traffic tools, resource subscriptions, audit and the rollout prompt, in-process (InMemoryTransport). */

const ADMIN: Principal = { kind: 'api-key', subject: 'key:ops', keyName: 'ops', scopes: ['admin'], mfa: false };
/** The same subject as ADMIN, with a token that proves a second factor. */
const ADMIN_MFA: Principal = { kind: 'jwt', subject: 'key:ops', scopes: ['admin'], mfa: true };
const READER: Principal = { kind: 'api-key', subject: 'key:reader', keyName: 'reader', scopes: ['read'], mfa: false };
const YAML_FILE = join(mkdtempSync(join(tmpdir(), 'ugw-traffic-tools-')), 'gateway.yaml');
writeFileSync(YAML_FILE, 'routes:\n  - { id: knowledge, prefix: /v1/knowledge, service: knowledge, split: { canary: { urls: ["http://knowledge-v2:8003"] } } }\n');

const closers: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

/**
 * A client linked in-process to a fresh server and its session observer. Every message the
 * client sends carries a principal as the SDK's authInfo, as each HTTP request to /mcp does
 * (mcp/server/http.ts): `principal` at first, another one after `useCredential`.
 */
async function setup(principal: Principal, requireMfaForAdmin = false) {
  const result = loadConfig({}, { file: YAML_FILE });
  if (!result.ok) throw new Error(result.problems.join('\n'));
  const config = result.config;
  const splits = new TrafficSplits(config.routes, new MemoryStore(), { warn() {}, info() {} });
  await splits.start();
  const listeners = new Set<(uri: SubscribableResource) => void>();
  splits.onChange(() => {
    for (const l of listeners) l('gateway://routes');
  });
  const audit: McpAuditEntry[] = [];
  const refused = new Set<RequestId>();
  const metrics = createMetrics({ durationBuckets: [0.01, 0.1, 1], defaultMetrics: false });
  const server = createGatewayMcpServer({
    routes: new RoutesService(config, buildRouteTable(config), { snapshot: () => ({ status: 'ok', checkedAt: null, services: {} }) }, splits),
    metrics: new MetricsService(metrics.registry),
    traffic: new TrafficService(config, splits),
    requireMfaForAdmin,
    redactedConfig: () => redactConfig(config),
    resourceChanges: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    refused,
    version: '0.1.0',
  });
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  let current: Principal | null = principal;
  const send = clientSide.send.bind(clientSide);
  clientSide.send = (message, options) => send(message, { ...options, authInfo: authInfoFor(current) });
  const client = new Client({ name: 'test-agent', version: '1.0.0' });
  await server.connect(serverSide);
  // The session observer the HTTP transport also gets: audit, metrics, hidden tools.
  observeTransport(serverSide, { metrics, audit: (entry) => audit.push(entry), refused, hidden: hiddenTools });
  await client.connect(clientSide);
  closers.push(() => client.close(), () => splits.close());
  const useCredential = (next: Principal | null) => {
    current = next;
  };
  return { client, audit, splits, listeners, metrics, useCredential };
}

describe('traffic tools', () => {
  it('admins see shift_traffic with truthful annotations; readers only get_traffic_split', async () => {
    const admin = await setup(ADMIN);
    const tools = (await admin.client.listTools()).tools;
    expect(tools.find((t) => t.name === 'shift_traffic')?.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: true });
    expect(tools.find((t) => t.name === 'get_traffic_split')?.annotations).toMatchObject({ readOnlyHint: true });
    const reader = await setup(READER);
    const names = (await reader.client.listTools()).tools.map((t) => t.name);
    expect(names).toContain('get_traffic_split');
    expect(names).not.toContain('shift_traffic');
  });

  it('shift_traffic validates, applies, and every call is audited with a hash of its arguments', async () => {
    const { client, audit, splits } = await setup(ADMIN);
    const bad = await client.callTool({ name: 'shift_traffic', arguments: { route: 'knowledge', stable: 80, canary: 30, reason: 'oops' } });
    expect(bad.isError).toBe(true);
    const outOfRange = await client.callTool({ name: 'shift_traffic', arguments: { route: 'knowledge', stable: 150, canary: -50, reason: 'range' } });
    expect(outOfRange.isError).toBe(true);
    expect(splits.state('knowledge')?.weights).toEqual({ stable: 100, canary: 0 });
    const ok = await client.callTool({ name: 'shift_traffic', arguments: { route: 'knowledge', stable: 75, canary: 25, reason: 'step one' } });
    expect(ok.structuredContent).toMatchObject({ applied: true, before: { canary: 0 }, after: { canary: 25 }, by: 'key:ops' });
    expect(splits.state('knowledge')).toMatchObject({ weights: { stable: 75, canary: 25 }, updatedBy: 'key:ops', reason: 'step one' });
    const shifts = audit.filter((a) => a.tool === 'shift_traffic');
    // The bad sum (the service refuses it) and the out-of-range weights (the schema does) both count as failed.
    expect(shifts.map((a) => a.result)).toEqual(['failed', 'failed', 'ok']);
    for (const a of shifts) {
      expect(a.principal).toBe('key:ops');
      expect(a.argsHash).toMatch(/^[0-9a-f]{16}$/);
    }
    expect(JSON.stringify(audit)).not.toContain('step one');
  });

  it('a reader calling a hidden admin tool gets a tool error naming the scope, audited as refused; bad arguments are audited as failed', async () => {
    const { client, audit, splits, metrics } = await setup(READER);
    const res = await client.callTool({ name: 'shift_traffic', arguments: { route: 'knowledge', stable: 0, canary: 100, reason: 'escalation' } });
    expect(res.isError).toBe(true);
    expect((res.content as Array<{ text: string }>)[0]!.text).toBe('GW_AUTH_INSUFFICIENT_SCOPE: this tool needs the "admin" scope');
    expect(splits.state('knowledge')?.weights.canary).toBe(0);
    const invalid = await client.callTool({ name: 'get_traffic_split', arguments: { route: 42 } });
    expect(invalid.isError).toBe(true);
    expect(audit.map((a) => [a.tool, a.principal, a.result])).toEqual([
      ['shift_traffic', 'key:reader', 'refused'],
      ['get_traffic_split', 'key:reader', 'failed'],
    ]);
    const counted = (await metrics.registry.getSingleMetric('gateway_mcp_requests_total')!.get()).values;
    expect(counted.find((v) => v.labels.tool === 'shift_traffic')).toMatchObject({ labels: { method: 'tools/call', status: 'tool_error' }, value: 1 });
    expect(counted.find((v) => v.labels.method === 'tools/list')).toBeUndefined();
  });

  it('counts unknown tools and methods as "other": a client cannot grow the metric', async () => {
    const { client, metrics, audit } = await setup(READER);
    for (const name of ['nope_1', 'nope_2', 'nope_3']) {
      const res = await client.callTool({ name, arguments: {} }).catch((err: Error) => err);
      expect(res).toBeTruthy();
    }
    await expect(client.request({ method: 'made/up' }, EmptyResultSchema)).rejects.toThrow();
    const values = (await metrics.registry.getSingleMetric('gateway_mcp_requests_total')!.get()).values;
    expect(values.filter((v) => v.labels.method === 'tools/call').map((v) => [v.labels.tool, v.value])).toEqual([['other', 3]]);
    expect(values.find((v) => v.labels.method === 'other')).toMatchObject({ labels: { tool: '', status: 'error' }, value: 1 });
    // The audit line keeps the name as called.
    expect(audit.map((a) => a.tool)).toEqual(['nope_1', 'nope_2', 'nope_3']);
  });

  it('with MFA required, an admin without a second factor is refused, audited as refused, and nothing changes', async () => {
    const { client, audit, splits } = await setup(ADMIN, true);
    const res = await client.callTool({ name: 'shift_traffic', arguments: { route: 'knowledge', stable: 0, canary: 100, reason: 'no mfa' } });
    expect(res.isError).toBe(true);
    expect(JSON.stringify(res.content)).toContain('second factor');
    expect(audit.at(-1)).toMatchObject({ tool: 'shift_traffic', result: 'refused' });
    expect(splits.state('knowledge')?.weights.canary).toBe(0);
  });

  it('each request is judged by its own credential: a session opened with MFA runs no admin tool for a same-subject request without MFA or with read scope', async () => {
    const { client, audit, splits, useCredential } = await setup(ADMIN_MFA, true);
    const shift = { name: 'shift_traffic', arguments: { route: 'knowledge', stable: 0, canary: 100, reason: 'per-request credential' } };
    const dry = await client.callTool({ ...shift, arguments: { ...shift.arguments, dry_run: true } });
    expect(dry.isError).toBeFalsy();

    // Same subject, no second factor: refused as REST refuses it (GW_AUTH_MFA_REQUIRED), though the session was opened with MFA.
    useCredential(ADMIN);
    expect((await client.listTools()).tools.map((t) => t.name)).toContain('shift_traffic');
    const noMfa = await client.callTool(shift);
    expect(noMfa.isError).toBe(true);
    expect((noMfa.content as Array<{ text: string }>)[0]!.text).toMatch(/^GW_AUTH_MFA_REQUIRED: .*second factor/);
    expect(splits.state('knowledge')?.weights.canary).toBe(0);

    // Same subject, read scope: not listed, refused naming the scope.
    useCredential({ ...ADMIN, scopes: ['read'] });
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toContain('get_traffic_split');
    expect(names).not.toContain('shift_traffic');
    const read = await client.callTool(shift);
    expect((read.content as Array<{ text: string }>)[0]!.text).toMatch(/^GW_AUTH_INSUFFICIENT_SCOPE: /);
    // No credential at all (an anonymous message): refused too.
    useCredential(null);
    expect((await client.callTool(shift)).isError).toBe(true);
    expect(splits.state('knowledge')?.weights.canary).toBe(0);

    // Back to the MFA credential: allowed again, recorded under its subject.
    useCredential(ADMIN_MFA);
    const applied = await client.callTool(shift);
    expect(applied.structuredContent).toMatchObject({ applied: true, by: 'key:ops' });
    expect(audit.filter((a) => a.tool === 'shift_traffic').map((a) => [a.principal, a.result])).toEqual([
      ['key:ops', 'ok'],
      ['key:ops', 'refused'],
      ['key:ops', 'refused'],
      ['anonymous', 'refused'],
      ['key:ops', 'ok'],
    ]);
  });

  it('a subscriber to gateway://routes hears of a shift; unknown resources cannot be subscribed; closing stops listening', async () => {
    const { client, listeners } = await setup(ADMIN);
    const heard: string[] = [];
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
      heard.push(n.params.uri);
    });
    await expect(client.subscribeResource({ uri: 'gateway://nothing' })).rejects.toThrow(/gateway:\/\/nothing/);
    await client.subscribeResource({ uri: 'gateway://routes' });
    await client.callTool({ name: 'shift_traffic', arguments: { route: 'knowledge', stable: 90, canary: 10, reason: 'subscribe test' } });
    await new Promise((r) => setTimeout(r, 10));
    expect(heard).toEqual(['gateway://routes']);
    await client.unsubscribeResource({ uri: 'gateway://routes' });
    await client.callTool({ name: 'shift_traffic', arguments: { route: 'knowledge', stable: 80, canary: 20, reason: 'after unsubscribe' } });
    await new Promise((r) => setTimeout(r, 10));
    expect(heard).toEqual(['gateway://routes']);
    expect(listeners.size).toBe(1);
    await client.close();
    await new Promise((r) => setTimeout(r, 10));
    expect(listeners.size).toBe(0);
  });

  it('plan_canary_rollout is built from the live split', async () => {
    const { client } = await setup(READER);
    const prompts = (await client.listPrompts()).prompts.map((p) => p.name);
    expect(prompts).toEqual(expect.arrayContaining(['diagnose_service', 'plan_canary_rollout']));
    const prompt = await client.getPrompt({ name: 'plan_canary_rollout', arguments: { route: 'knowledge' } });
    const text = (prompt.messages[0]!.content as { text: string }).text;
    expect(text).toContain('knowledge (stable) to knowledge-canary (canary), now 100/0');
    expect(text).toContain('http://knowledge-v2:8003');
    await expect(client.getPrompt({ name: 'plan_canary_rollout', arguments: { route: 'nope' } })).rejects.toThrow(/no traffic split/);
  });
});
