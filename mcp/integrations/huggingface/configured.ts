import type { McpConfig } from '../../../src/config/index.js';
import { McpClientPool } from '../../clients/pool.js';
import type { UpstreamLog } from '../../clients/upstream.js';
import { ValidatorError } from './errors.js';
import { describeReferenceModel, HF_MCP_SERVER, type ReferenceModel } from './reference.js';

export { HF_MCP_SERVER } from './reference.js';

/*
 * The reference model described through the configured HuggingFace MCP server, for the CLI
 * (`model validate`, `model benchmark`), which has no running gateway and so no pool: a pool
 * with that one server, connected for the description and closed after it. The gateway's own
 * admin tool uses the gateway's pool instead (describeReferenceModel with it).
 */

const quiet: UpstreamLog = { info: () => {}, warn: () => {}, debug: () => {} };

/** Whether `mcp.servers.huggingface` is configured and enabled. */
export function huggingFaceMcpConfigured(mcp: Pick<McpConfig, 'servers'>, server = HF_MCP_SERVER): boolean {
  return mcp.servers[server]?.enabled === true;
}

/**
 * Describes `modelId` through the configured server; null when it is not configured.
 * Offline (cannot connect within `timeoutMs`): ValidatorError `network`, exit code 3.
 */
export async function describeWithConfiguredServer(
  mcp: Pick<McpConfig, 'servers'>,
  options: { readonly modelId: string; readonly timeoutMs: number; readonly server?: string },
): Promise<ReferenceModel | null> {
  const server = options.server ?? HF_MCP_SERVER;
  const config = mcp.servers[server];
  if (config === undefined || !config.enabled) return null;
  const pool = new McpClientPool({ servers: { [server]: config } }, { log: quiet });
  pool.start();
  try {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, options.timeoutMs);
    });
    await Promise.race([pool.settled(server), timedOut]);
    clearTimeout(timer);
    if (!pool.isReady(server)) {
      const reason = pool.server(server)?.lastError;
      throw new ValidatorError('network', `cannot reach the HuggingFace MCP server (mcp.servers.${server})${reason ? `: ${reason}` : ''}: check the network, a proxy, its url and HF_TOKEN`);
    }
    return await describeReferenceModel(pool, { server, modelId: options.modelId, timeoutMs: options.timeoutMs });
  } finally {
    await pool.close();
  }
}
