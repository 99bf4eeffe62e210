import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  Client,
  StreamableHTTPClientTransport,
  type ClientCapabilities,
  type ClientOptions,
  type Transport,
  type VersionNegotiationOptions,
} from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';

/** Re-exported for ./upstream.ts, which loads this module (and the SDK) with its first connection. */
export { ProtocolError } from '@modelcontextprotocol/client';
import type { McpServerTransport } from '../../src/config/index.js';
import { GATEWAY_VERSION } from '../../src/version.js';

/*
 * How the gateway builds one MCP client connection, shared by the pool (./pool.ts) and by
 * `unified-gateway mcp probe` (src/cli/mcp-probe.ts): the transport for a configured server
 * (stdio through the watchdog, or Streamable HTTP with the server's own headers) and a v2 SDK
 * Client negotiating 2026-07-28 or 2025-11-25.
 */

/** Protocol revisions: `auto` probes with server/discover and falls back to initialize (2025-11-25). */
export type UpstreamVersionChoice = 'auto' | '2026-07-28' | '2025-11-25';

export function versionNegotiation(choice: UpstreamVersionChoice, probeTimeoutMs: number): VersionNegotiationOptions {
  if (choice === '2025-11-25') return { mode: 'legacy' };
  if (choice === '2026-07-28') return { mode: { pin: '2026-07-28' } };
  return { mode: 'auto', probe: { timeoutMs: probeTimeoutMs } };
}

/** The watchdog script next to this module: .js when built, .ts when run from source (tests, with Node's type stripping). */
export function watchdogPath(): string {
  const js = fileURLToPath(new URL('./watchdog.js', import.meta.url));
  return existsSync(js) ? js : fileURLToPath(new URL('./watchdog.ts', import.meta.url));
}

/**
 * The transport of a configured server. A stdio server runs under the watchdog (./watchdog.ts:
 * it dies with the gateway, also on SIGKILL) with the project's own Node, its stderr piped to
 * the caller; its environment is exactly the configured one (the config adds PATH/HOME-like
 * basics; the SDK adds its own short list of the same kind), never the gateway's secrets.
 */
export function createTransport(t: McpServerTransport, options: { readonly supervised?: boolean; readonly fetch?: typeof fetch } = {}): Transport & { readonly stderr?: NodeJS.ReadableStream | null } {
  if (t.kind === 'stdio') {
    const supervised = options.supervised ?? true;
    return new StdioClientTransport({
      command: supervised ? process.execPath : t.command,
      args: supervised ? [watchdogPath(), t.command, ...t.args] : [...t.args],
      env: { ...t.env },
      ...(t.cwd !== undefined ? { cwd: t.cwd } : {}),
      stderr: 'pipe',
    }) as Transport & { readonly stderr: NodeJS.ReadableStream | null };
  }
  return new StreamableHTTPClientTransport(new URL(t.url), {
    requestInit: { headers: { ...t.headers } },
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
}

export interface ClientSetup {
  readonly version: UpstreamVersionChoice;
  readonly timeoutMs: number;
  /** Server-to-client requests this client answers (declared as capabilities). */
  readonly answers?: { readonly sampling?: boolean; readonly elicitation?: boolean; readonly roots?: boolean };
  readonly listChanged?: ClientOptions['listChanged'];
}

export function createClient(setup: ClientSetup): Client {
  const capabilities: ClientCapabilities = {
    ...(setup.answers?.sampling ? { sampling: {} } : {}),
    ...(setup.answers?.elicitation ? { elicitation: { form: {}, url: {} } } : {}),
    ...(setup.answers?.roots ? { roots: { listChanged: false } } : {}),
  };
  return new Client(
    { name: 'unified-gateway', version: GATEWAY_VERSION },
    {
      capabilities,
      versionNegotiation: versionNegotiation(setup.version, Math.min(setup.timeoutMs, 10_000)),
      ...(setup.listChanged ? { listChanged: setup.listChanged } : {}),
    },
  );
}
