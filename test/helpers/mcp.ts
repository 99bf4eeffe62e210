import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';
import { call, type HttpResult } from './http.js';

/*
 * Small helpers for the /mcp suites: an SDK client against a gateway's /mcp with the given
 * headers, and raw JSON-RPC requests over node:http for the cases the SDK client hides (status
 * codes, error bodies, foreign session ids).
 */

export interface McpTestClient {
  readonly client: Client;
  readonly transport: StreamableHTTPClientTransport;
}

/** An SDK client (not yet connected) for `${gatewayUrl}/mcp`, sending `headers` on every request. */
export function mcpClient(gatewayUrl: string, headers: Record<string, string> = {}): McpTestClient {
  const transport = new StreamableHTTPClientTransport(new URL(`${gatewayUrl}/mcp`), { requestInit: { headers } });
  return { transport, client: new Client({ name: 'e2e-agent', version: '1.0.0' }) };
}

/** An SDK client, connected (initialize done). */
export async function connectMcp(gatewayUrl: string, headers: Record<string, string> = {}): Promise<McpTestClient> {
  const c = mcpClient(gatewayUrl, headers);
  await c.client.connect(c.transport);
  return c;
}

/** The tool names a connected client is offered. */
export async function toolNames(c: McpTestClient): Promise<string[]> {
  return (await c.client.listTools()).tools.map((t) => t.name);
}

/** The JSON-RPC body of an initialize request. */
export function initializeMessage(id = 1): Record<string, unknown> {
  return {
    jsonrpc: '2.0',
    id,
    method: 'initialize',
    params: { protocolVersion: LATEST_PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'e2e-raw', version: '1.0.0' } },
  };
}

/**
 * One raw request to /mcp (POST with a JSON-RPC body, or GET/DELETE without). `headers` go
 * out as given; with `anonymous` no credentials are added (else call() adds the e2e admin key
 * unless the headers carry their own).
 */
export function mcpRaw(
  gatewayUrl: string,
  options: { method?: 'POST' | 'GET' | 'DELETE'; body?: unknown; headers?: Record<string, string>; anonymous?: boolean; sessionId?: string } = {},
): Promise<HttpResult> {
  const method = options.method ?? 'POST';
  const headers: Record<string, string> = {
    accept: method === 'GET' ? 'text/event-stream' : 'application/json, text/event-stream',
    ...(method === 'POST' ? { 'content-type': 'application/json' } : {}),
    ...(options.sessionId !== undefined ? { 'mcp-session-id': options.sessionId, 'mcp-protocol-version': LATEST_PROTOCOL_VERSION } : {}),
    ...options.headers,
  };
  return call(`${gatewayUrl}/mcp`, {
    method,
    headers,
    ...(options.anonymous ? { anonymous: true } : {}),
    ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
  });
}

/** The JSON-RPC messages of an /mcp answer, whether it came as JSON or as an SSE stream. */
export function mcpMessages(res: HttpResult): Array<Record<string, any>> {
  const type = String(res.headers['content-type'] ?? '');
  if (type.includes('text/event-stream')) {
    return res.text
      .split('\n')
      .filter((l) => l.startsWith('data:'))
      .map((l) => l.slice(5).trim())
      .filter((d) => d !== '')
      .map((d) => JSON.parse(d) as Record<string, any>);
  }
  const parsed = res.json();
  return Array.isArray(parsed) ? parsed : [parsed];
}
