import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanup, onCleanup, startGateway, type GatewayProcess } from '../helpers/gateway.js';
import { call } from '../helpers/http.js';
import { connectMcp } from '../helpers/mcp.js';

/*
 * The gateway as an MCP client, end to end: the built gateway with upstream servers from npm
 * over stdio (memory preset, the everything server), /healthz, the admin surfaces, kill -9 of
 * an upstream, and no child left after a graceful shutdown or a kill -9 of the gateway (ps).
 */

afterAll(cleanup);

const require = createRequire(import.meta.url);
const EVERYTHING = join(require.resolve('@modelcontextprotocol/server-everything/package.json'), '..', 'dist', 'index.js');

/** Processes whose command line contains `needle`, from ps. */
function processes(needle: string): { pid: number; ppid: number; args: string }[] {
  const out = execFileSync('ps', ['-eo', 'pid=,ppid=,args='], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((line) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null && m[3]!.includes(needle) && !m[3]!.startsWith('ps '))
    .map((m) => ({ pid: Number(m[1]), ppid: Number(m[2]), args: m[3]! }));
}

async function until<T>(check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

type Health = { mcpServers?: Record<string, { state: string; toolCount: number; protocolVersion?: string; lastError?: string }> };
const health = async (g: GatewayProcess): Promise<Health> => (await call(`${g.url}/healthz`, { anonymous: true })).json<Health>();

function gatewayYaml(marker: string, dataDir: string): string {
  return [
    'mcp:',
    `  dataDir: ${dataDir}`,
    '  servers:',
    '    memory:',
    '      preset: memory',
    `      args: [${marker}]`,
    '    everything:',
    `      command: ${process.execPath}`,
    `      args: [${EVERYTHING}, stdio, ${marker}]`,
    '      timeoutMs: 5000',
    '',
  ].join('\n');
}

describe('upstream MCP servers of a running gateway', () => {
  it('connect after listening, show in /healthz and list_mcp_servers, survive kill -9 of an upstream, and leave no child after shutdown', async () => {
    const marker = `e2e-mcp-${randomUUID()}`;
    const dataDir = mkdtempSync(join(tmpdir(), 'e2e-mcp-data-'));
    onCleanup(() => rmSync(dataDir, { recursive: true, force: true }));
    const gateway = await startGateway({ yaml: gatewayYaml(marker, dataDir) });

    const ready = await until(async () => {
      const h = await health(gateway);
      return h.mcpServers?.memory?.state === 'ready' && h.mcpServers.everything?.state === 'ready' ? h : undefined;
    }, 30_000, 'both upstreams ready');
    expect(ready.mcpServers!.memory!.toolCount).toBeGreaterThan(3);
    expect(ready.mcpServers!.everything!.protocolVersion).toMatch(/^(2025-11-25|2026-07-28)$/);
    // Each server runs under a watchdog that is the gateway's child.
    // (auto negotiation may probe on a short-lived sibling process first: wait for it to be gone)
    const watchdogs = await until(() => {
      const w = processes(marker).filter((p) => p.args.includes('watchdog'));
      return w.length === 2 ? w : undefined;
    }, 5000, 'two watchdogs');
    expect(watchdogs.map((p) => p.ppid)).toEqual([gateway.pid, gateway.pid]);

    // The MCP faces: list_mcp_servers (read) and gateway://mcp-servers.
    const agent = await connectMcp(gateway.url, { 'x-api-key': 'e2e-admin-key-0123456789abcdef' });
    const listed = await agent.client.callTool({ name: 'list_mcp_servers', arguments: {} });
    const servers = (listed.structuredContent as { servers: { name: string; state: string }[] }).servers;
    expect(servers.map((s) => [s.name, s.state])).toEqual([
      ['memory', 'ready'],
      ['everything', 'ready'],
    ]);
    const resource = await agent.client.readResource({ uri: 'gateway://mcp-servers' });
    expect(JSON.parse((resource.contents[0] as { text: string }).text).servers).toHaveLength(2);

    // kill -9 of the everything server: down on /healthz within 2 s, then restarted.
    const server = processes(marker).find((p) => p.args.includes(EVERYTHING) && !p.args.includes('watchdog'))!;
    process.kill(server.pid, 'SIGKILL');
    const killedAt = Date.now();
    await until(async () => (await health(gateway)).mcpServers?.everything?.state !== 'ready', 2000, 'everything down on /healthz');
    const downAfterMs = Date.now() - killedAt;
    console.log(`/healthz showed everything down ${downAfterMs} ms after kill -9`);
    expect(downAfterMs).toBeLessThan(2000);
    await until(async () => (await health(gateway)).mcpServers?.everything?.state === 'ready', 20_000, 'everything back');

    // restart_mcp_server through REST (the admin service layer the MCP tool uses too), audited.
    const restarted = await call(`${gateway.url}/admin/mcp-servers/memory/restart`, { method: 'POST' });
    expect(restarted.status).toBe(200);
    expect(restarted.json<{ server: { name: string; state: string; reconnects: number } }>().server).toMatchObject({ name: 'memory', state: 'ready', reconnects: 1 });
    expect((await call(`${gateway.url}/admin/mcp-servers/nope/restart`, { method: 'POST' })).json<{ error: { code: string } }>().error.code).toBe('GW_ADMIN_MCP_SERVER_NOT_FOUND');
    await gateway.waitForLog((l) => (l.audit as { action?: string } | undefined)?.action === 'restart_mcp_server');
    // The MCP admin tool.
    const viaMcp = await agent.client.callTool({ name: 'restart_mcp_server', arguments: { server: 'everything' } });
    expect(viaMcp.isError).not.toBe(true);
    expect((viaMcp.structuredContent as { server: { state: string } }).server.state).toBe('ready');
    await agent.client.close();

    // Metrics.
    const metrics = (await call(`${gateway.url}/metrics`)).text;
    expect(metrics).toMatch(/gateway_mcp_upstream_up\{server="memory"\} 1/);

    // Graceful shutdown: no child left.
    await gateway.stop('SIGTERM');
    await until(() => processes(marker).length === 0, 5000, 'no upstream process left after SIGTERM');
  }, 120_000);

  it('kill -9 of the gateway leaves no upstream process behind', async () => {
    const marker = `e2e-mcp-${randomUUID()}`;
    const dataDir = mkdtempSync(join(tmpdir(), 'e2e-mcp-data-'));
    onCleanup(() => rmSync(dataDir, { recursive: true, force: true }));
    const gateway = await startGateway({ yaml: gatewayYaml(marker, dataDir) });
    await until(async () => {
      const h = await health(gateway);
      return h.mcpServers?.memory?.state === 'ready' && h.mcpServers.everything?.state === 'ready';
    }, 30_000, 'both upstreams ready');
    await until(() => processes(marker).length === 4, 5000, 'two watchdogs, two servers');
    await gateway.stop('SIGKILL');
    await until(() => processes(marker).length === 0, 5000, 'no upstream process left after kill -9 of the gateway');
  }, 120_000);
});
