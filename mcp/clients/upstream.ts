import { AsyncLocalStorage } from 'node:async_hooks';
import { mkdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { dirname } from 'node:path';
import type {
  CallToolResult,
  Client,
  CompleteRequest,
  CompleteResult,
  GetPromptRequest,
  GetPromptResult,
  ReadResourceRequest,
  ReadResourceResult,
  RequestOptions,
  Transport,
} from '@modelcontextprotocol/client';
import type { McpServerConfig } from '../../src/config/index.js';
import { Uncounted, type UpstreamBreaker } from '../../src/resilience/breaker.js';
import type * as ConnectModule from './connect.js';
import {
  UpstreamUnavailableError,
  type UpstreamCallOptions,
  type UpstreamCatalogue,
  type UpstreamChange,
  type UpstreamInitiatedContext,
  type UpstreamNotification,
  type UpstreamRequestHandlers,
  type UpstreamServerView,
  type UpstreamState,
} from './types.js';

/*
 * One configured upstream MCP server and its one connection, shared by every caller:
 * connects in the background, keeps its catalogue (tools, resources, templates, prompts)
 * fresh on list_changed, reconnects with exponential backoff and full jitter after a failure
 * or a lost connection (a stdio child that exits is restarted the same way), sends every call
 * through its breaker with a deadline (the SDK sends notifications/cancelled upstream when the
 * deadline passes or the caller aborts), and relays what the upstream initiates (sampling,
 * elicitation, roots, logging) to the pool's handlers with the origin of the call that caused it.
 */

/**
 * The MCP client SDK (./connect.js and @modelcontextprotocol/client), loaded with the first
 * connection: a gateway without mcp.servers never loads it (~3 MiB of heap it would otherwise
 * carry and mark on every full GC).
 */
let clientSdk: typeof ConnectModule | undefined;
async function loadClientSdk(): Promise<typeof ConnectModule> {
  clientSdk ??= await import('./connect.js');
  return clientSdk;
}
/** An MCP protocol error from the upstream (only clients made after the SDK loaded can throw one). */
function isProtocolError(err: unknown): err is InstanceType<typeof ConnectModule.ProtocolError> {
  return clientSdk !== undefined && err instanceof clientSdk.ProtocolError;
}

export const EMPTY_CATALOGUE: UpstreamCatalogue = Object.freeze({ tools: [], resources: [], resourceTemplates: [], prompts: [], capabilities: {} });

export interface UpstreamLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

export interface UpstreamHooks {
  readonly log: UpstreamLog;
  readonly breaker: UpstreamBreaker;
  readonly onChange: (change: UpstreamChange) => void;
  readonly handlers: () => Partial<UpstreamRequestHandlers>;
  readonly onNotification: (notification: UpstreamNotification, ctx: UpstreamInitiatedContext) => void;
  /** Per finished call: status ok | tool_error | error | timeout | cancelled | unavailable. */
  readonly onCall: (tool: string, status: CallStatus, seconds: number) => void;
  /** Backoff: first delay, cap, and the random source of the jitter (tests inject them). */
  readonly backoff?: { readonly baseMs?: number; readonly maxMs?: number; readonly random?: () => number };
  /** Streamable HTTP servers are pinged this often while connected (no connection end tells they went away); default 15 s. */
  readonly pingIntervalMs?: number;
}

const DEFAULT_PING_INTERVAL_MS = 15_000;

export type CallStatus = 'ok' | 'tool_error' | 'error' | 'timeout' | 'cancelled' | 'unavailable';

/** A call that failed after it was sent: the connection was lost, the deadline passed, or the upstream answered with a protocol error. */
export class UpstreamCallError extends Error {
  override readonly name = 'UpstreamCallError';
  constructor(
    readonly server: string,
    readonly reason: 'timeout' | 'cancelled' | 'connection_lost' | 'protocol',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`MCP server "${server}": ${message}`, options);
  }
}

interface InFlight {
  readonly origin: unknown;
}

const callContext = new AsyncLocalStorage<InFlight>();

