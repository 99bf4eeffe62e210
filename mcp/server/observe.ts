import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { CallToolResult, JSONRPCMessage, RequestId } from '@modelcontextprotocol/sdk/types.js';
import type { Principal } from '../../src/auth/principal.js';
import type { GatewayMetrics } from '../../src/metrics/registry.js';
import { requestPrincipal } from './auth.js';
import { argsHash, TOOL_NAMES, type McpAuditEntry } from './gateway-server.js';

/** Requests waiting for their answer at most (a client that never reads cannot grow the map). */
const MAX_PENDING = 1000;

/**
 * The MCP methods counted under their own name. Method and tool names come from the client:
 * anything else is counted as "other", so a client cannot grow the metric's label sets.
 */
const KNOWN_METHODS: ReadonlySet<string> = new Set([
  'initialize',
  'ping',
  'tools/list',
  'tools/call',
  'resources/list',
  'resources/read',
  'resources/templates/list',
  'resources/subscribe',
  'resources/unsubscribe',
  'prompts/list',
  'prompts/get',
  'logging/setLevel',
  'completion/complete',
]);

export interface SessionObserverOptions {
  readonly metrics: Pick<GatewayMetrics, 'mcpRequests'>;
  /** One line per tool call; absent: not audited (some unit tests). */
  readonly audit?: (entry: McpAuditEntry) => void;
  /** Ids of calls the server refused for scope or MFA (filled by gateway-server's tools). */
  readonly refused: Set<RequestId>;
  /** The tools a request's principal may not call, with why: not listed for it, and answered here. */
  readonly hidden: (principal: Principal | null) => ReadonlyMap<string, string>;
}

interface Pending {
  readonly method: string;
  /** The tool name as called (for the audit line, which has no cardinality limit). */
  readonly tool: string;
  readonly argsHash: string;
  /** The subject of the request's own credential ('anonymous' without one), for the audit line. */
  readonly principal: string;
  /** Tools hidden from that request (tools/list answers leave them out). */
  readonly hidden: ReadonlyMap<string, string>;
}

/**
 * What the gateway sees of every MCP request of one session, at the transport, so that it
 * covers what never reaches a tool's code too (arguments that fail validation, unknown or
 * hidden tools). Each message is judged by the principal of the HTTP request it came with
 * (`extra.authInfo`, see ./auth.ts), not by the session's initialize:
 * - every request is counted in gateway_mcp_requests_total{method,tool,status}, the status
 *   read from the answer (error, a tool result with isError, or ok);
 * - every tools/call is audited: principal, tool, a hash of the arguments (never the
 *   arguments), and ok / refused / failed;
 * - a call of a tool the request's credential lacks the scope for (an admin tool for a
 *   reader) is answered here with a tool error naming the missing scope, and tools/list
 *   answers leave such tools out.
 * Wraps the transport after the server connected, so it sees what the protocol layer sees.
 */
export function observeTransport(transport: Transport, opts: SessionObserverOptions): void {
  const pending = new Map<RequestId, Pending>();
  const send = transport.send.bind(transport);
  const receive = transport.onmessage;

  const finish = (request: Pending, id: RequestId, answer: { error?: unknown; result?: { isError?: unknown } }) => {
    const status = answer.error !== undefined ? 'error' : answer.result?.isError === true ? 'tool_error' : 'ok';
    const method = KNOWN_METHODS.has(request.method) ? request.method : 'other';
    const tool = request.tool === '' || TOOL_NAMES.has(request.tool) ? request.tool : 'other';
    opts.metrics.mcpRequests.inc({ method, tool, status });
    if (request.method !== 'tools/call') return;
    const refused = opts.refused.delete(id);
    opts.audit?.({ tool: request.tool, principal: request.principal, argsHash: request.argsHash, result: refused ? 'refused' : status === 'ok' ? 'ok' : 'failed' });
  };

  if (receive !== undefined) {
    transport.onmessage = (message, extra) => {
      const m = message as { id?: RequestId; method?: string; params?: { name?: unknown; arguments?: unknown } };
      if (m.id !== undefined && typeof m.method === 'string') {
        const isCall = m.method === 'tools/call';
        const tool = isCall && typeof m.params?.name === 'string' ? m.params.name.slice(0, 64) : '';
        const principal = requestPrincipal(extra);
        const hidden = opts.hidden(principal);
        const request: Pending = { method: m.method, tool, argsHash: isCall ? argsHash(m.params?.arguments) : '', principal: principal?.subject ?? 'anonymous', hidden };
        const why = isCall ? hidden.get(tool) : undefined;
        if (why !== undefined) {
          opts.refused.add(m.id);
          const result: CallToolResult = { content: [{ type: 'text', text: why }], isError: true };
          finish(request, m.id, { result });
          void send({ jsonrpc: '2.0', id: m.id, result } as JSONRPCMessage).catch(() => {});
          return;
        }
        if (pending.size < MAX_PENDING) pending.set(m.id, request);
      }
      receive.call(transport, message, extra);
    };
  }

  transport.send = (message: JSONRPCMessage, options) => {
    const m = message as { id?: RequestId; method?: string; result?: { isError?: unknown; tools?: unknown }; error?: unknown };
    if (m.id !== undefined && m.method === undefined) {
      const request = pending.get(m.id);
      if (request !== undefined) {
        pending.delete(m.id);
        finish(request, m.id, m);
        // Listing only: a call of a hidden tool is refused above, and by the tool itself.
        if (request.method === 'tools/list' && request.hidden.size > 0 && Array.isArray(m.result?.tools)) {
          const tools = (m.result.tools as Array<{ name?: unknown }>).filter((t) => typeof t.name !== 'string' || !request.hidden.has(t.name));
          return send({ ...message, result: { ...m.result, tools } } as JSONRPCMessage, options);
        }
      }
    }
    return send(message, options);
  };
}
