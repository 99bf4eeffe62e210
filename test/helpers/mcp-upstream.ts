import { resolve } from 'node:path';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import type { CallToolResult } from '@modelcontextprotocol/client';
import { UpstreamUnavailableError, type UpstreamToolCaller } from '../../mcp/clients/types.js';

/*
 * A real upstream MCP server (the installed memory / sequential-thinking servers) behind the
 * UpstreamToolCaller interface, for tests of the integrations without the gateway's pool: one
 * SDK client over stdio to a child process run with the project's Node.
 */

const ROOT = resolve(import.meta.dirname, '../..');
const NODE = resolve(ROOT, 'node_modules/.bin/node');
const ENTRY = {
  memory: resolve(ROOT, 'node_modules/@modelcontextprotocol/server-memory/dist/index.js'),
  'sequential-thinking': resolve(ROOT, 'node_modules/@modelcontextprotocol/server-sequential-thinking/dist/index.js'),
} as const;

export interface StdioUpstream extends UpstreamToolCaller {
  /** Tool calls made, by tool name (what the server recorded). */
  readonly calls: Array<{ tool: string; args: Record<string, unknown> }>;
  /** Make the server look down (isReady false, calls refused) without stopping it. */
  down: boolean;
  close(): Promise<void>;
}

export async function startStdioUpstream(kind: keyof typeof ENTRY, env: Record<string, string> = {}, name: string = kind): Promise<StdioUpstream> {
  const transport = new StdioClientTransport({
    command: NODE,
    args: [ENTRY[kind]],
    env: { PATH: process.env.PATH ?? '', DISABLE_THOUGHT_LOGGING: 'true', ...env },
    stderr: 'pipe',
  });
  const client = new Client({ name: 'integration-test', version: '1.0.0' });
  await client.connect(transport);
  const calls: StdioUpstream['calls'] = [];
  const upstream: StdioUpstream = {
    calls,
    down: false,
    isReady: (server) => server === name && !upstream.down,
    async callTool(server, tool, args): Promise<CallToolResult> {
      if (server !== name || upstream.down) throw new UpstreamUnavailableError(server, 'not connected');
      calls.push({ tool, args });
      return (await client.callTool({ name: tool, arguments: args })) as CallToolResult;
    },
    close: () => client.close(),
  };
  return upstream;
}

/** Several upstreams behind one caller (the pool's shape: one caller, named servers). */
export function combined(upstreams: Readonly<Record<string, UpstreamToolCaller>>): UpstreamToolCaller {
  return {
    isReady: (server) => upstreams[server]?.isReady(server) ?? false,
    callTool: (server, tool, args, options) => {
      const u = upstreams[server];
      if (u === undefined) return Promise.reject(new UpstreamUnavailableError(server, 'unknown'));
      return u.callTool(server, tool, args, options);
    },
  };
}
