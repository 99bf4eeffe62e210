import type { CallToolResult } from '@modelcontextprotocol/client';

/*
 * What the rest of the gateway needs from the pool of upstream MCP servers (mcp.servers.<name>):
 * the integrations (Memory, Sequential Thinking, HuggingFace, GitHub tracking) call tools of a
 * named server through its one supervised connection and never wait for it to come up.
 * The pool (./pool.ts) implements it; tests may implement it over a real server they start.
 */

/** Where a configured upstream server stands. */
export type UpstreamState = 'disabled' | 'connecting' | 'ready' | 'down';

export interface UpstreamCallOptions {
  /** Cancels the call; the pool sends notifications/cancelled upstream. */
  signal?: AbortSignal;
  /** Deadline for this call; default: the server's timeoutMs. */
  timeoutMs?: number;
  /** Progress notifications of the upstream call. */
  onprogress?: (progress: { progress: number; total?: number; message?: string }) => void;
}

export interface UpstreamToolCaller {
  /** Whether `server` is configured, enabled and connected now. */
  isReady(server: string): boolean;
  /**
   * Calls `tool` on `server`. Rejects at once with UpstreamUnavailableError when the server is
   * not ready or its breaker is open (callers in the background skip or queue; nothing waits for
   * a connection). A tool that reports a failure resolves with `isError: true`.
   */
  callTool(server: string, tool: string, args: Record<string, unknown>, options?: UpstreamCallOptions): Promise<CallToolResult>;
}

/** The server is unknown, disabled, not connected, or its breaker is open. */
export class UpstreamUnavailableError extends Error {
  override readonly name = 'UpstreamUnavailableError';
  constructor(
    readonly server: string,
    readonly reason: string,
  ) {
    super(`MCP server "${server}" is unavailable: ${reason}`);
  }
}
