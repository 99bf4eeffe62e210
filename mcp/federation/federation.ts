import { randomBytes } from 'node:crypto';
import {
  CLIENT_CAPABILITIES_META_KEY,
  LOG_LEVEL_META_KEY,
  ProtocolError,
  ProtocolErrorCode,
  ResourceTemplate,
  completable,
  createRequestStateCodec,
  inputRequired,
  isInputRequiredResult,
  type CallToolResult,
  type CompleteRequest,
  type CompleteResult,
  type GetPromptRequest,
  type GetPromptResult,
  type InputRequiredResult,
  type McpServer,
  type Prompt,
  type ReadResourceRequest,
  type ReadResourceResult,
  type RequestStateCodec,
  type ServerContext,
  type ServerEvent,
} from '@modelcontextprotocol/server';
import { z } from 'zod';
import type { Principal } from '../../src/auth/principal.js';
import type { Scope } from '../../src/auth/scopes.js';
import type { UpstreamInitiatedContext, UpstreamRequestHandlers, UpstreamRequestMethod } from '../clients/types.js';
import { FederationCatalogue, type FederatedTool, type Reserved, type UpstreamCatalogue } from './catalogue.js';
import { unwrapUri, type Namespace } from './names.js';
import { AgentCall, ParkedCalls, type AgentLink, type RelayedMethod } from './relay.js';
import { upstreamSchema } from './schema.js';

/*
 * Federation on /mcp: the upstream servers of mcp.servers.* (the pool, mcp/clients) offered
 * next to the gateway's own tools, resources and prompts. /mcp builds one McpServer per request
 * (mcp/server/gateway-server.ts, both eras); that builder calls `register` here, which adds the
 * federated surface for the request's principal from the current catalogue (rebuilt when an
 * upstream's lists or state change). Nothing is kept per agent: every call goes through the
 * pool's one connection per server.
 *
 * Per tool call: the policy (scope, allow/deny: ./policy.ts) for the request's own principal,
 * the per-principal-and-tool rate limit (src/ratelimit), the audit line (the request's
 * exchange, with the server's name: mcp/server/observe.ts), then the upstream call with the
 * server's own credentials from config (the agent's token never leaves the gateway), its
 * deadline, and cancellation tied to the agent's request. Progress and log messages of the
 * call reach the agent; sampling, elicitation and roots requests are relayed (./relay.ts). A
 * server that is down, unknown or whose breaker is open answers with a tool error naming it,
 * and its tools leave the list (list_changed).
 */

/** One configured upstream server as federation needs it (the pool's view). */
export interface FederatedServerView {
  readonly name: string;
  readonly state: 'disabled' | 'connecting' | 'ready' | 'down';
  readonly federate: boolean;
  readonly toolPrefix: string;
  readonly tools: { readonly allow: readonly string[]; readonly deny: readonly string[] };
  readonly scopes: Readonly<Record<string, Scope>>;
  readonly rateLimit?: { readonly requests: number; readonly windowSeconds: number } | undefined;
}

export interface FederatedCallOptions {
  readonly origin?: unknown;
  /** Hand input_required results of 2026-07-28 upstreams back as they are; a retry carries these. */
  readonly inputRequired?: { readonly inputResponses?: Record<string, unknown>; readonly requestState?: string };
  readonly signal?: AbortSignal;
  readonly onprogress?: (progress: { progress: number; total?: number; message?: string }) => void;
}

type UpstreamInitiated = UpstreamInitiatedContext;

