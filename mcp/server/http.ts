import { randomUUID } from 'node:crypto';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { RouteAuthPolicy } from '../../src/config/index.js';
import { GatewayError } from '../../src/errors.js';
import '../../src/server/route-config.js';

export interface McpHttpOptions {
  /** A fresh MCP server per session (an McpServer serves one transport), for the session's principal. */
  readonly createServer: (request: FastifyRequest) => McpServer;
  /** Open sessions at most; past it new sessions get 503 (memory stays bounded). */
  readonly maxSessions: number;
  readonly authPolicy: RouteAuthPolicy;
}

/**
 * MCP Streamable HTTP at /mcp on the gateway port: POST carries JSON-RPC messages, GET opens
 * the server-to-client SSE stream, DELETE ends a session (`Mcp-Session-Id`). The SDK's
 * transport does the protocol; this plugin keeps the sessions and puts the gateway's auth
 * stage in front (the route's auth policy).
 */
export async function mcpHttpPlugin(app: FastifyInstance, opts: McpHttpOptions): Promise<void> {
  const sessions = new Map<string, StreamableHTTPServerTransport>();

  const handle = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const header = request.headers['mcp-session-id'];
    const sessionId = typeof header === 'string' ? header : undefined;
    let transport = sessionId !== undefined ? sessions.get(sessionId) : undefined;
    if (transport === undefined) {
      if (sessionId !== undefined) throw new GatewayError('GW_MCP_SESSION_NOT_FOUND');
      if (request.method !== 'POST' || !isInitializeRequest(request.body)) throw new GatewayError('GW_MCP_SESSION_REQUIRED');
      if (sessions.size >= opts.maxSessions) throw new GatewayError('GW_MCP_TOO_MANY_SESSIONS', undefined, { headers: { 'retry-after': '30' } });
      const created: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => {
          sessions.set(id, created);
        },
        onsessionclosed: (id) => {
          sessions.delete(id);
        },
      });
      created.onclose = () => {
        if (created.sessionId !== undefined) sessions.delete(created.sessionId);
      };
      await opts.createServer(request).connect(created);
      transport = created;
    }
    // The transport writes the response itself (JSON or an SSE stream).
    reply.hijack();
    await transport.handleRequest(request.raw, reply.raw, request.body);
  };

  app.route({ method: ['GET', 'POST', 'DELETE'], url: '/mcp', config: { authPolicy: opts.authPolicy }, handler: handle });

  app.addHook('onClose', async () => {
    await Promise.allSettled([...sessions.values()].map((t) => t.close()));
    sessions.clear();
  });
}
