import { randomUUID } from 'node:crypto';
import type { JSONRPCMessage, Transport } from '@modelcontextprotocol/server';
import type { GatewayMetrics } from '../../src/metrics/registry.js';
import { argsHash, TOOL_NAMES, type ToolOutcome, type ToolReport } from './gateway-server.js';

/*
 * What the gateway sees of each MCP request. Every POST to /mcp carries exactly one JSON-RPC
 * message (batches are refused, ./http.ts), so one HTTP exchange is one request: its record
 * lives as long as the exchange and nothing of it outlives the response (no map of pending
 * requests to leak). For each exchange:
 *
 * - a `tools/call` is audited when it arrives (tool, principal, a hash of the arguments, never
 *   the arguments) and again when the exchange ends, with how it ended: `ok`, `refused`
 *   (scope or MFA), `failed` (unknown tool, invalid arguments, a tool error), or `cancelled`
 *   (the client closed the response stream, or sent notifications/cancelled: no answer went
 *   out). A cancelled call also says how the tool's own code ended (`toolEnded`): a shift
 *   applied after the client gave up is still on record. When the tool is still running as
 *   the exchange ends, the line waits for it (at most TOOL_WAIT_MS, then `running`);
 * - every request is counted in gateway_mcp_requests_total{method,tool,status}, the status
 *   read from the answer (`error`, `tool_error` for a result with isError, `ok`) or
 *   `cancelled`.
 */

