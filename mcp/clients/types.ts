import type {
  CallToolResult,
  CreateMessageRequest,
  CreateMessageResult,
  ElicitRequest,
  ElicitResult,
  ListRootsRequest,
  ListRootsResult,
  Prompt,
  Resource,
  ResourceTemplateType,
  ServerCapabilities,
  Tool,
} from '@modelcontextprotocol/client';

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

// --- What federation (mcp/federation) and the admin/observability layers need (added with the pool) ---

export interface UpstreamCallOptions {
  /**
   * Opaque to the pool: who made this call (federation passes its agent session). Requests and
   * notifications the upstream sends while the call runs are handed to the handlers with it
   * (see UpstreamInitiatedContext.origins).
   */
  origin?: unknown;
  /** `_meta` to send with the call (e.g. a W3C traceparent); the pool adds its own progress token. */
  meta?: Record<string, unknown>;
}

/** A configured upstream server as federation, /healthz and list_mcp_servers see it. */
export interface UpstreamServerView {
  readonly name: string;
  readonly state: UpstreamState;
  readonly transport: 'stdio' | 'http';
  readonly preset?: string;
  /** Negotiated protocol revision (2026-07-28 or 2025-11-25) while connected. */
  readonly protocolVersion?: string;
  readonly serverInfo?: { readonly name: string; readonly version: string };
  /** The last connection or process failure (never a secret: env and header values are masked). */
  readonly lastError?: string;
  readonly toolCount: number;
  /** When the state last changed (ISO 8601). */
  readonly since: string;
  /** Connections made after the first (reconnects and restarts). */
  readonly reconnects: number;
  readonly breaker: 'closed' | 'half-open' | 'open';
  // What federation needs of the server's config:
  readonly federate: boolean;
  readonly toolPrefix: string;
  readonly tools: { readonly allow: readonly string[]; readonly deny: readonly string[] };
  readonly scopes: Readonly<Record<string, 'read' | 'write' | 'admin'>>;
  readonly rateLimit?: { readonly requests: number; readonly windowSeconds: number };
  readonly timeoutMs: number;
}

/** What an upstream offers, as the SDK types it (empty lists for what it does not support). */
export interface UpstreamCatalogue {
  readonly tools: readonly Tool[];
  readonly resources: readonly Resource[];
  readonly resourceTemplates: readonly ResourceTemplateType[];
  readonly prompts: readonly Prompt[];
  readonly capabilities: ServerCapabilities;
  readonly instructions?: string;
}

/** A server's state or catalogue changed (federation sends list_changed to its agents). */
export interface UpstreamChange {
  readonly server: string;
  readonly kind: 'state' | 'tools' | 'resources' | 'prompts';
}

/** Who an upstream-initiated request or notification belongs to. */
export interface UpstreamInitiatedContext {
  readonly server: string;
  /**
   * The `origin` of the call that caused it: exactly one when known (the call it was sent
   * within, or the only call in flight on that server), several when calls of different origins
   * were in flight on a transport that does not say which (stdio 2025), none when no call was.
   */
  readonly origins: readonly unknown[];
  /** Aborted when the upstream cancels its request or the connection ends. */
  readonly signal: AbortSignal;
}

/** Server-to-client requests the pool relays; the handler's answer (or error) goes back upstream. */
export interface UpstreamRequestHandlers {
  'sampling/createMessage': (params: CreateMessageRequest['params'], ctx: UpstreamInitiatedContext) => Promise<CreateMessageResult>;
  'elicitation/create': (params: ElicitRequest['params'], ctx: UpstreamInitiatedContext) => Promise<ElicitResult>;
  'roots/list': (params: ListRootsRequest['params'], ctx: UpstreamInitiatedContext) => Promise<ListRootsResult>;
}
export type UpstreamRequestMethod = keyof UpstreamRequestHandlers;

/** Notifications from an upstream the pool relays (logging messages, resources/updated, ...); progress goes to the call's onprogress. */
export interface UpstreamNotification {
  readonly method: string;
  readonly params?: Record<string, unknown>;
}
