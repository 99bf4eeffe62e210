import type { JSONRPCMessage, McpServer, Transport } from '@modelcontextprotocol/server';
import { createGatewayMcpServer, TOOL_NAMES, type GatewayMcpServerDeps, type McpRequestScope } from './gateway-server.js';

/*
 * Server instances of federated tool calls, reused across 2026-07-28 requests.
 *
 * /mcp serves every request with its own McpServer (./http.ts). For the hot path of federation,
 * a 2026-07-28 `tools/call` of an upstream tool, the instance a request needs depends only on
 * the tool it names and the federation catalogue (./reach.ts: nothing else is registered, and
 * nothing of the caller is read when registering): so such instances are kept and reused, one
 * request at a time each, instead of building a server, its handlers and its tool per call. The
 * request-bound parts (principal, client address, audit report, transport observer) are read
 * through a slot that points at the current request's scope; policy, rate limit, audit and the
 * SDK's own validation of each request run exactly as on a fresh instance.
 *
 * An instance goes back to the idle list only once its exchange is over (the SDK closed its
 * transport) AND its answer went out: then its tool handler has returned, and nothing of the
 * request can still read the slot. An exchange that ended without an answer (the client went
 * away while the upstream call ran) drops its instance. The idle lists are dropped when the
 * catalogue changes (an upstream came, went, or announced list_changed), so a reused instance
 * never offers a stale tool. Requests whose envelope lacks the client's info or capabilities
 * get a fresh instance: the SDK seeds an instance with those only when present.
 */

/** Idle instances kept per tool (more concurrent calls of one tool build fresh ones, as before). */
export const MAX_IDLE_PER_TOOL = 16;

interface Slot {
  scope: McpRequestScope;
  answered: boolean;
}

/** A message that answers a request (a result or an error, not a request or a notification). */
function isAnswer(message: JSONRPCMessage): boolean {
  return !('method' in message) && 'id' in message;
}

export interface McpServerFactoryStats {
  built: number;
  reused: number;
}

/**
 * The server factory of /mcp: `createGatewayMcpServer`, with instances of federated tool calls
 * reused as described above. `stats` counts the instances of that path built and reused (to
 * check the reuse happens, e.g. from a debugger or a profile).
 */
export function gatewayMcpServerFactory(deps: GatewayMcpServerDeps): { create: (scope: McpRequestScope) => McpServer; stats: McpServerFactoryStats } {
  const stats: McpServerFactoryStats = { built: 0, reused: 0 };
  const federation = deps.federation;
  if (federation === undefined) return { create: (scope) => createGatewayMcpServer(deps, scope), stats };
  let catalogue: object | undefined;
  let idle = new Map<string, McpServer[]>();
  const slots = new WeakMap<McpServer, Slot>();

  const create = (scope: McpRequestScope): McpServer => {
    const tool = scope.toolName;
    if (scope.era !== 'modern' || scope.method !== 'tools/call' || scope.identified !== true || tool === undefined || TOOL_NAMES.has(tool)) {
      return createGatewayMcpServer(deps, scope);
    }
    const current = federation.catalogue();
    if (!current.tools.has(tool)) return createGatewayMcpServer(deps, scope);
    if (current !== catalogue) {
      catalogue = current;
      idle = new Map();
    }
    const free = idle.get(tool)?.pop();
    if (free !== undefined) {
      const slot = slots.get(free)!;
      slot.scope = scope;
      slot.answered = false;
      stats.reused++;
      return free;
    }

    const slot: Slot = { scope, answered: false };
    const live: McpRequestScope = {
      era: 'modern',
      method: 'tools/call',
      toolName: tool,
      identified: true,
      get principal() {
        return slot.scope.principal;
      },
      get client() {
        return slot.scope.client;
      },
      get report() {
        return slot.scope.report;
      },
      onConnect: (transport: Transport) => {
        // The answer of this exchange going out: the handler has returned (see above).
        const send = transport.send.bind(transport);
        transport.send = (message, options) => {
          if (isAnswer(message)) slot.answered = true;
          return send(message, options);
        };
        slot.scope.onConnect?.(transport);
      },
    };
    const server = createGatewayMcpServer(deps, live);
    slots.set(server, slot);
    const built = current;
    // The SDK chains its own close hook of each exchange in front of this one.
    server.server.onclose = () => {
      if (!slot.answered || built !== catalogue) return;
      const list = idle.get(tool) ?? [];
      if (list.length >= MAX_IDLE_PER_TOOL || list.includes(server)) return;
      list.push(server);
      idle.set(tool, list);
    };
    stats.built++;
    return server;
  };
  return { create, stats };
}
