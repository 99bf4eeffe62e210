import { createRequire } from 'node:module';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, closeInProcess, modernClient, READER_KEY, startInProcess } from '../helpers/mcp-inprocess.js';

/*
 * Upstream MCP servers through the admin service layer (src/admin/mcp-servers-service.ts):
 * REST /admin/mcp-servers, the MCP tool list_mcp_servers, the admin tool restart_mcp_server
 * and /healthz, in one in-process gateway with a stdio upstream and a disabled one.
 */

afterAll(closeInProcess);

const require = createRequire(import.meta.url);
const EVERYTHING = join(require.resolve('@modelcontextprotocol/server-everything/package.json'), '..', 'dist', 'index.js');

async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('not in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('upstream MCP servers in the admin layer', () => {
  it('lists them, restarts one for admins only, refuses unknown and disabled ones with catalogue codes', async () => {
    const gw = await startInProcess({
      yaml: `mcp:\n  servers:\n    everything:\n      command: ${process.execPath}\n      args: [${EVERYTHING}, stdio]\n    github: { preset: github }\n`,
    });
    const get = (path: string, key = ADMIN_KEY) => fetch(`${gw.url}${path}`, { headers: { 'x-api-key': key } });
    const post = (path: string, key = ADMIN_KEY) => fetch(`${gw.url}${path}`, { method: 'POST', headers: { 'x-api-key': key } });
    await until(async () => ((await (await fetch(`${gw.url}/healthz`)).json()) as { mcpServers?: Record<string, { state: string }> }).mcpServers?.everything?.state === 'ready', 20_000);

    const health = (await (await fetch(`${gw.url}/healthz`)).json()) as { mcpServers: Record<string, Record<string, unknown>> };
    expect(health.mcpServers.github).toEqual({ state: 'disabled', toolCount: 0 });
    expect(health.mcpServers.everything).toMatchObject({ state: 'ready', protocolVersion: expect.stringMatching(/^2025-11-25|2026-07-28$/) });
    expect(health.mcpServers.everything!.toolCount).toBeGreaterThan(5);

    const listed = (await (await get('/admin/mcp-servers')).json()) as { servers: { name: string; state: string; toolPrefix: string }[] };
    expect(listed.servers.map((s) => [s.name, s.state, s.toolPrefix])).toEqual([
      ['everything', 'ready', 'everything__'],
      ['github', 'disabled', 'github__'],
    ]);
    expect((await get('/admin/mcp-servers', READER_KEY)).status).toBe(403);
    expect((await post('/admin/mcp-servers/everything/restart', READER_KEY)).status).toBe(403);
    const unknown = await post('/admin/mcp-servers/nope/restart');
    expect([unknown.status, ((await unknown.json()) as { error: { code: string } }).error.code]).toEqual([404, 'GW_ADMIN_MCP_SERVER_NOT_FOUND']);
    const disabled = await post('/admin/mcp-servers/github/restart');
    expect([disabled.status, ((await disabled.json()) as { error: { code: string } }).error.code]).toEqual([409, 'GW_ADMIN_MCP_SERVER_DISABLED']);
    const restarted = await post('/admin/mcp-servers/everything/restart');
    expect(restarted.status).toBe(200);
    expect(((await restarted.json()) as { server: { state: string; reconnects: number } }).server).toMatchObject({ state: 'ready', reconnects: 1 });
    expect(gw.logs.some((l) => l.audit?.action === 'restart_mcp_server' && l.audit?.server === 'everything' && l.audit?.principal === 'key:env-api-key' && l.audit?.result === 'ready')).toBe(true);

    // MCP: the read tool for a reader, the admin tool only for admins (not even listed for a reader).
    const reader = await modernClient(gw.url, { 'x-api-key': READER_KEY });
    const names = (await reader.listTools()).tools.map((t) => t.name);
    expect(names).toContain('list_mcp_servers');
    expect(names).not.toContain('restart_mcp_server');
    const refused = await reader.callTool({ name: 'restart_mcp_server', arguments: { server: 'everything' } });
    expect(refused.isError).toBe(true);
    expect(JSON.stringify(refused.content)).toContain('GW_AUTH_INSUFFICIENT_SCOPE');
    const admin = await modernClient(gw.url);
    const viaTool = await admin.callTool({ name: 'restart_mcp_server', arguments: { server: 'github' } });
    expect(viaTool.isError).toBe(true);
    expect(JSON.stringify(viaTool.content)).toContain('disabled');
    const resource = await admin.readResource({ uri: 'gateway://mcp-servers' });
    expect(JSON.parse((resource.contents[0] as { text: string }).text).servers).toHaveLength(2);
    expect(gw.audits().some((a) => a.tool === 'restart_mcp_server' && a.phase === 'ended')).toBe(true);
    await reader.close();
    await admin.close();
  }, 60_000);
});
