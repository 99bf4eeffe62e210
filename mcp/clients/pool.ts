import type {
  CallToolResult,
  CompleteRequest,
  CompleteResult,
  GetPromptRequest,
  GetPromptResult,
  ReadResourceRequest,
  ReadResourceResult,
} from '@modelcontextprotocol/client';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { McpConfig } from '../../src/config/index.js';
import { BreakerSet, DEFAULT_BREAKER_CONFIG } from '../../src/resilience/breaker.js';
import { EMPTY_CATALOGUE, Upstream, type CallStatus, type UpstreamHooks, type UpstreamLog } from './upstream.js';
import {
  UpstreamUnavailableError,
  type UpstreamCallOptions,
  type UpstreamCatalogue,
  type UpstreamChange,
  type UpstreamInitiatedContext,
  type UpstreamNotification,
  type UpstreamRequestHandlers,
  type UpstreamRequestMethod,
  type UpstreamServerView,
  type UpstreamToolCaller,
} from './types.js';

/*
 * The gateway's MCP clients: one supervised connection per configured upstream server
 * (mcp.servers.<name>), shared by every caller (integrations, federation, agents' sessions).
 * A lifecycle component (src/server/lifecycle.ts): start() returns at once and servers
 * connect in the background, so a server that is down never delays start-up or a request
 * (calls to it are refused at once with UpstreamUnavailableError); close() stops every
 * connection and stdio child.
 *
 * Federation (mcp/federation) reads servers() and catalogue(), forwards calls (callTool,
 * readResource, getPrompt, complete, subscribeResource), listens to onChange() for
 * list_changed, and registers the handlers of what upstreams initiate (sampling, elicitation,
 * roots: setRequestHandler, before start(); logging and resource updates: onNotification).
 */

export type { CallStatus } from './upstream.js';
export { UpstreamCallError } from './upstream.js';

export interface McpClientPoolOptions {
  readonly log: UpstreamLog;
  /** Where the pool's metrics go (gateway_mcp_upstream_*); none without. */
  readonly registry?: Registry;
  /** Reconnect backoff (tests shorten it). */
  readonly backoff?: UpstreamHooks['backoff'];
}

/** The pool's metrics; tool labels are bounded to the server's catalogue names (others: `other`). */
class PoolMetrics {
  readonly up: Gauge<'server'>;
  readonly calls: Counter<'server' | 'tool' | 'status'>;
  readonly duration: Histogram<'server' | 'status'>;

  constructor(registry: Registry) {
    const existing = registry.getSingleMetric('gateway_mcp_upstream_up');
    if (existing) registry.removeSingleMetric('gateway_mcp_upstream_up');
    this.up = new Gauge({ name: 'gateway_mcp_upstream_up', help: 'Whether the upstream MCP server is connected (1) or not (0); disabled servers are absent', labelNames: ['server'], registers: [registry] });
    this.calls = new Counter({
      name: 'gateway_mcp_upstream_calls_total',
      help: 'Tool calls to upstream MCP servers by server, tool (catalogue names, others "other") and status (ok, tool_error, error, timeout, cancelled, unavailable)',
      labelNames: ['server', 'tool', 'status'],
      registers: [registry],
    });
    this.duration = new Histogram({
      name: 'gateway_mcp_upstream_call_duration_seconds',
      help: 'Duration of tool calls to upstream MCP servers',
      labelNames: ['server', 'status'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    });
  }
}

export class McpClientPool implements UpstreamToolCaller {
  readonly #upstreams = new Map<string, Upstream>();
  readonly #listeners = new Set<(change: UpstreamChange) => void>();
  readonly #notificationListeners = new Set<(notification: UpstreamNotification, ctx: UpstreamInitiatedContext) => void>();
  readonly #handlers: Partial<UpstreamRequestHandlers> = {};
  readonly #breakers: BreakerSet;
  readonly #metrics: PoolMetrics | undefined;
  readonly #log: UpstreamLog;
  #started = false;

  constructor(config: Pick<McpConfig, 'servers'>, options: McpClientPoolOptions) {
    this.#log = options.log;
    this.#metrics = options.registry ? new PoolMetrics(options.registry) : undefined;
    this.#breakers = new BreakerSet(() => DEFAULT_BREAKER_CONFIG, { onStateChange: (b) => this.#emit({ server: b.service, kind: 'state' }) });
    for (const server of Object.values(config.servers)) {
      const key = {};
      const upstream: Upstream = new Upstream(server, {
        log: options.log,
        breaker: this.#breakers.get(key, server.name, server.name)!,
        onChange: (change) => this.#emit(change),
        handlers: () => this.#handlers,
        onNotification: (n, ctx) => {
          for (const l of this.#notificationListeners) l(n, ctx);
        },
        onCall: (tool, status, seconds) => this.#observe(upstream, tool, status, seconds),
        ...(options.backoff ? { backoff: options.backoff } : {}),
      });
      this.#upstreams.set(server.name, upstream);
      if (server.enabled) this.#metrics?.up.set({ server: server.name }, 0);
    }
  }

  #observe(upstream: Upstream, tool: string, status: CallStatus, seconds: number): void {
    if (!this.#metrics) return;
    const known = upstream.catalogue.tools.some((t) => t.name === tool);
    this.#metrics.calls.inc({ server: upstream.config.name, tool: known ? tool : 'other', status });
    if (status !== 'unavailable') this.#metrics.duration.observe({ server: upstream.config.name, status }, seconds);
  }

  #emit(change: UpstreamChange): void {
    const upstream = this.#upstreams.get(change.server);
    if (upstream && change.kind === 'state' && upstream.config.enabled) this.#metrics?.up.set({ server: change.server }, upstream.state === 'ready' ? 1 : 0);
    for (const listener of this.#listeners) {
      try {
        listener(change);
      } catch (err) {
        this.#log.warn({ server: change.server, err: String(err) }, 'mcp pool change listener failed');
      }
    }
  }