/** Requests counted under their own name; method and tool names come from the client, so anything else is "other". */
const KNOWN_METHODS: ReadonlySet<string> = new Set([
  'initialize',
  'ping',
  'server/discover',
  'subscriptions/listen',
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

export type AuditResult = 'ok' | 'refused' | 'failed' | 'cancelled';

/** Longest an `ended` line of a cancelled call waits for its tool to end. */
export const TOOL_WAIT_MS = 60_000;

/** One audit line: `arrived` when the call comes in, `ended` when its exchange is over. */
export interface McpAuditEntry {
  readonly phase: 'arrived' | 'ended';
  /** Ties the two lines of one call together. */
  readonly call: string;
  readonly tool: string;
  /** The subject of the request's own credential ('anonymous' without one). */
  readonly principal: string;
  readonly argsHash: string;
  readonly era: 'modern' | 'legacy';
  /** `ended` lines: how the call ended for the client. */
  readonly result?: AuditResult;
  /** `ended` lines of a cancelled call that reached its tool: how the tool's code ended (`running`: not within TOOL_WAIT_MS). */
  readonly toolEnded?: ToolOutcome | 'running';
  readonly durationMs?: number;
  /** A federated tool: the upstream MCP server it called (mcp.servers.<name>). */
  readonly server?: string;
}

export interface ExchangeOptions {
  readonly metrics: Pick<GatewayMetrics, 'mcpRequests'>;
  readonly audit: (entry: McpAuditEntry) => void;
  readonly principal: string | null;
  readonly era: 'modern' | 'legacy';
  readonly clock?: () => number;
  /** The upstream server of a federated tool (the `arrived` line names it too). */
  readonly serverOf?: (tool: string) => string | undefined;
}

type Answer = { readonly error?: unknown; readonly result?: { readonly isError?: unknown } };

/** The one JSON-RPC message of an HTTP exchange, as far as observing it goes. */
interface Incoming {
  readonly id?: unknown;
  readonly method?: unknown;
  readonly params?: { readonly name?: unknown; readonly arguments?: unknown };
}

export class Exchange implements ToolReport {
  readonly method: string;
  /** The request id (undefined for a notification or a response). */
  readonly id: string | number | undefined;
  /** The tool name as called (tools/call), for the audit line (which has no cardinality limit). */
  readonly tool: string;
  readonly #options: ExchangeOptions;
  readonly #call: string;
  readonly #argsHash: string;
  readonly #started: number;
  #answer: Answer | undefined;
  #toolStarted = false;
  #toolEnded: ToolOutcome | undefined;
  #server: string | undefined;
  #finished = false;
  /** The `ended` line of a cancelled call, waiting for its tool to end. */
  #pendingLine: { line: McpAuditEntry; timer: NodeJS.Timeout } | undefined;

  constructor(message: unknown, options: ExchangeOptions) {
    const m = (message ?? {}) as Incoming;
    this.#options = options;
    this.method = typeof m.method === 'string' ? m.method : '';
    this.id = typeof m.id === 'string' || typeof m.id === 'number' ? m.id : undefined;
    this.tool = this.method === 'tools/call' && typeof m.params?.name === 'string' ? m.params.name.slice(0, 64) : '';
    this.#call = randomUUID();
    this.#argsHash = this.isToolCall ? argsHash(m.params?.arguments) : '';
    this.#started = (options.clock ?? performance.now.bind(performance))();
    if (this.isToolCall) this.#server = options.serverOf?.(this.tool);
    if (this.isToolCall) options.audit({ ...this.#line('arrived') });
  }

  /** A request (not a notification or a response) of a tools/call. */
  get isToolCall(): boolean {
    return this.method === 'tools/call' && this.id !== undefined;
  }

  get answered(): boolean {
    return this.#answer !== undefined;
  }

  /** From the request's server instance: the tool's own code starts. */
  toolStarted(): void {
    this.#toolStarted = true;
  }

  /** From the request's server instance: the tool is federated, from this upstream server. */
  toolServer(server: string): void {
    this.#server = server;
  }

  /** From the request's server instance: how the tool's own code ended. */
  toolEnded(outcome: ToolOutcome): void {
    this.#toolEnded ??= outcome;
    const pending = this.#pendingLine;
    if (pending === undefined) return;
    this.#pendingLine = undefined;
    clearTimeout(pending.timer);
    this.#options.audit({ ...pending.line, toolEnded: outcome });
  }

  /** The answer to this exchange's request went out (observed on the transport, or made by the gateway). */
  answer(message: Answer): void {
    this.#answer ??= message;
  }

  /**
   * Watch what the request's server instance sends: the answer to this exchange's request is
   * recorded when it goes out. Installed before the instance connects, so it sees what the
   * protocol layer sends (the SDK's own refusals included).
   */
  observe(transport: Transport): void {
    const send = transport.send.bind(transport);
    transport.send = (message: JSONRPCMessage, options) => {
      const m = message as { id?: unknown; method?: unknown } & Answer;
      if (this.id !== undefined && m.method === undefined && m.id === this.id) this.answer(m);
      return send(message, options);
    };
  }

  /** The HTTP exchange is over (its response ended or the client went away): count and audit once. */
  finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    const answer = this.#answer;
    const status = this.id === undefined ? 'ok' : answer === undefined ? 'cancelled' : answer.error !== undefined ? 'error' : answer.result?.isError === true ? 'tool_error' : 'ok';
    const method = KNOWN_METHODS.has(this.method) ? this.method : 'other';
    const tool = this.tool === '' || TOOL_NAMES.has(this.tool) ? this.tool : 'other';
    this.#options.metrics.mcpRequests.inc({ method, tool, status });
    if (!this.isToolCall) return;
    const result: AuditResult =
      answer === undefined ? 'cancelled' : this.#toolEnded === 'refused' ? 'refused' : status === 'ok' ? 'ok' : 'failed';
    const durationMs = Math.round(((this.#options.clock ?? performance.now.bind(performance))() - this.#started) * 10) / 10;
    const line: McpAuditEntry = { ...this.#line('ended'), result, durationMs };
    if (result !== 'cancelled' || !this.#toolStarted) return this.#options.audit(line);
    if (this.#toolEnded !== undefined) return this.#options.audit({ ...line, toolEnded: this.#toolEnded });
    // Cancelled while the tool runs: say how it ended once it has.
    const timer = setTimeout(() => {
      this.#pendingLine = undefined;
      this.#options.audit({ ...line, toolEnded: 'running' });
    }, TOOL_WAIT_MS);
    timer.unref();
    this.#pendingLine = { line, timer };
  }

  #line(phase: 'arrived' | 'ended'): McpAuditEntry {
    return {
      phase,
      call: this.#call,
      tool: this.tool,
      principal: this.#options.principal ?? 'anonymous',
      argsHash: this.#argsHash,
      era: this.#options.era,
      ...(this.#server !== undefined ? { server: this.#server } : {}),
    };
  }
}
