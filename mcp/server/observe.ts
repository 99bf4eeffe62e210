import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { GatewayMetrics } from '../../src/metrics/registry.js';

/** Requests waiting for their answer at most (a client that never reads cannot grow the map). */
const MAX_PENDING = 1000;

/**
 * Count every MCP request a session answers in gateway_mcp_requests_total{method,tool,status}:
 * the incoming request is noted, and its status is read from the answer the server sends
 * (error, a tool result with isError, or ok). Wraps the transport after the server connected,
 * so it sees exactly what the protocol layer sees, for every method.
 */
export function observeTransport(transport: Transport, metrics: Pick<GatewayMetrics, 'mcpRequests'>): void {
  const pending = new Map<string | number, { method: string; tool: string }>();
  const receive = transport.onmessage;
  if (receive !== undefined) {
    transport.onmessage = (message, extra) => {
      const m = message as { id?: string | number; method?: string; params?: { name?: unknown } };
      if (m.id !== undefined && typeof m.method === 'string' && pending.size < MAX_PENDING) {
        const tool = m.method === 'tools/call' && typeof m.params?.name === 'string' ? m.params.name.slice(0, 64) : '';
        pending.set(m.id, { method: m.method, tool });
      }
      receive.call(transport, message, extra);
    };
  }
  const send = transport.send.bind(transport);
  transport.send = (message: JSONRPCMessage, options) => {
    const m = message as { id?: string | number; method?: string; result?: { isError?: unknown }; error?: unknown };
    if (m.id !== undefined && m.method === undefined) {
      const request = pending.get(m.id);
      if (request !== undefined) {
        pending.delete(m.id);
        const status = m.error !== undefined ? 'error' : m.result?.isError === true ? 'tool_error' : 'ok';
        metrics.mcpRequests.inc({ method: request.method, tool: request.tool, status });
      }
    }
    return send(message, options);
  };
}
