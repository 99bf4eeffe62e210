import type { FastifyInstance } from 'fastify';
import type { RouteAuthPolicy } from '../config/index.js';
import { GatewayError } from '../errors.js';
import '../auth/policy.js';
import '../auth/principal.js';
import { blockClientInput, unblockClientInput, type BlockedClientsService } from './blocked-clients.js';
import { McpServerAdminError, restartMcpServerInput, type McpServersService } from './mcp-servers-service.js';
import { legacyUsageInput, type LegacyUsage } from '../migration/legacy.js';
import { getTrafficSplitInput, shiftTrafficInput, TrafficSplitError, type TrafficService } from './traffic-service.js';

export interface AdminRoutesOptions {
  readonly blockedClients: BlockedClientsService;
  /** Traffic splits (absent: no /admin/traffic routes). */
  readonly traffic?: TrafficService;
  /** Upstream MCP servers (absent: no /admin/mcp-servers routes). */
  readonly mcpServers?: McpServersService;
  /** Admin scope, plus MFA when auth.requireMfaForAdmin. */
  readonly authPolicy: RouteAuthPolicy;
  /** Who still calls the legacy endpoints (src/migration/legacy.ts). */
  readonly legacyUsage?: LegacyUsage;
}

function invalid(issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }>): GatewayError {
  const first = issues[0];
  const where = first && first.path.length > 0 ? `${first.path.map(String).join('.')}: ` : '';
  return new GatewayError('GW_REQUEST_INVALID', `${where}${first?.message ?? 'invalid input'}`);
}

/**
 * REST admin endpoints under /admin: thin adapters over the admin services (the MCP tools
 * will call the same services).
 *
 *   GET    /admin/blocked-clients            clients blocked now
 *   POST   /admin/blocked-clients            {client, seconds, reason}: block by hand
 *   DELETE /admin/blocked-clients/:client    lift a block (404 when not blocked)
 *   GET    /admin/traffic[/:route]           traffic splits and their live weights
 *   PUT    /admin/traffic/:route             {stable, canary, reason, dry_run}: shift traffic
 *   GET    /admin/mcp-servers                upstream MCP servers: state, last error, tools, protocol
 *   POST   /admin/mcp-servers/:name/restart  reconnect one (a stdio server's process is restarted)
 *   GET    /admin/legacy-usage[?endpoint=]   who still calls the legacy endpoints, last seen
 */
export async function adminRoutes(app: FastifyInstance, opts: AdminRoutesOptions): Promise<void> {
  const { blockedClients, authPolicy } = opts;
  const config = { authPolicy };

  app.get('/admin/blocked-clients', { config }, async (_request, reply) => {
    return reply.header('cache-control', 'no-store').send(await blockedClients.list());
  });

  app.post('/admin/blocked-clients', { config, bodyLimit: 4096 }, async (request, reply) => {
    const parsed = blockClientInput.safeParse(request.body ?? {});
    if (!parsed.success) throw invalid(parsed.error.issues);
    return reply.code(201).header('cache-control', 'no-store').send(await blockedClients.block(parsed.data));
  });

  app.delete<{ Params: { client: string } }>('/admin/blocked-clients/:client', { config }, async (request, reply) => {
    const parsed = unblockClientInput.safeParse({ client: request.params.client });
    if (!parsed.success) throw invalid(parsed.error.issues);
    const result = await blockedClients.unblock(parsed.data);
    if (!result.unblocked) throw new GatewayError('GW_ADMIN_CLIENT_NOT_BLOCKED', `${result.client} is not blocked`);
    return reply.header('cache-control', 'no-store').send(result);
  });

  const traffic = opts.traffic;
  if (traffic !== undefined) {
    /** The service layer's refusals as catalogue errors. */
    const run = async <T>(fn: () => T | Promise<T>): Promise<T> => {
      try {
        return await fn();
      } catch (err) {
        if (!(err instanceof TrafficSplitError)) throw err;
        throw new GatewayError(err.kind === 'not-found' ? 'GW_ADMIN_SPLIT_NOT_FOUND' : 'GW_REQUEST_INVALID', err.message);
      }
    };
    app.get('/admin/traffic', { config }, async (_request, reply) => reply.header('cache-control', 'no-store').send(traffic.list()));
    app.get<{ Params: { route: string } }>('/admin/traffic/:route', { config }, async (request, reply) => {
      const parsed = getTrafficSplitInput.safeParse({ route: request.params.route });
      if (!parsed.success) throw invalid(parsed.error.issues);
      return reply.header('cache-control', 'no-store').send(await run(() => traffic.list(parsed.data)));
    });
    app.put<{ Params: { route: string } }>('/admin/traffic/:route', { config, bodyLimit: 4096 }, async (request, reply) => {
      const body = request.body !== null && typeof request.body === 'object' ? request.body : {};
      const parsed = shiftTrafficInput.safeParse({ ...body, route: request.params.route });
      if (!parsed.success) throw invalid(parsed.error.issues);
      const who = request.principal?.subject ?? 'anonymous';
      const result = await run(() => traffic.shift(parsed.data, who));
      request.log.info({ audit: { action: 'shift_traffic', principal: who, route: result.route, before: result.before, after: result.after, reason: result.reason, applied: result.applied } }, 'admin call');
      return reply.header('cache-control', 'no-store').send(result);
    });
  }

  const mcpServers = opts.mcpServers;
  if (mcpServers !== undefined) {
    app.get('/admin/mcp-servers', { config }, async (_request, reply) => reply.header('cache-control', 'no-store').send(mcpServers.list()));
    app.post<{ Params: { name: string } }>('/admin/mcp-servers/:name/restart', { config, bodyLimit: 1024 }, async (request, reply) => {
      const parsed = restartMcpServerInput.safeParse({ server: request.params.name });
      if (!parsed.success) throw new GatewayError('GW_ADMIN_MCP_SERVER_NOT_FOUND', `unknown MCP server "${request.params.name.slice(0, 64)}"`);
      const who = request.principal?.subject ?? 'anonymous';
      const audit = (result: string) => request.log.info({ audit: { action: 'restart_mcp_server', principal: who, server: parsed.data.server, result } }, 'admin call');
      try {
        const restarted = await mcpServers.restart(parsed.data);
        audit(restarted.server.state);
        return reply.header('cache-control', 'no-store').send(restarted);
      } catch (err) {
        if (!(err instanceof McpServerAdminError)) throw err;
        audit(`refused: ${err.kind}`);
        throw new GatewayError(err.kind === 'not-found' ? 'GW_ADMIN_MCP_SERVER_NOT_FOUND' : 'GW_ADMIN_MCP_SERVER_DISABLED', err.message);
      }
    });
  }
  const legacyUsage = opts.legacyUsage;
  if (legacyUsage !== undefined) {
    app.get<{ Querystring: { endpoint?: string } }>('/admin/legacy-usage', { config }, async (request, reply) => {
      const parsed = legacyUsageInput.safeParse(request.query.endpoint !== undefined ? { endpoint: request.query.endpoint } : {});
      if (!parsed.success) throw invalid(parsed.error.issues);
      return reply.header('cache-control', 'no-store').send(await legacyUsage.list(parsed.data));
    });
  }
}