/** What federation needs of the pool (mcp/clients/pool.ts implements it). */
export interface FederationUpstreams {
  servers(): readonly FederatedServerView[];
  catalogue(server: string): Omit<UpstreamCatalogue, keyof Namespace | 'policy'> & { readonly capabilities?: { readonly completions?: object } };
  callTool(server: string, tool: string, args: Record<string, unknown>, options?: FederatedCallOptions): Promise<CallToolResult>;
  readResource(server: string, params: ReadResourceRequest['params'], options?: FederatedCallOptions): Promise<ReadResourceResult>;
  getPrompt(server: string, params: GetPromptRequest['params'], options?: FederatedCallOptions): Promise<GetPromptResult>;
  complete(server: string, params: CompleteRequest['params'], options?: FederatedCallOptions): Promise<CompleteResult>;
  onChange(listener: (change: { server: string; kind: string }) => void): () => void;
  onNotification(listener: (notification: { method: string; params?: Record<string, unknown> }, ctx: UpstreamInitiated) => void): () => void;
  setRequestHandler<M extends UpstreamRequestMethod>(method: M, handler: UpstreamRequestHandlers[M]): void;
}

/** The per-principal-and-tool quota check (src/ratelimit); false: over the quota. */
export type ToolRateCheck = (identity: string, server: string, tool: string, quota: { requests: number; windowSeconds: number }) => Promise<boolean>;

/** What the request's exchange hears of a federated call (mcp/server/observe.ts). */
export interface FederatedToolReport {
  toolStarted(): void;
  toolEnded(outcome: 'ok' | 'refused' | 'failed'): void;
  /** The upstream server of the call, for the audit line. */
  toolServer?(server: string): void;
}

/** The request one server instance serves, as federation needs it. */
export interface FederationScope {
  readonly principal: Principal | null;
  readonly era: 'modern' | 'legacy';
  readonly method: string;
  /** What the request can reach (mcp/server/reach.ts): a tools/call registers only the tool it names. */
  readonly reach: { readonly tools: boolean; readonly resources: boolean; readonly prompts: boolean; readonly tool?: string | undefined };
  readonly report?: FederatedToolReport | undefined;
  /** Identity for rate limits when there is no principal (the client address key). */
  readonly client?: string | undefined;
  /** 2025 sessions: a request to the agent's client on this request's stream (mcp/server/legacy.ts). */
  readonly askClient?: (method: RelayedMethod, params: unknown, signal: AbortSignal) => Promise<unknown>;
}

export interface FederationOptions {
  readonly upstreams: FederationUpstreams;
  /** Names the gateway itself uses (never shadowed). */
  readonly reserved: Reserved;
  readonly rateCheck?: ToolRateCheck;
  readonly log: { warn(obj: object, msg: string): void };
  /** Parked-call limits (./relay.ts). */
  readonly park?: { ttlMs?: number; max?: number };
}

type Relayed = CallToolResult | GetPromptResult | ReadResourceResult;

/**
 * The requestState the gateway gives an agent (signed by Federation.codec, so a tampered one is
 * refused before any handler runs): a parked call of a push-style upstream (`call`), or the
 * upstream's own requestState of a 2026-07-28 upstream's input_required result (`up`).
 */
interface RelayState {
  readonly call?: string;
  readonly up?: string | null;
}

/** input_required rounds the gateway drives for a 2025 agent at most (the SDK's default for its own shim). */
const MAX_LEGACY_ROUNDS = 8;

const LOG_SEVERITY = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'];

function toolError(message: string): CallToolResult {
  return { content: [{ type: 'text', text: message }], isError: true };
}

/** A failure of an upstream call as the agent hears it: the server's name and what happened, never more. */
function upstreamFailure(server: string, err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return `GW_MCP_UPSTREAM_FAILED: MCP server "${server}": ${message.slice(0, 500)}`;
}

export class Federation {
  readonly #o: FederationOptions;
  readonly #parked = new ParkedCalls<Relayed>();
  /** requestState of parked calls: signed, per process (parked calls live in this process only). */
  readonly codec: RequestStateCodec<RelayState> = createRequestStateCodec<RelayState>({ key: randomBytes(32), ttlSeconds: 600 });
  #catalogue: FederationCatalogue | undefined;
  /** The tools each server offered when it was last ready (its calls get a tool error naming it while it is not). */
  readonly #lastKnown = new Map<string, readonly string[]>();
  /** Offered names of the tools of servers not ready now -> their server. */
  #unavailable = new Map<string, string>();
  readonly #listeners = new Set<(event: ServerEvent) => void>();
  readonly #unsubscribe: Array<() => void> = [];