/** Hides the values of the server's env and headers (its secrets) in text that may be logged or shown. */
function masker(config: McpServerConfig): (text: string) => string {
  const t = config.transport;
  const values = Object.values(t.kind === 'stdio' ? t.env : t.headers)
    .flatMap((v) => [v, ...v.split(/\s+/)])
    .filter((v) => v.length >= 6 && !v.startsWith('/'));
  if (values.length === 0) return (text) => text;
  return (text) => {
    let out = text;
    for (const v of values) out = out.split(v).join('***');
    return out;
  };
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class Upstream {
  readonly config: McpServerConfig;
  readonly #hooks: UpstreamHooks;
  readonly #mask: (text: string) => string;
  #state: UpstreamState;
  #since = Date.now();
  #client: Client | undefined;
  #transport: Transport | undefined;
  #catalogue: UpstreamCatalogue = EMPTY_CATALOGUE;
  #lastError: string | undefined;
  #connections = 0;
  #failures = 0;
  #timer: NodeJS.Timeout | undefined;
  /** Bumped for every connection attempt: callbacks of an older connection are ignored. */
  #generation = 0;
  #closed = false;
  #connecting: Promise<void> | undefined;
  readonly #inflight = new Set<InFlight>();

  constructor(config: McpServerConfig, hooks: UpstreamHooks) {
    this.config = config;
    this.#hooks = hooks;
    this.#mask = masker(config);
    this.#state = config.enabled ? 'connecting' : 'disabled';
  }

  get state(): UpstreamState {
    return this.#state;
  }

  get catalogue(): UpstreamCatalogue {
    return this.#catalogue;
  }

  /** Connections in flight (tests: one per server however many callers). */
  get connectionCount(): number {
    return this.#client === undefined ? 0 : 1;
  }

  view(): UpstreamServerView {
    const c = this.config;
    const client = this.#state === 'ready' ? this.#client : undefined;
    const info = client?.getServerVersion();
    return {
      name: c.name,
      state: this.#state,
      transport: c.transport.kind,
      ...(c.preset !== undefined ? { preset: c.preset } : {}),
      ...(client?.getNegotiatedProtocolVersion() !== undefined ? { protocolVersion: client.getNegotiatedProtocolVersion()! } : {}),
      ...(info !== undefined ? { serverInfo: { name: info.name, version: info.version } } : {}),
      ...(this.#lastError !== undefined ? { lastError: this.#lastError } : {}),
      toolCount: this.#catalogue.tools.length,
      since: new Date(this.#since).toISOString(),
      reconnects: Math.max(0, this.#connections - 1),
      breaker: this.#hooks.breaker.stateName,
      federate: c.federate,
      toolPrefix: c.toolPrefix,
      tools: c.tools,
      scopes: c.scopes,
      ...(c.rateLimit !== undefined ? { rateLimit: c.rateLimit } : {}),
      timeoutMs: c.timeoutMs,
    };
  }

  /** Start connecting in the background (never awaited by start-up). */
  start(): void {
    if (!this.config.enabled || this.#closed) return;
    void this.#connect();
  }

  /** Drop the connection (a stdio child is stopped) and connect again now. */
  async restart(): Promise<void> {
    if (!this.config.enabled || this.#closed) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#setState('connecting');
    await this.#disconnect();
    this.#failures = 0;
    await this.#connect();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#disconnect();
    if (this.#state !== 'disabled') this.#setState('down');
  }

  /** Resolves once the current connection attempt (if any) settles; tests and the probe wait on it. */
  async settled(): Promise<void> {
    await this.#connecting;
  }

  #setState(state: UpstreamState, error?: string): void {
    if (error !== undefined) this.#lastError = this.#mask(error);
    if (this.#state === state) return;
    this.#state = state;
    this.#since = Date.now();
    this.#hooks.onChange({ server: this.config.name, kind: 'state' });
  }

  #connect(): Promise<void> {
    const run = this.#connectOnce().finally(() => {
      if (this.#connecting === run) this.#connecting = undefined;
    });
    this.#connecting = run;
    return run;
  }

  async #connectOnce(): Promise<void> {
    const generation = ++this.#generation;
    const c = this.config;
    this.#setState('connecting');
    const handlers = this.#hooks.handlers();
    const { createClient, createTransport, ProtocolError } = await loadClientSdk();
    if (generation !== this.#generation) return;
    const client = createClient({
      version: c.protocolVersion,
      timeoutMs: c.timeoutMs,
      answers: { sampling: handlers['sampling/createMessage'] !== undefined, elicitation: handlers['elicitation/create'] !== undefined, roots: handlers['roots/list'] !== undefined },
      listChanged: {
        tools: { onChanged: (err, tools) => this.#listChanged(generation, 'tools', err, () => ({ tools: tools ?? [] })) },
        prompts: { onChanged: (err, prompts) => this.#listChanged(generation, 'prompts', err, () => ({ prompts: prompts ?? [] })) },
        resources: { onChanged: (err, resources) => void this.#resourcesChanged(generation, err, resources) },
      },
    });
    this.#relay(client, generation, ProtocolError);
    if (c.transport.kind === 'stdio' && c.preset === 'memory') {
      // memory keeps its file in mcp.dataDir (MEMORY_FILE_PATH); the directory must exist.
      const file = c.transport.env.MEMORY_FILE_PATH;
      if (file !== undefined) mkdirSync(dirname(file), { recursive: true });
    }
    const transport = createTransport(c.transport);
    this.#client = client;
    this.#transport = transport;
    this.#pipeStderr(transport);
    client.onclose = () => this.#lost(generation, 'connection closed');
    client.onerror = (err) => this.#hooks.log.debug({ server: c.name, err: this.#mask(errorText(err)) }, 'mcp upstream transport error');
    try {
      await client.connect(transport, { timeout: c.timeoutMs });
      if (generation !== this.#generation) return;
      this.#catalogue = await this.#fetchCatalogue(client);
      if (generation !== this.#generation) return;
      this.#connections++;
      this.#failures = 0;
      // lastError stays: the last failure is worth seeing after the recovery too (with `since`).
      this.#hooks.log.info(
        { server: c.name, protocolVersion: client.getNegotiatedProtocolVersion(), tools: this.#catalogue.tools.length },
        'mcp upstream connected',
      );
      this.#setState('ready');
      if (c.transport.kind === 'http') this.#startPings(client, generation);
      this.#hooks.onChange({ server: c.name, kind: 'tools' });
    } catch (err) {
      if (generation !== this.#generation) return;
      this.#hooks.log.warn({ server: c.name, err: this.#mask(errorText(err)) }, 'mcp upstream connection failed');
      await this.#failed(generation, `connect failed: ${errorText(err)}`);
    }
  }

  /** Each line of a stdio child's stderr goes to the log, tagged with the server, secrets masked. */
  #pipeStderr(transport: Transport & { readonly stderr?: NodeJS.ReadableStream | null }): void {
    const stderr = transport.stderr;
    if (!stderr) return;
    const lines = createInterface({ input: stderr, crlfDelay: Infinity });
    lines.on('line', (line) => {
      if (line.trim() !== '') this.#hooks.log.info({ server: this.config.name, stderr: this.#mask(line.slice(0, 4000)) }, 'mcp upstream stderr');
    });
    lines.on('error', () => {});
  }

  async #fetchCatalogue(client: Client): Promise<UpstreamCatalogue> {
    const caps = client.getServerCapabilities() ?? {};
    const options: RequestOptions = { timeout: this.config.timeoutMs };
    const [tools, resources, resourceTemplates, prompts] = await Promise.all([
      caps.tools ? client.listTools(undefined, { ...options, cacheMode: 'refresh' }).then((r) => r.tools) : [],
      caps.resources ? client.listResources(undefined, { ...options, cacheMode: 'refresh' }).then((r) => r.resources) : [],
      caps.resources ? client.listResourceTemplates(undefined, { ...options, cacheMode: 'refresh' }).then((r) => r.resourceTemplates) : [],
      caps.prompts ? client.listPrompts(undefined, { ...options, cacheMode: 'refresh' }).then((r) => r.prompts) : [],
    ]);
    const instructions = client.getInstructions();
    return { tools, resources, resourceTemplates, prompts, capabilities: caps, ...(instructions !== undefined ? { instructions } : {}) };
  }

  #listChanged(generation: number, kind: 'tools' | 'prompts', err: Error | null, patch: () => Partial<UpstreamCatalogue>): void {
    if (generation !== this.#generation || this.#state !== 'ready') return;
    if (err !== null) {
      this.#hooks.log.warn({ server: this.config.name, err: this.#mask(errorText(err)) }, `mcp upstream ${kind} refresh failed`);
      return;
    }
    this.#catalogue = { ...this.#catalogue, ...patch() };
    this.#hooks.onChange({ server: this.config.name, kind });
  }

  async #resourcesChanged(generation: number, err: Error | null, resources: UpstreamCatalogue['resources'] | null): Promise<void> {
    if (generation !== this.#generation || this.#state !== 'ready' || err !== null) {
      if (err !== null) this.#hooks.log.warn({ server: this.config.name, err: this.#mask(errorText(err)) }, 'mcp upstream resources refresh failed');
      return;
    }
    // Templates have no list_changed of their own: they change with the resources.
    const client = this.#client;
    const templates = client ? await client.listResourceTemplates(undefined, { timeout: this.config.timeoutMs, cacheMode: 'refresh' }).then((r) => r.resourceTemplates, () => this.#catalogue.resourceTemplates) : [];
    if (generation !== this.#generation) return;
    this.#catalogue = { ...this.#catalogue, resources: resources ?? [], resourceTemplates: templates };
    this.#hooks.onChange({ server: this.config.name, kind: 'resources' });
  }

  /** Who a request or notification from the upstream belongs to: the call it arrived within, else the calls in flight. */
  #context(signal: AbortSignal): UpstreamInitiatedContext {
    const own = callContext.getStore();
    const origins = own !== undefined && this.#inflight.has(own) ? [own.origin] : [...new Set([...this.#inflight].map((f) => f.origin))];
    return { server: this.config.name, origins, signal };
  }

  #relay(client: Client, generation: number, ProtocolError: typeof ConnectModule.ProtocolError): void {
    const handlers = this.#hooks.handlers();
    const noHandler = (method: string) => new ProtocolError(-32601, `The gateway does not relay ${method} from this server`);
    if (handlers['sampling/createMessage']) {
      client.setRequestHandler('sampling/createMessage', (request, ctx) => {
        const h = this.#hooks.handlers()['sampling/createMessage'];
        if (!h) throw noHandler(request.method);
        return h(request.params, this.#context(ctx.mcpReq.signal));
      });
    }
    if (handlers['elicitation/create']) {
      client.setRequestHandler('elicitation/create', (request, ctx) => {
        const h = this.#hooks.handlers()['elicitation/create'];
        if (!h) throw noHandler(request.method);
        return h(request.params, this.#context(ctx.mcpReq.signal));
      });
    }
    if (handlers['roots/list']) {
      client.setRequestHandler('roots/list', (request, ctx) => {
        const h = this.#hooks.handlers()['roots/list'];
        if (!h) throw noHandler(request.method);
        return h(request.params, this.#context(ctx.mcpReq.signal));
      });
    }
    const notify = (n: { method: string; params?: unknown }) => {
      if (generation !== this.#generation) return;
      const params = typeof n.params === 'object' && n.params !== null ? (n.params as Record<string, unknown>) : undefined;
      this.#hooks.onNotification({ method: n.method, ...(params ? { params } : {}) }, this.#context(new AbortController().signal));
    };
    client.setNotificationHandler('notifications/message', notify);
    client.setNotificationHandler('notifications/resources/updated', notify);
  }

  #lost(generation: number, reason: string): void {
    if (generation !== this.#generation || this.#closed) return;
    this.#hooks.log.warn({ server: this.config.name, reason }, 'mcp upstream connection lost');
    void this.#failed(generation, reason);
  }

  async #failed(generation: number, reason: string): Promise<void> {
    if (generation !== this.#generation) return;
    this.#generation++; // late callbacks of this connection are ignored from now on
    const had = this.#catalogue.tools.length > 0 || this.#catalogue.resources.length > 0 || this.#catalogue.prompts.length > 0;
    this.#catalogue = EMPTY_CATALOGUE;
    this.#setState('down', reason);
    if (had) this.#hooks.onChange({ server: this.config.name, kind: 'tools' });
    await this.#dropClient();
    if (!this.#closed) this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    const b = this.#hooks.backoff ?? {};
    const base = b.baseMs ?? 500;
    const max = b.maxMs ?? 30_000;
    const random = b.random ?? Math.random;
    const ceiling = Math.min(max, base * 2 ** Math.min(this.#failures, 16));
    this.#failures++;
    // Half fixed, half full jitter: never a thundering herd, never a zero delay.
    const delay = Math.round(ceiling / 2 + random() * (ceiling / 2));
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (!this.#closed) void this.#connect();
    }, delay);
    this.#timer.unref();
  }

  #pingTimer: NodeJS.Timeout | undefined;

  /** A failed ping marks an HTTP server down (and reconnects with the backoff), as a stdio exit does. */
  #startPings(client: Client, generation: number): void {
    clearInterval(this.#pingTimer);
    this.#pingTimer = setInterval(() => {
      if (generation !== this.#generation) return clearInterval(this.#pingTimer);
      client.ping({ timeout: Math.min(this.config.timeoutMs, 5000) }).catch((err: unknown) => this.#lost(generation, `ping failed: ${errorText(err)}`));
    }, this.#hooks.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS);
    this.#pingTimer.unref();
  }

  async #dropClient(): Promise<void> {
    clearInterval(this.#pingTimer);
    this.#pingTimer = undefined;
    const client = this.#client;
    this.#client = undefined;
    this.#transport = undefined;
    if (client) {
      client.onclose = undefined;
      await client.close().catch(() => {});
    }
  }

  async #disconnect(): Promise<void> {
    this.#generation++;
    const had = this.#catalogue !== EMPTY_CATALOGUE;
    this.#catalogue = EMPTY_CATALOGUE;
    await this.#dropClient();
    if (had) this.#hooks.onChange({ server: this.config.name, kind: 'tools' });
  }

  #ready(): Client {
    const client = this.#client;
    if (this.#state === 'disabled') throw new UpstreamUnavailableError(this.config.name, 'disabled');
    if (this.#state !== 'ready' || client === undefined) throw new UpstreamUnavailableError(this.config.name, `not connected (${this.#state})${this.#lastError ? `: ${this.#lastError}` : ''}`);
    if (this.#hooks.breaker.stateName === 'open') throw new UpstreamUnavailableError(this.config.name, 'its circuit breaker is open');
    return client;
  }

  /**
   * One request through the breaker with the call's deadline. A failure of the connection or
   * a missed deadline counts for the breaker; an upstream's protocol error (it answered) and the
   * caller's own cancellation do not.
   */
  async #send<R>(client: Client, options: UpstreamCallOptions, run: (client: Client, opts: RequestOptions) => Promise<R>): Promise<R> {
    const timeoutMs = options.timeoutMs ?? this.config.timeoutMs;
    const opts: RequestOptions = {
      timeout: timeoutMs,
      maxTotalTimeout: timeoutMs,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onprogress ? { onprogress: options.onprogress } : {}),
      ...(options.inputRequired ? { allowInputRequired: true } : {}),
    };
    const record: InFlight = { origin: options.origin };
    const generation = this.#generation;
    this.#inflight.add(record);
    try {
      return await this.#hooks.breaker.fire(
        async () => {
          try {
            return await callContext.run(record, () => run(client, opts));
          } catch (err) {
            if (options.signal?.aborted || isProtocolError(err)) throw new Uncounted(err);
            throw err;
          }
        },
        undefined,
        undefined,
      );
    } catch (err) {
      const cause = err instanceof Uncounted ? err.error : err;
      if (options.signal?.aborted) throw new UpstreamCallError(this.config.name, 'cancelled', 'the call was cancelled', { cause });
      if (isProtocolError(cause) && cause.code !== -32001) throw cause;
      if ((err as { code?: unknown } | null)?.code === 'EOPENBREAKER') throw new UpstreamUnavailableError(this.config.name, 'its circuit breaker is open');
      const text = errorText(cause);
      if (/time(d)? ?out/i.test(text) || (isProtocolError(cause) && cause.code === -32001)) {
        throw new UpstreamCallError(this.config.name, 'timeout', `no answer within ${timeoutMs} ms (the call was cancelled upstream)`, { cause });
      }
      // Streamable HTTP has no connection whose end says the server went away: a request that
      // failed at the transport marks it down (and reconnects with the backoff), as a stdio exit does.
      if (this.config.transport.kind === 'http') this.#lost(generation, `request failed: ${text}`);
      throw new UpstreamCallError(this.config.name, 'connection_lost', this.#mask(text), { cause });
    } finally {
      this.#inflight.delete(record);
    }
  }

  async callTool(tool: string, args: Record<string, unknown>, options: UpstreamCallOptions = {}): Promise<CallToolResult> {
    const started = performance.now();
    const seconds = () => (performance.now() - started) / 1000;
    let client: Client;
    try {
      client = this.#ready();
    } catch (err) {
      this.#hooks.onCall(tool, 'unavailable', 0);
      throw err;
    }
    const definition = this.#catalogue.tools.find((t) => t.name === tool);
    try {
      const result = await this.#send(client, options, (c, opts) =>
        c.callTool({ name: tool, arguments: args, ...(options.meta ? { _meta: options.meta } : {}), ...mrtrParams(options) }, { ...opts, ...(definition ? { toolDefinition: definition } : {}) }),
      );
      this.#hooks.onCall(tool, result.isError === true ? 'tool_error' : 'ok', seconds());
      return result;
    } catch (err) {
      const status: CallStatus = err instanceof UpstreamCallError ? (err.reason === 'timeout' ? 'timeout' : err.reason === 'cancelled' ? 'cancelled' : 'error') : err instanceof UpstreamUnavailableError ? 'unavailable' : 'error';
      this.#hooks.onCall(tool, status, seconds());
      throw err;
    }
  }

  readResource(params: ReadResourceRequest['params'], options: UpstreamCallOptions = {}): Promise<ReadResourceResult> {
    return this.#send(this.#ready(), options, (c, opts) => c.readResource({ ...params, ...mrtrParams(options) }, { ...opts, cacheMode: 'bypass' }));
  }

  getPrompt(params: GetPromptRequest['params'], options: UpstreamCallOptions = {}): Promise<GetPromptResult> {
    return this.#send(this.#ready(), options, (c, opts) => c.getPrompt({ ...params, ...mrtrParams(options) }, opts));
  }

  complete(params: CompleteRequest['params'], options: UpstreamCallOptions = {}): Promise<CompleteResult> {
    return this.#send(this.#ready(), options, (c, opts) => c.complete(params, opts));
  }

  async subscribeResource(uri: string, options: UpstreamCallOptions = {}): Promise<void> {
    await this.#send(this.#ready(), options, (c, opts) => c.subscribeResource({ uri }, opts));
  }

  async unsubscribeResource(uri: string, options: UpstreamCallOptions = {}): Promise<void> {
    await this.#send(this.#ready(), options, (c, opts) => c.unsubscribeResource({ uri }, opts));
  }

}

/** The retry params of a multi-round-trip call relayed for an agent (UpstreamCallOptions.inputRequired). */
function mrtrParams(options: UpstreamCallOptions): { inputResponses?: Record<string, unknown>; requestState?: string } {
  const r = options.inputRequired;
  if (r === undefined) return {};
  return { ...(r.inputResponses !== undefined ? { inputResponses: r.inputResponses } : {}), ...(r.requestState !== undefined ? { requestState: r.requestState } : {}) };
}
