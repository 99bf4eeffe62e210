import { z } from 'zod';
import type { UpstreamServerView } from '../../mcp/clients/types.js';

/*
 * Upstream MCP servers in the admin service layer (mcp.servers, mcp/clients): one
 * implementation behind the REST admin API (/admin/mcp-servers), the MCP tool
 * list_mcp_servers, the resource gateway://mcp-servers and the admin tool restart_mcp_server.
 */

/** What the service needs of the pool (mcp/clients/pool.ts implements it). */
export interface McpServersSource {
  servers(): UpstreamServerView[];
  restart(server: string): Promise<UpstreamServerView>;
}

export const mcpServerSchema = z.object({
  name: z.string(),
  state: z.enum(['disabled', 'connecting', 'ready', 'down']),
  transport: z.enum(['stdio', 'http']),
  preset: z.string().optional(),
  protocolVersion: z.string().optional().describe('Negotiated MCP revision while connected'),
  serverInfo: z.object({ name: z.string(), version: z.string() }).optional(),
  lastError: z.string().optional(),
  toolCount: z.number().int(),
  since: z.string().describe('When the state last changed'),
  reconnects: z.number().int(),
  breaker: z.enum(['closed', 'half-open', 'open']),
  federate: z.boolean(),
  toolPrefix: z.string(),
});
export type McpServerSummary = z.infer<typeof mcpServerSchema>;

export const listMcpServersOutput = z.object({ servers: z.array(mcpServerSchema) });
export const restartMcpServerInput = z.strictObject({ server: z.string().min(1).max(63).regex(/^[a-z0-9-]+$/).describe('Name of a configured upstream MCP server (see list_mcp_servers)') });
export const restartMcpServerOutput = z.object({ server: mcpServerSchema });

/** A request the admin layer refuses: an unknown or disabled server. */
export class McpServerAdminError extends Error {
  override readonly name = 'McpServerAdminError';
  constructor(
    readonly kind: 'not-found' | 'disabled',
    message: string,
  ) {
    super(message);
  }
}

function summary(v: UpstreamServerView): McpServerSummary {
  return {
    name: v.name,
    state: v.state,
    transport: v.transport,
    ...(v.preset !== undefined ? { preset: v.preset } : {}),
    ...(v.protocolVersion !== undefined ? { protocolVersion: v.protocolVersion } : {}),
    ...(v.serverInfo !== undefined ? { serverInfo: v.serverInfo } : {}),
    ...(v.lastError !== undefined ? { lastError: v.lastError } : {}),
    toolCount: v.toolCount,
    since: v.since,
    reconnects: v.reconnects,
    breaker: v.breaker,
    federate: v.federate,
    toolPrefix: v.toolPrefix,
  };
}

export class McpServersService {
  readonly #source: McpServersSource;

  constructor(source: McpServersSource) {
    this.#source = source;
  }

  list(): z.infer<typeof listMcpServersOutput> {
    return { servers: this.#source.servers().map(summary) };
  }

  /** Drop the server's connection (a stdio child is stopped) and connect again; answers once the attempt settled. */
  async restart(input: z.infer<typeof restartMcpServerInput>): Promise<z.infer<typeof restartMcpServerOutput>> {
    const found = this.#source.servers().find((s) => s.name === input.server);
    if (found === undefined) throw new McpServerAdminError('not-found', `unknown MCP server "${input.server}"`);
    if (found.state === 'disabled') throw new McpServerAdminError('disabled', `MCP server "${input.server}" is disabled (mcp.servers.${input.server}.enabled)`);
    return { server: summary(await this.#source.restart(input.server)) };
  }
}