  constructor(options: FederationOptions) {
    this.#o = options;
    const u = options.upstreams;
    this.#unsubscribe.push(
      u.onChange((change) => {
        this.#catalogue = undefined;
        this.#views = undefined;
        const kinds: ServerEvent['kind'][] =
          change.kind === 'tools' ? ['tools_list_changed'] : change.kind === 'prompts' ? ['prompts_list_changed'] : change.kind === 'resources' ? ['resources_list_changed'] : ['tools_list_changed', 'prompts_list_changed', 'resources_list_changed'];
        for (const kind of kinds) for (const l of this.#listeners) l({ kind } as ServerEvent);
      }),
      u.onNotification((n, ctx) => this.#relayNotification(n, ctx)),
    );
    for (const method of ['sampling/createMessage', 'elicitation/create', 'roots/list'] as const) {
      u.setRequestHandler(method, ((params: unknown, ctx: UpstreamInitiated) => {
        const calls = ctx.origins.filter((o): o is AgentCall => o instanceof AgentCall);
        if (calls.length !== 1) {
          return Promise.reject(new ProtocolError(ProtocolErrorCode.MethodNotFound, `no single agent call of the gateway to ask for ${method} (${calls.length} in flight)`));
        }
        return calls[0]!.ask(method, params, ctx.signal);
      }) as never);
    }
  }

  /** Whether any upstream server is federated (capabilities announce listChanged then). */
  get active(): boolean {
    return this.#o.upstreams.servers().some((s) => s.federate && s.state !== 'disabled');
  }

  /** List changes of the federated surface (the listen streams' event bus and 2025 GET streams). */
  onListChanged(listener: (event: ServerEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  close(): void {
    for (const u of this.#unsubscribe.splice(0)) u();
    this.#parked.close();
  }

  /** The current catalogue: ready, federated servers only (a server down offers nothing). */
  catalogue(): FederationCatalogue {
    if (this.#catalogue !== undefined) return this.#catalogue;
    const ups: UpstreamCatalogue[] = [];
    for (const view of this.#o.upstreams.servers()) {
      if (!view.federate || view.state !== 'ready') continue;
      const c = this.#o.upstreams.catalogue(view.name);
      ups.push({ server: view.name, prefix: view.toolPrefix, policy: { allow: view.tools.allow, deny: view.tools.deny, scopes: view.scopes }, ...c });
    }
    const catalogue = new FederationCatalogue(ups, this.#o.reserved);
    for (const c of catalogue.conflicts) this.#o.log.warn({ server: c.server, kind: c.kind, name: c.name }, 'mcp federation: name already taken, left out');
    const unavailable = new Map<string, string>();
    const ready = new Set(ups.map((u) => u.server));
    for (const server of ready) this.#lastKnown.set(server, [...catalogue.tools].filter(([, e]) => e.server === server).map(([n]) => n));
    for (const [server, names] of this.#lastKnown) {
      if (ready.has(server)) continue;
      for (const name of names) if (!catalogue.tools.has(name)) unavailable.set(name, server);
    }
    this.#unavailable = unavailable;
    this.#catalogue = catalogue;
    return catalogue;
  }

  /** Whether a tool of this name is offered (listed, or of a server that is not available now). */
  offersTool(name: string): boolean {
    return this.catalogue().tools.has(name) || this.#unavailable.has(name);
  }

  /** The pool's views by server name, until the pool reports a change (state, lists): not rebuilt per call. */
  #views: Map<string, FederatedServerView> | undefined;

  /** The pool's view of one server, when a call needs it (not per registration: that is every request). */
  #view(server: string): FederatedServerView | undefined {
    this.#views ??= new Map(this.#o.upstreams.servers().map((v) => [v.name, v]));
    return this.#views.get(server);
  }

  /** The schemas of an upstream tool as the SDK takes them: built once per catalogue, not per request. */
  readonly #schemas = new WeakMap<FederatedTool, { input: ReturnType<typeof upstreamSchema>; output?: ReturnType<typeof upstreamSchema> }>();

  #schemasOf(entry: FederatedTool): { input: ReturnType<typeof upstreamSchema>; output?: ReturnType<typeof upstreamSchema> } {
    let schemas = this.#schemas.get(entry);
    if (schemas === undefined) {
      const t = entry.tool;
      schemas = { input: upstreamSchema(t.inputSchema as Record<string, unknown>), ...(t.outputSchema !== undefined ? { output: upstreamSchema(t.outputSchema as Record<string, unknown>) } : {}) };
      this.#schemas.set(entry, schemas);
    }
    return schemas;
  }

  /** One upstream tool on a request's instance: policy, rate limit, audit, then the upstream call. */
  #registerTool(server: McpServer, scope: FederationScope, name: string, entry: FederatedTool, listing: boolean): void {
    const schemas = this.#schemasOf(entry);
    const t = entry.tool;
    const facts = { name: entry.upstream, annotations: t.annotations };
    const registered = server.registerTool(
      name,
      {
        ...(t.title !== undefined ? { title: t.title } : {}),
        ...(t.description !== undefined ? { description: t.description } : {}),
        inputSchema: schemas.input,
        ...(schemas.output !== undefined ? { outputSchema: schemas.output } : {}),
        ...(t.annotations !== undefined ? { annotations: t.annotations } : {}),
        ...(t.icons !== undefined ? { icons: t.icons } : {}),
        ...(t._meta !== undefined ? { _meta: t._meta } : {}),
      },
      (async (args: Record<string, unknown>, ctx: ServerContext) => {
        const report = scope.report;
        report?.toolStarted();
        report?.toolServer?.(entry.server);
        const end = (outcome: 'ok' | 'refused' | 'failed', result: CallToolResult | InputRequiredResult) => {
          report?.toolEnded(outcome);
          return result;
        };
        if (!entry.policy.mayCall(scope.principal, facts)) {
          const needed = entry.policy.scopeOf(facts);
          return end('refused', toolError(`GW_AUTH_INSUFFICIENT_SCOPE: ${name} needs the ${needed} scope`));
        }
        const view = this.#view(entry.server);
        if (view?.rateLimit !== undefined && this.#o.rateCheck !== undefined) {
          const identity = scope.principal !== null ? `p:${scope.principal.subject}` : `ip:${scope.client ?? 'unknown'}`;
          if (!(await this.#o.rateCheck(identity, entry.server, entry.upstream, view.rateLimit))) {
            return end('refused', toolError(`GW_MCP_TOOL_RATE_LIMITED: ${name}: at most ${view.rateLimit.requests} calls per ${view.rateLimit.windowSeconds} s per caller`));
          }
        }
        const result = await this.#relay(entry.server, scope, ctx, (call, onprogress, mrtr) =>
          this.#o.upstreams.callTool(entry.server, entry.upstream, args ?? {}, { origin: call, signal: call.abort.signal, onprogress, inputRequired: mrtr }),
        );
        if ('failure' in result) return end('failed', toolError(result.failure));
        const r = result.value as CallToolResult | InputRequiredResult;
        return end((r as CallToolResult).isError === true ? 'failed' : 'ok', r);
      }) as never,
    );
    // Listed only to principals that may call it (called anyway, it answers with the refusal).
    if (listing && !entry.policy.mayCall(scope.principal, facts)) registered.disable();
  }

  /** Adds the federated tools, resources and prompts to one request's server instance. */
  register(server: McpServer, scope: FederationScope): void {
    const catalogue = this.catalogue();
    const listing = scope.method === 'tools/list';
    // One request, one method: register what it can reach (a tools/call reaches one tool).
    const { reach: wants } = scope;
    const only = wants.tool;
    const named = only !== undefined ? catalogue.tools.get(only) : undefined;
    if (wants.tools && named !== undefined) this.#registerTool(server, scope, only!, named, listing);
    else if (wants.tools && only === undefined) for (const [name, entry] of catalogue.tools) this.#registerTool(server, scope, name, entry, listing);

    // Tools of a server that is down: not listed, and a call names the server (a tool error, not
    // "unknown tool"), so an agent that listed them before knows what happened.
    for (const [name, upstream] of this.#unavailable) {
      if (!wants.tools || (only !== undefined && name !== only)) continue;
      const view = this.#view(upstream);
      const registered = server.registerTool(name, { description: `A tool of the MCP server "${upstream}", which is not available now` }, (() => {
        scope.report?.toolStarted();
        scope.report?.toolServer?.(upstream);
        scope.report?.toolEnded('failed');
        return toolError(`GW_MCP_UPSTREAM_FAILED: MCP server "${upstream}" is not available (${view?.state ?? 'unknown'}); its tools come back when it reconnects`);
      }) as never);
      if (listing) registered.disable();
    }

    for (const [uri, entry] of wants.resources ? catalogue.resources : []) {
      const r = entry.resource;
      server.registerResource(
        r.name,
        uri,
        { ...(r.title !== undefined ? { title: r.title } : {}), ...(r.description !== undefined ? { description: r.description } : {}), ...(r.mimeType !== undefined ? { mimeType: r.mimeType } : {}) },
        async (_uri: URL, ctx: ServerContext) => this.#read(entry.server, entry.upstream, uri, scope, ctx),
      );
    }
    for (const [uriTemplate, entry] of wants.resources ? catalogue.templates : []) {
      const t = entry.template;
      server.registerResource(
        `${entry.server}/${t.name}`,
        new ResourceTemplate(uriTemplate, { list: undefined }),
        { ...(t.title !== undefined ? { title: t.title } : {}), ...(t.description !== undefined ? { description: t.description } : {}), ...(t.mimeType !== undefined ? { mimeType: t.mimeType } : {}) },
        async (uri: URL, _vars: unknown, ctx: ServerContext) => {
          const asked = uri.toString();
          const route = catalogue.resourceRoute(asked) ?? { server: entry.server, uri: asked };
          return this.#read(route.server, route.uri, asked, scope, ctx);
        },
      );
    }

    for (const [name, entry] of wants.prompts ? catalogue.prompts : []) {
      const completions = this.#o.upstreams.catalogue(entry.server).capabilities?.completions !== undefined;
      const argsSchema = promptArgs(entry.prompt, completions ? (arg, value, context) => this.#complete(entry.server, entry.upstream, arg, value, context) : undefined);
      const get = async (args: Record<string, string> | undefined, ctx: ServerContext) => {
        const result = await this.#relay(entry.server, scope, ctx, (call, _progress, mrtr) =>
          this.#o.upstreams.getPrompt(entry.server, { name: entry.upstream, ...(args !== undefined ? { arguments: args } : {}) }, { origin: call, signal: call.abort.signal, inputRequired: mrtr }),
        );
        if ('failure' in result) throw result.error instanceof ProtocolError ? result.error : new ProtocolError(ProtocolErrorCode.InternalError, result.failure);
        return result.value as GetPromptResult;
      };
      const config = { ...(entry.prompt.title !== undefined ? { title: entry.prompt.title } : {}), ...(entry.prompt.description !== undefined ? { description: entry.prompt.description } : {}) };
      if (argsSchema === undefined) server.registerPrompt(name, config, ((ctx: ServerContext) => get(undefined, ctx)) as never);
      else server.registerPrompt(name, { ...config, argsSchema }, ((args: Record<string, string>, ctx: ServerContext) => get(args, ctx)) as never);
    }
  }

  async #read(server: string, upstreamUri: string, askedUri: string, scope: FederationScope, ctx: ServerContext): Promise<ReadResourceResult> {
    const result = await this.#relay(server, scope, ctx, (call, _progress, mrtr) =>
      this.#o.upstreams.readResource(server, { uri: upstreamUri }, { origin: call, signal: call.abort.signal, inputRequired: mrtr }),
    );
    if ('failure' in result) {
      if (result.error instanceof ProtocolError) throw result.error;
      throw new ProtocolError(ProtocolErrorCode.InternalError, result.failure);
    }
    const value = result.value as ReadResourceResult;
    // Contents name the URI as the agent knows it.
    const wrapped = unwrapUri(askedUri);
    if (wrapped === null || !Array.isArray(value.contents)) return value;
    return { ...value, contents: value.contents.map((c) => ({ ...c, uri: c.uri === upstreamUri ? askedUri : `ugw.${server}.${c.uri}` })) };
  }

  async #complete(server: string, prompt: string, argument: string, value: string, context?: { arguments?: Record<string, string> }): Promise<string[]> {
    try {
      const r = await this.#o.upstreams.complete(server, {
        ref: { type: 'ref/prompt', name: prompt },
        argument: { name: argument, value },
        ...(context?.arguments !== undefined ? { context: { arguments: context.arguments } } : {}),
      });
      return r.completion.values;
    } catch {
      return [];
    }
  }

  /**
   * One upstream request of an agent request, with the relay: starts it (or resumes the parked
   * call the request's verified requestState names), and answers with its result, or with
   * input_required when the upstream waits for the agent (2026-07-28 agents).
   */
  async #relay(
    server: string,
    scope: FederationScope,
    ctx: ServerContext,
    start: (call: AgentCall, onprogress: FederatedCallOptions['onprogress'], mrtr: NonNullable<FederatedCallOptions['inputRequired']>) => Promise<Relayed>,
  ): Promise<{ value: Relayed | InputRequiredResult } | { failure: string; error: unknown }> {
    const owner = scope.principal?.subject ?? `anonymous:${scope.client ?? ''}`;
    const link = agentLink(scope, ctx);
    const state = ctx.mcpReq.requestState<RelayState>();
    let call: AgentCall;
    let result: Promise<Relayed>;
    if (state !== undefined && typeof state === 'object' && state !== null && typeof state.call === 'string') {
      const parked = this.#parked.take(state.call, owner);
      if (parked === undefined) return { failure: `GW_MCP_UPSTREAM_FAILED: MCP server "${server}": the call this answer belongs to is no longer waiting (expired, or served by another replica)`, error: undefined };
      call = parked.call;
      result = parked.result;
      call.attach(link);
      if (call.answer(ctx.mcpReq.inputResponses) === 0) call.resendAll();
    } else {
      call = new AgentCall(link);
      const onprogress: FederatedCallOptions['onprogress'] = (p) => {
        const token = call.link?.progressToken;
        if (token !== undefined) call.notify('notifications/progress', { progressToken: token, ...p });
      };
      // A 2026-07-28 upstream's own rounds pass through: its input requests (keys kept) go to
      // the agent, the agent's answers and the upstream's state come back on the retry.
      const inputResponses = ctx.mcpReq.inputResponses;
      const up = state !== undefined && typeof state === 'object' && state !== null && typeof state.up === 'string' ? state.up : undefined;
      result = start(call, onprogress, { ...(inputResponses !== undefined ? { inputResponses } : {}), ...(up !== undefined ? { requestState: up } : {}) });
      result.catch(() => {});
    }
    const onAbort = () => call.abort.abort(new Error('cancelled by the agent'));
    ctx.mcpReq.signal.addEventListener('abort', onAbort, { once: true });
    let parked = false;
    try {
      const outcome = await Promise.race([
        result.then(
          (value) => ({ value }),
          (error: unknown) => ({ error }),
        ),
        call.needsInput().then(() => ({ input: true as const })),
      ]);
      if ('input' in outcome) {
        const inputRequests = call.takeInputRequests();
        const id = this.#parked.park(call, result, owner);
        if (id === null) return { failure: `GW_MCP_UPSTREAM_FAILED: MCP server "${server}": too many calls are waiting for their agents; try again later`, error: undefined };
        parked = true;
        return { value: inputRequired({ inputRequests, requestState: await this.codec.mint({ call: id }) }) };
      }
      await call.flush();
      if ('error' in outcome) return { failure: upstreamFailure(server, outcome.error), error: outcome.error };
      let value: unknown = outcome.value;
      // A 2025 agent has no input_required: the gateway asks it each input request on its
      // request's stream (push), and retries the upstream with the answers, round by round.
      for (let round = 0; isInputRequiredResult(value) && link.era === 'legacy' && link.send !== undefined; round++) {
        if (round >= MAX_LEGACY_ROUNDS) return { failure: `GW_MCP_UPSTREAM_FAILED: MCP server "${server}" asked for input more than ${MAX_LEGACY_ROUNDS} times`, error: undefined };
        const inputResponses: Record<string, unknown> = {};
        try {
          for (const [key, request] of Object.entries(value.inputRequests ?? {})) {
            const r = request as { method: RelayedMethod; params?: unknown };
            inputResponses[key] = await link.send(r.method, r.params, call.abort.signal);
          }
        } catch (err) {
          return { failure: upstreamFailure(server, err), error: err };
        }
        try {
          value = await start(call, undefined, { inputResponses, ...(typeof value.requestState === 'string' ? { requestState: value.requestState } : {}) });
        } catch (err) {
          return { failure: upstreamFailure(server, err), error: err };
        }
      }
      if (isInputRequiredResult(value)) {
        return {
          value: inputRequired({
            ...(value.inputRequests !== undefined ? { inputRequests: value.inputRequests } : {}),
            requestState: await this.codec.mint({ up: typeof value.requestState === 'string' ? value.requestState : null }),
          }),
        };
      }
      return { value: value as Relayed };
    } finally {
      ctx.mcpReq.signal.removeEventListener('abort', onAbort);
      if (!parked) call.end('the call ended');
    }
  }

  #relayNotification(n: { method: string; params?: Record<string, unknown> }, ctx: UpstreamInitiated): void {
    if (n.method !== 'notifications/message') return;
    const calls = ctx.origins.filter((o): o is AgentCall => o instanceof AgentCall);
    if (calls.length !== 1) return;
    const call = calls[0]!;
    const link = call.link;
    if (link === undefined) return;
    if (link.era === 'modern') {
      // 2026-07-28: log messages only for a request that asked for them, at its level or above.
      const level = link.logLevel;
      const at = LOG_SEVERITY.indexOf(String(n.params?.level ?? 'info'));
      if (level === undefined || at < LOG_SEVERITY.indexOf(level)) return;
    }
    call.notify(n.method, n.params ?? {});
  }
}