  #get(server: string): Upstream {
    const upstream = this.#upstreams.get(server);
    if (upstream === undefined) throw new UpstreamUnavailableError(server, 'not configured');
    return upstream;
  }

  /** Connect every enabled server in the background; returns at once. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    for (const upstream of this.#upstreams.values()) upstream.start();
  }

  /** Close every connection (stdio children stop; the watchdog makes sure of it). */
  async close(): Promise<void> {
    await Promise.all([...this.#upstreams.values()].map((u) => u.close()));
    this.#breakers.close();
    this.#listeners.clear();
    this.#notificationListeners.clear();
  }

  /** Every configured server (disabled ones too), in config order. */
  servers(): UpstreamServerView[] {
    return [...this.#upstreams.values()].map((u) => u.view());
  }

  server(name: string): UpstreamServerView | undefined {
    return this.#upstreams.get(name)?.view();
  }

  /** What the server offers now (empty while it is not connected). */
  catalogue(name: string): UpstreamCatalogue {
    return this.#upstreams.get(name)?.catalogue ?? EMPTY_CATALOGUE;
  }

  /** A server's state or catalogue changed. Returns the function that removes the listener. */
  onChange(listener: (change: UpstreamChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Logging messages and resources/updated from upstreams, with the origin of the call that caused them (when known). */
  onNotification(listener: (notification: UpstreamNotification, ctx: UpstreamInitiatedContext) => void): () => void {
    this.#notificationListeners.add(listener);
    return () => this.#notificationListeners.delete(listener);
  }

  /**
   * Answer a request upstreams send (sampling, elicitation, roots). Register before start():
   * the capability is declared when a server connects. Without a handler the capability is not
   * declared, so upstreams do not send it.
   */
  setRequestHandler<M extends UpstreamRequestMethod>(method: M, handler: UpstreamRequestHandlers[M]): void {
    (this.#handlers as Record<string, unknown>)[method] = handler;
  }

  isReady(server: string): boolean {
    return this.#upstreams.get(server)?.state === 'ready';
  }

  /** Stop the server's connection (and its stdio child) and connect again now. */
  async restart(server: string): Promise<UpstreamServerView> {
    const upstream = this.#get(server);
    await upstream.restart();
    return upstream.view();
  }

  /** Resolves when no connection attempt is in progress (tests, the probe). */
  async settled(server?: string): Promise<void> {
    const list = server !== undefined ? [this.#get(server)] : [...this.#upstreams.values()];
    await Promise.all(list.map((u) => u.settled()));
  }

  callTool(server: string, tool: string, args: Record<string, unknown>, options?: UpstreamCallOptions): Promise<CallToolResult> {
    try {
      return this.#get(server).callTool(tool, args, options);
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  readResource(server: string, params: ReadResourceRequest['params'], options?: UpstreamCallOptions): Promise<ReadResourceResult> {
    return this.#guard(() => this.#get(server).readResource(params, options));
  }

  getPrompt(server: string, params: GetPromptRequest['params'], options?: UpstreamCallOptions): Promise<GetPromptResult> {
    return this.#guard(() => this.#get(server).getPrompt(params, options));
  }

  complete(server: string, params: CompleteRequest['params'], options?: UpstreamCallOptions): Promise<CompleteResult> {
    return this.#guard(() => this.#get(server).complete(params, options));
  }

  subscribeResource(server: string, uri: string, options?: UpstreamCallOptions): Promise<void> {
    return this.#guard(() => this.#get(server).subscribeResource(uri, options));
  }

  unsubscribeResource(server: string, uri: string, options?: UpstreamCallOptions): Promise<void> {
    return this.#guard(() => this.#get(server).unsubscribeResource(uri, options));
  }

  /** Synchronous refusals (not configured, not ready) become rejections. */
  async #guard<R>(run: () => Promise<R>): Promise<R> {
    return run();
  }

  /** Live connections across servers (one per connected server; the bench and tests check it). */
  get connectionCount(): number {
    let n = 0;
    for (const u of this.#upstreams.values()) n += u.connectionCount;
    return n;
  }
}