/** The relay's view of one agent request. */
function agentLink(scope: FederationScope, ctx: ServerContext): AgentLink {
  const era = scope.era;
  const envelope = (ctx.mcpReq.envelope ?? {}) as Record<string, unknown>;
  const caps = envelope[CLIENT_CAPABILITIES_META_KEY];
  const logLevel = envelope[LOG_LEVEL_META_KEY];
  const token = ctx.mcpReq._meta?.progressToken;
  return {
    era,
    capabilities: era === 'modern' && caps !== null && typeof caps === 'object' ? (caps as Record<string, unknown>) : undefined,
    ...(typeof logLevel === 'string' ? { logLevel } : {}),
    progressToken: typeof token === 'string' || typeof token === 'number' ? token : undefined,
    notify: (method, params) => ctx.mcpReq.notify({ method, params } as never),
    ...(era === 'legacy' && scope.askClient !== undefined ? { send: scope.askClient } : {}),
  };
}

/** A prompt's arguments as the schema registerPrompt takes (strings; completable when the upstream completes). */
function promptArgs(
  prompt: Prompt,
  complete: ((arg: string, value: string, context?: { arguments?: Record<string, string> }) => Promise<string[]>) | undefined,
): z.ZodObject | undefined {
  const args = prompt.arguments ?? [];
  if (args.length === 0) return undefined;
  const shape: Record<string, z.ZodType> = {};
  for (const a of args) {
    let field: z.ZodType = z.string();
    if (a.description !== undefined) field = field.describe(a.description);
    if (complete !== undefined) field = completable(field as z.ZodString, (value, context) => complete(a.name, String(value), context)) as unknown as z.ZodType;
    shape[a.name] = a.required === true ? field : field.optional();
  }
  return z.object(shape);
}

