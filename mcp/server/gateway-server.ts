import { hash } from 'node:crypto';
import {
  McpServer,
  ProtocolError,
  ProtocolErrorCode,
  type CacheHint,
  type CallToolResult,
  type GetPromptResult,
  type StandardSchemaWithJSON,
  type ToolAnnotations,
  type Transport,
} from '@modelcontextprotocol/server';
import { z } from 'zod';
import { accessRefusal, adminAccessPolicy } from '../../src/admin/access.js';
import { listBlockedClientsOutput, unblockClientInput, type BlockedClientsService } from '../../src/admin/blocked-clients.js';
import { listMcpServersOutput, McpServerAdminError, restartMcpServerInput, restartMcpServerOutput, type McpServersService } from '../../src/admin/mcp-servers-service.js';
import {
  metricsSummaryInput,
  metricsSummaryOutput,
  queryMetricInput,
  queryMetricOutput,
  UnknownMetricError,
  type MetricsService,
} from '../../src/admin/metrics-service.js';
import {
  getRouteInput,
  getRouteOutput,
  listRoutesOutput,
  listServicesOutput,
  serviceHealthInput,
  serviceHealthOutput,
  UnknownServiceError,
  type RoutesService,
} from '../../src/admin/routes-service.js';
import {
  getTrafficSplitInput,
  getTrafficSplitOutput,
  shiftTrafficInput,
  shiftTrafficOutput,
  TrafficSplitError,
  type TrafficService,
} from '../../src/admin/traffic-service.js';
import type { Principal } from '../../src/auth/principal.js';
import { grants } from '../../src/auth/scopes.js';
import { validateRoutingModelInput, validateRoutingModelOutput, type ModelValidationService } from '../integrations/huggingface/model-validation.js';
import type { RoutingModel } from '../../src/routing/model/model.js';
import {
  AnalysisError,
  analyzeRoutingInput,
  analyzeRoutingOutput,
  reviewRoutingInput,
  reviewRoutingOutput,
  type RoutingAnalyst,
} from '../integrations/sequential-thinking/analyst.js';
import type { Federation } from '../federation/federation.js';
import { mcpSchema } from './schemas.js';
import { reachesTool, requestReach } from './reach.js';
import {
  listMigrationsInput,
  listMigrationsOutput,
  MigrationError,
  migrationOutput,
  migrationRefInput,
  startMigrationInput,
  stopMigrationInput,
  type MigrationsService,
} from '../../src/admin/migrations-service.js';
import { legacyUsageInput, legacyUsageOutput, type LegacyUsage } from '../../src/migration/legacy.js';

/*
 * The gateway as an MCP server: tools are thin adapters over the admin service layer
 * (src/admin), so the MCP and REST faces always agree. One server instance serves one
 * request (both protocol eras, ./http.ts), built for that request's own principal: read
 * tools need `read` (checked when /mcp is reached); the admin tools (the mutating ones, and
 * list_blocked_clients) follow the admin services' rule, `admin` scope plus MFA when
 * configured (src/admin/access.ts), and are not listed for a principal without the scope.
 * Called anyway they answer with the refusal REST would give. The instance reports to the
 * request's exchange (./observe.ts) how its tool ended, for the audit line.
 *
 * Capabilities claim only what is sent: resource updates for subscribed resources
 * (`gateway://routes` on a traffic shift, `gateway://services` on a health change, on every
 * replica); no list ever changes while the gateway runs, so no `listChanged`, and no log
 * notifications, so no `logging`.
 */

/** The resources whose changes are announced (notifications/resources/updated). */
export const SUBSCRIBABLE_RESOURCES = ['gateway://routes', 'gateway://services', 'gateway://migrations'] as const;
export type SubscribableResource = (typeof SUBSCRIBABLE_RESOURCES)[number];

/** Subscriptions one 2025 session may hold (they are kept in its state-store record, so bounded). */
export const MAX_SUBSCRIPTIONS_PER_SESSION = 32;
export const MAX_SUBSCRIBE_URI_LENGTH = 1024;
/** An absolute URI (RFC 3986 scheme, then something, no whitespace). */
const ABSOLUTE_URI = /^[a-z][a-z0-9+.-]*:\S+$/i;
/** The gateway's own resource namespace: it knows every resource in it. */
const GATEWAY_SCHEME = 'gateway://';

/**
 * The tools behind the admin services' access rule (admin scope, and MFA when configured): the
 * ones that change the gateway, and list_blocked_clients (it shows clients' addresses, which
 * REST shows to admins only).
 */
export const ADMIN_TOOLS = [
  'shift_traffic',
  'unblock_client',
  'reset_circuit_breaker',
  'list_blocked_clients',
  'restart_mcp_server',
  'validate_routing_model',
  // --- migration (src/migration; they show callers and move traffic) ---
  'start_migration',
  'get_migration',
  'list_migrations',
  'approve_migration_step',
  'pause_migration',
  'resume_migration',
  'rollback_migration',
  'abort_migration',
  'legacy_usage',
] as const;

/** Every tool the gateway may offer (some only with the feature on): the metric's `tool` label values. */
export const TOOL_NAMES: ReadonlySet<string> = new Set([
  'list_routes',
  'get_route',
  'list_services',
  'get_service_health',
  'get_metrics',
  'query_metric',
  'explain_routing',
  'get_traffic_split',
  'list_mcp_servers',
  'analyze_routing',
  'review_routing',
  ...ADMIN_TOOLS,
]);

/** How a tool's own code ended: the audit line says it even when the answer never went out (cancelled). */
export type ToolOutcome = 'ok' | 'refused' | 'failed';

/** What a request's instance reports about the tool it ran (./observe.ts keeps it with the exchange). */
export interface ToolReport {
  toolStarted(): void;
  toolEnded(outcome: ToolOutcome): void;
  /** A federated tool: the upstream server it calls (the audit line names it). */
  toolServer?(server: string): void;
}

/** A 2025 session's resource subscriptions (./sessions.ts): kept in the state store, heard on any replica. */
export interface SessionSubscriptions {
  readonly subscriptions: readonly string[];
  subscribe(uri: string): Promise<void>;
  unsubscribe(uri: string): Promise<void>;
}

/** The request one server instance serves. */
export interface McpRequestScope {
  /** The principal of this HTTP request (null: anonymous, MCP_REQUIRE_AUTH=false). */
  readonly principal: Principal | null;
  /** 2026-07-28 (`modern`, per-request envelope) or a 2025 session (`legacy`). */
  readonly era: 'modern' | 'legacy';
  /** The JSON-RPC method of the request (tools/list leaves out the tools this principal may not call). */
  readonly method: string;
  /** The tool a tools/call names (only it needs registering among the federated ones). */
  readonly toolName?: string;
  readonly report?: ToolReport;
  /** Called with the transport the instance is connected to, before it connects (./observe.ts watches the answer). */
  readonly onConnect?: (transport: Transport) => void;
  /** The 2025 session the request belongs to (resources/subscribe). */
  readonly session?: SessionSubscriptions;
  /** The client's address key (rate limits of federated tools without a principal). */
  readonly client?: string;
  /** 2025 sessions: send a request to the client on this request's response stream (federated calls relay upstream requests with it). */
  readonly askClient?: (method: 'sampling/createMessage' | 'elicitation/create' | 'roots/list', params: unknown, signal: AbortSignal) => Promise<unknown>;
  /**
   * A 2026-07-28 request whose envelope names both the client's info and its capabilities: the
   * SDK seeds the instance with both, so an instance of an earlier request keeps nothing of it
   * (./reuse.ts reuses instances only for such requests).
   */
  readonly identified?: boolean;
}

export interface GatewayMcpServerDeps {
  readonly routes: RoutesService;
  readonly metrics: MetricsService;
  /** Blocked-client admin (absent in setups without the rate-limit stage). */
  readonly blockedClients?: BlockedClientsService;
  /** Admin tools also need a second factor (config auth.requireMfaForAdmin), as the REST admin endpoints. */
  readonly requireMfaForAdmin: boolean;
  /** Closes a service's circuit breakers by hand; returns how many were open or half-open. */
  readonly resetBreakers?: (service: string) => number;
  /** Services the gateway knows (to refuse unknown names with a clear error). */
  readonly serviceNames?: readonly string[];
  /** The active routing model (absent when ML routing is off). */
  readonly routingModel?: () => Pick<RoutingModel, 'explain' | 'id'>;
  /** validate_routing_model: the model against the HuggingFace reference (absent when ML routing is off). */
  readonly modelValidation?: Pick<ModelValidationService, 'validate'>;
  /** The redacted configuration, for the gateway://config resource. */
  readonly redactedConfig: () => unknown;
  /** Traffic splits (get_traffic_split, shift_traffic, the canary prompt). */
  readonly traffic?: TrafficService;
  /** Upstream MCP servers (list_mcp_servers, gateway://mcp-servers, restart_mcp_server). */
  readonly mcpServers?: McpServersService;
  /** Stepwise routing analyses (analyze_routing, review_routing), recorded through the sequential-thinking server. */
  readonly routingAnalyst?: Pick<RoutingAnalyst, 'analyze' | 'review'>;
  /** Upstream tools, resources and prompts offered next to the gateway's own (mcp/federation). */
  readonly federation?: Federation;
  /** Progressive migrations (src/migration). */
  readonly migrations?: MigrationsService;
  /** Who still calls the legacy endpoints. */
  readonly legacyUsage?: LegacyUsage;
  readonly version: string;
}

/** Stable short hash of a tool's arguments for the audit line. */
export function argsHash(args: unknown): string {
  // crypto.hash: the one-shot form (no Hash object per call; the same digest).
  return hash('sha256', JSON.stringify(args ?? {}), 'hex').slice(0, 16);
}

/** Whether `principal` may see the admin tools listed. */
export function seesAdminTools(principal: Principal | null): boolean {
  return principal !== null && grants(principal.scopes, 'admin');
}

/** What each tool is registered with: zod schemas through mcpSchema, truthful annotations. */
interface ToolConfig {
  readonly title: string;
  readonly description: string;
  readonly inputSchema?: StandardSchemaWithJSON;
  readonly outputSchema: StandardSchemaWithJSON;
  readonly annotations: ToolAnnotations;
}

/** Success: the structured result, and the same as text for clients without structured content. */
function ok(structured: Record<string, unknown>): CallToolResult {
  return { content: [{ type: 'text', text: JSON.stringify(structured) }], structuredContent: structured };
}

/** A failure the caller can act on: a tool result with isError, not a protocol error. */
function toolError(message: string): CallToolResult {
  return { content: [{ type: 'text', text: message }], isError: true };
}

/** The service layer's answer, its refusals (errors of the `refusal` class) as tool errors; anything else stays a failure. */
async function answer(run: () => Record<string, unknown> | Promise<Record<string, unknown>>, refusal: new (...args: never[]) => Error): Promise<CallToolResult> {
  try {
    return ok(await run());
  } catch (err) {
    if (err instanceof refusal) return toolError(err.message);
    throw err;
  }
}

/** A prompt of one user message. */
function userPrompt(text: string): GetPromptResult {
  return { messages: [{ role: 'user', content: { type: 'text', text } }] };
}

const READ_ONLY = { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false } as const;

const JSON_MIME = 'application/json';

/**
 * Cache hints of the 2026-07-28 results (`ttlMs`, `cacheScope`). The tool list depends on the
 * caller (admin tools are left out for others): private. The other lists and the discovery
 * answer depend on the gateway's configuration only: public, for five minutes. Resource
 * contents are live (a traffic shift or a probe changes them, announced on listen streams):
 * private and not to be reused, except the configuration, fixed while the gateway runs.
 */
export const CACHE_HINTS = {
  'tools/list': { ttlMs: 60_000, cacheScope: 'private' },
  'prompts/list': { ttlMs: 300_000, cacheScope: 'public' },
  'resources/list': { ttlMs: 300_000, cacheScope: 'public' },
  'resources/templates/list': { ttlMs: 300_000, cacheScope: 'public' },
  'server/discover': { ttlMs: 300_000, cacheScope: 'public' },
  'resources/read': { ttlMs: 0, cacheScope: 'private' },
} as const satisfies Record<string, CacheHint>;
const CONFIG_CACHE_HINT: CacheHint = { ttlMs: 300_000, cacheScope: 'private' };

export const SERVER_CAPABILITIES = {
  tools: { listChanged: false },
  resources: { subscribe: true, listChanged: false },
  prompts: { listChanged: false },
} as const;

/**
 * With federation, the lists change while the gateway runs (an upstream comes, goes, or
 * announces list_changed) and the gateway says so (tools, resources and prompts list_changed on 2025 GET
 * streams and 2026-07-28 listen streams); log messages of upstream tools are relayed, and
 * upstream prompts may complete their arguments.
 */
export const FEDERATED_CAPABILITIES = {
  tools: { listChanged: true },
  resources: { subscribe: true, listChanged: true },
  prompts: { listChanged: true },
  logging: {},
  completions: {},
} as const;

const INSTRUCTIONS =
  'Unified Gateway of the AI Village services. Read tools: list_routes, get_route, list_services, get_service_health, get_metrics, query_metric, get_traffic_split, explain_routing, analyze_routing, review_routing, list_mcp_servers. Admin tools (admin scope, and MFA when the gateway requires it; each request is checked with its own credential): shift_traffic (use dry_run first), unblock_client, reset_circuit_breaker, list_blocked_clients, restart_mcp_server, validate_routing_model; migrations: start_migration (dry_run first), get_migration, list_migrations, approve_migration_step, pause_migration, resume_migration, rollback_migration, abort_migration; legacy_usage.';

const promptArgs = {
  diagnose: mcpSchema(z.object({ service: z.string().min(1).max(64).describe('Service name, e.g. knowledge') })),
  canary: mcpSchema(z.object({ route: z.string().min(1).max(64).describe('Id of a route with a traffic split (see get_traffic_split)') })),
};

const explainRoutingInput = z.strictObject({
  text: z.string().min(1).max(4096).describe('The request text (the query/prompt/message of a /v1/query body)'),
  path: z.enum(['/v1/query', '/v1/upload']).default('/v1/query'),
  fileName: z.string().max(256).optional().describe('For /v1/upload: the uploaded file name'),
  fileType: z.string().max(128).optional().describe('For /v1/upload: its media type'),
});

const explainRoutingOutput = z.object({
  model: z.string(),
  service: z.string(),
  confidence: z.number(),
  probabilities: z.record(z.string(), z.number()),
  topFeatures: z.array(z.object({ feature: z.string(), label: z.string(), weight: z.number() })),
});

/** The schemas of every tool, converted once (mcpSchema memoises their JSON Schema). */
const SCHEMAS = {
  listRoutesOutput: mcpSchema(listRoutesOutput),
  getRouteInput: mcpSchema(getRouteInput),
  getRouteOutput: mcpSchema(getRouteOutput),
  listServicesOutput: mcpSchema(listServicesOutput),
  serviceHealthInput: mcpSchema(serviceHealthInput),
  serviceHealthOutput: mcpSchema(serviceHealthOutput),
  metricsSummaryInput: mcpSchema(metricsSummaryInput),
  metricsSummaryOutput: mcpSchema(metricsSummaryOutput),
  queryMetricInput: mcpSchema(queryMetricInput),
  queryMetricOutput: mcpSchema(queryMetricOutput),
  listBlockedClientsOutput: mcpSchema(listBlockedClientsOutput),
  unblockClientInput: mcpSchema(unblockClientInput),
  unblockClientOutput: mcpSchema(z.object({ client: z.string(), unblocked: z.boolean() })),
  explainRoutingInput: mcpSchema(explainRoutingInput),
  explainRoutingOutput: mcpSchema(explainRoutingOutput),
  resetBreakerInput: mcpSchema(z.strictObject({ service: z.string().min(1).max(64) })),
  resetBreakerOutput: mcpSchema(z.object({ service: z.string(), reset: z.number().int().describe('Breakers that were open or half-open') })),
  getTrafficSplitInput: mcpSchema(getTrafficSplitInput),
  getTrafficSplitOutput: mcpSchema(getTrafficSplitOutput),
  shiftTrafficInput: mcpSchema(shiftTrafficInput),
  shiftTrafficOutput: mcpSchema(shiftTrafficOutput),
  listMcpServersOutput: mcpSchema(listMcpServersOutput),
  restartMcpServerInput: mcpSchema(restartMcpServerInput),
  restartMcpServerOutput: mcpSchema(restartMcpServerOutput),
  analyzeRoutingInput: mcpSchema(analyzeRoutingInput),
  analyzeRoutingOutput: mcpSchema(analyzeRoutingOutput),
  reviewRoutingInput: mcpSchema(reviewRoutingInput),
  reviewRoutingOutput: mcpSchema(reviewRoutingOutput),
  // --- migration ---
  startMigrationInput: mcpSchema(startMigrationInput),
  migrationRefInput: mcpSchema(migrationRefInput),
  stopMigrationInput: mcpSchema(stopMigrationInput),
  listMigrationsInput: mcpSchema(listMigrationsInput),
  migrationOutput: mcpSchema(migrationOutput),
  listMigrationsOutput: mcpSchema(listMigrationsOutput),
  legacyUsageInput: mcpSchema(legacyUsageInput),
  legacyUsageOutput: mcpSchema(legacyUsageOutput),
  validateRoutingModelInput: mcpSchema(validateRoutingModelInput),
  validateRoutingModelOutput: mcpSchema(validateRoutingModelOutput),
};

/** Why a subscription to `uri` is refused (null: accepted). */
export function subscriptionRefusal(uri: string, current: readonly string[], listed: ReadonlySet<string>): string | null {
  // Which URIs may be subscribed: the MCP spec (2025-06-18 and 2025-11-25, server/resources
  // "Subscriptions") puts no limit on them and a subscription is only a request for
  // notifications/resources/updated, so a subscription to a resource that never announces a
  // change (gateway://config) or to a URI that is not the gateway's is accepted and simply
  // never fires (the conformance suite subscribes to its fixture URI). What is refused (spec:
  // servers MUST validate resource URIs): an unknown gateway:// URI (the gateway knows every
  // resource of its own namespace, so that is a typo worth telling the agent about), a string
  // that is not an absolute URI or is too long, and more than MAX_SUBSCRIPTIONS_PER_SESSION.
  if (uri.length > MAX_SUBSCRIBE_URI_LENGTH || !ABSOLUTE_URI.test(uri)) {
    return `cannot subscribe to ${uri.slice(0, 200)}: not an absolute URI of at most ${MAX_SUBSCRIBE_URI_LENGTH} characters`;
  }
  if (uri.startsWith(GATEWAY_SCHEME) && !listed.has(uri)) return `unknown resource ${uri}; updates are sent for: ${SUBSCRIBABLE_RESOURCES.join(', ')}`;
  if (!current.includes(uri) && current.length >= MAX_SUBSCRIPTIONS_PER_SESSION) {
    return `a session may hold at most ${MAX_SUBSCRIPTIONS_PER_SESSION} subscriptions; unsubscribe first`;
  }
  return null;
}

/** An McpServer that shows its request's observer the transport it is connected to. */
class ObservedMcpServer extends McpServer {
  readonly #onConnect: (transport: Transport) => void;

  constructor(version: string, onConnect: (transport: Transport) => void, federation: Federation | undefined) {
    super(
      { name: 'unified-gateway', version },
      {
        capabilities: federation !== undefined ? FEDERATED_CAPABILITIES : SERVER_CAPABILITIES,
        instructions: INSTRUCTIONS,
        cacheHints: CACHE_HINTS,
        // The requestState of federated calls waiting for their agent's input (mcp/federation/relay.ts): signed by this replica.
        ...(federation !== undefined ? { requestState: { verify: federation.codec.verify } } : {}),
      },
    );
    this.#onConnect = onConnect;
  }

  override async connect(transport: Transport): Promise<void> {
    this.#onConnect(transport);
    await super.connect(transport);
    // The SDK's close hook builds an SdkError("Connection closed") on every close, for the
    // requests still waiting on the transport; an instance serves one exchange, so that is every
    // request, and capturing its stack trace (deep, through the async chain) was ~35 us of each
    // federated call (CPU profile). Its stack says nothing (the transport closed, by design):
    // errors made while the close hook runs carry none.
    const onclose = transport.onclose;
    transport.onclose = () => {
      const limit = Error.stackTraceLimit;
      Error.stackTraceLimit = 0;
      try {
        onclose?.();
      } finally {
        Error.stackTraceLimit = limit;
      }
    };
  }
}

export function createGatewayMcpServer(deps: GatewayMcpServerDeps, scope: McpRequestScope): McpServer {
  // The scope's request-bound parts are read when used, not when registered: a reused instance
  // (./reuse.ts) serves each request with that request's scope.
  const server = new ObservedMcpServer(deps.version, (transport) => scope.onConnect?.(transport), deps.federation);
  const { routes } = deps;
  const { principal } = scope;
  const adminPolicy = adminAccessPolicy(deps.requireMfaForAdmin);
  const reach = requestReach(scope.method, scope.toolName, (name) => TOOL_NAMES.has(name) || deps.federation?.offersTool(name) === true);

  /**
   * registerTool, reporting how each call of the tool's own code ended (the exchange audits
   * every call, also those that never reach this code: unknown tools, invalid arguments).
   */
  const tool = <T extends (...args: never[]) => CallToolResult | Promise<CallToolResult>>(name: string, config: ToolConfig, handler: T) => {
    let refused = false;
    const run = async (...args: unknown[]): Promise<CallToolResult> => {
      scope.report?.toolStarted();
      try {
        const result = await (handler as unknown as (...a: unknown[]) => CallToolResult | Promise<CallToolResult>)(...args);
        scope.report?.toolEnded(refused ? 'refused' : result.isError === true ? 'failed' : 'ok');
        return result;
      } catch (err) {
        scope.report?.toolEnded('failed');
        throw err;
      }
    };
    // Not reached by this request (a tools/call of another tool, a resources/read...): not registered.
    const registered = reachesTool(reach, name) ? server.registerTool(name, config as never, run as never) : undefined;
    return { registered, markRefused: () => (refused = true) };
  };

  /**
   * An admin tool's body behind the admin access rule, for this request's principal (plus the
   * tool's own `check`); it runs as that principal. A refusal names the error REST would
   * answer with, and the audit line says "refused".
   */
  const adminTool = (
    name: string,
    config: ToolConfig,
    run: (input: never, principal: Principal) => CallToolResult | Promise<CallToolResult>,
    check: (input: never) => string | null = () => null,
  ) => {
    const handle = tool(name, config, (async (...args: unknown[]) => {
      const input = (config.inputSchema !== undefined ? args[0] : undefined) as never;
      const denied = accessRefusal(principal, adminPolicy);
      const refused = denied !== null ? `${denied.code}: ${denied.message}` : check(input);
      if (refused === null && principal !== null) return run(input, principal);
      handle.markRefused();
      return toolError(refused ?? 'GW_AUTH_MISSING_CREDENTIALS');
    }) as never);
    // Listed only to principals with the scope; called by others, it answers with the refusal.
    if (scope.method === 'tools/list' && !seesAdminTools(principal)) handle.registered?.disable();
    return handle;
  };

  // A tools/call of an upstream tool (or a resources or prompts request) builds none of the
  // gateway's own tools: not even their handlers and configurations.
  if (reach.tools && (reach.tool === undefined || TOOL_NAMES.has(reach.tool))) {
    tool(
      'list_routes',
      {
        title: 'List routes',
        description: 'Every route of the gateway: path prefix, service, methods, whether it is enabled, its auth requirements and validation mode.',
        outputSchema: SCHEMAS.listRoutesOutput,
        annotations: READ_ONLY,
      },
      () => ok(routes.listRoutes()),
    );

    tool(
      'get_route',
      {
        title: 'Explain a route',
        description: 'Which route and service would serve a method and path, where it would be sent, and the scope and MFA it needs.',
        inputSchema: SCHEMAS.getRouteInput,
        outputSchema: SCHEMAS.getRouteOutput,
        annotations: READ_ONLY,
      },
      (input: z.output<typeof getRouteInput>) => ok(routes.getRoute(input)),
    );

    tool(
      'list_services',
      {
        title: 'List services',
        description: 'The backend services: whether each is enabled (and what disabled it), upstream URLs, health path, timeout and routes.',
        outputSchema: SCHEMAS.listServicesOutput,
        annotations: READ_ONLY,
      },
      () => ok(routes.listServices()),
    );

    tool(
      'get_service_health',
      {
        title: 'Service health',
        description: "The health prober's last snapshot (no upstream call): overall status and each service's status, latency and last check.",
        inputSchema: SCHEMAS.serviceHealthInput,
        outputSchema: SCHEMAS.serviceHealthOutput,
        annotations: READ_ONLY,
      },
      (input: z.output<typeof serviceHealthInput>) => answer(() => routes.serviceHealth(input), UnknownServiceError),
    );

    tool(
      'get_metrics',
      {
        title: 'Traffic summary',
        description:
          "Per route and per service over the last N minutes: requests, request rate, error rate, and p50/p95/p99 latency, from the gateway's own metrics.",
        inputSchema: SCHEMAS.metricsSummaryInput,
        outputSchema: SCHEMAS.metricsSummaryOutput,
        annotations: READ_ONLY,
      },
      async (input: z.output<typeof metricsSummaryInput>) => ok(await deps.metrics.summary(input)),
    );

    tool(
      'query_metric',
      {
        title: 'Read one metric',
        description: 'The current series of one Prometheus metric of the gateway (e.g. gateway_circuit_breaker_state), filtered by label values.',
        inputSchema: SCHEMAS.queryMetricInput,
        outputSchema: SCHEMAS.queryMetricOutput,
        annotations: READ_ONLY,
      },
      (input: z.output<typeof queryMetricInput>) => answer(() => deps.metrics.queryMetric(input), UnknownMetricError),
    );

    if (deps.blockedClients) {
      const blocked = deps.blockedClients;
      adminTool(
        'list_blocked_clients',
        {
          title: 'Blocked clients',
          description: 'Clients the suspicious-client detector (or an admin) blocked, with reason, strikes and time left. Needs admin scope (and MFA when configured), as GET /admin/blocked-clients.',
          outputSchema: SCHEMAS.listBlockedClientsOutput,
          annotations: READ_ONLY,
        },
        async () => ok(await blocked.list()),
      );
      adminTool(
        'unblock_client',
        {
          title: 'Unblock a client',
          description: "Lift a block on every replica and forget the client's threat score. Needs admin scope (and MFA when configured).",
          inputSchema: SCHEMAS.unblockClientInput,
          outputSchema: SCHEMAS.unblockClientOutput,
          annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
        },
        async (input: z.output<typeof unblockClientInput>) => ok(await blocked.unblock(input)),
      );
    }

    if (deps.routingModel) {
      const current = deps.routingModel;
      tool(
        'explain_routing',
        {
          title: 'Explain a routing decision',
          description: 'Run the active routing model on a request text: the service it picks, the probability of each service and the features that weighed most.',
          inputSchema: SCHEMAS.explainRoutingInput,
          outputSchema: SCHEMAS.explainRoutingOutput,
          annotations: READ_ONLY,
        },
        (input: z.output<typeof explainRoutingInput>) => {
          const model = current();
          const file = input.fileName !== undefined || input.fileType !== undefined ? { name: input.fileName, type: input.fileType } : undefined;
          const why = model.explain({
            method: 'POST',
            path: input.path,
            contentType: 'application/json',
            body: { query: input.text },
            ...(file ? { file } : {}),
          });
          return ok({
            model: model.id,
            service: why.prediction.label,
            confidence: why.prediction.confidence,
            probabilities: { ...why.prediction.probabilities },
            topFeatures: why.groups.slice(0, 8).map((g) => ({ feature: g.feature, label: g.label, weight: g.weight })),
          });
        },
      );
    }

    if (deps.routingAnalyst) {
      const analyst = deps.routingAnalyst;
      // Read tools for the gateway (they change nothing here); the chain goes to the sequential-thinking server.
      const ANALYSIS = { readOnlyHint: true, destructiveHint: false, idempotentHint: false, openWorldHint: true } as const;
      tool(
        'analyze_routing',
        {
          title: 'Analyze a routing decision step by step',
          description:
            'The routing decision for a request text (or the id of one of your recent requests) as numbered steps: model probabilities and top features, health and breaker state of the candidates, split side, fallbacks, final upstream; a close runner-up opens a branch. Recorded through the sequential-thinking server (recordedBy), or built locally when it is down.',
          inputSchema: SCHEMAS.analyzeRoutingInput,
          outputSchema: SCHEMAS.analyzeRoutingOutput,
          annotations: ANALYSIS,
        },
        // By request id: only the caller's own requests (any for an admin).
        (input: z.output<typeof analyzeRoutingInput>) =>
          answer(() => analyst.analyze(input, { ...(principal !== null ? { subject: principal.subject } : {}), admin: seesAdminTools(principal) }), AnalysisError),
      );
      tool(
        'review_routing',
        {
          title: 'Review recent routing decisions',
          description:
            'Patterns over the last minutes of routing decisions on this replica: low-confidence share per service, shadow-model disagreements, drift against the evaluation set, the most confused pairs and recommended actions, as a recorded chain (summarised into Memory).',
          inputSchema: SCHEMAS.reviewRoutingInput,
          outputSchema: SCHEMAS.reviewRoutingOutput,
          annotations: ANALYSIS,
        },
        (input: z.output<typeof reviewRoutingInput>) => answer(() => analyst.review(input), AnalysisError),
      );
    }

    if (deps.resetBreakers) {
      const resetBreakers = deps.resetBreakers;
      adminTool(
        'reset_circuit_breaker',
        {
          title: 'Reset a circuit breaker',
          description: 'Close every circuit breaker of a service by hand so traffic flows again now. Needs admin scope (and MFA when configured); audited.',
          inputSchema: SCHEMAS.resetBreakerInput,
          outputSchema: SCHEMAS.resetBreakerOutput,
          annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
        },
        (input: { service: string }) => ok({ service: input.service, reset: resetBreakers(input.service) }),
        (input: { service: string }) => (deps.serviceNames && !deps.serviceNames.includes(input.service) ? `unknown service "${input.service}"` : null),
      );
    }

    if (deps.modelValidation) {
      const validation = deps.modelValidation;
      adminTool(
        'validate_routing_model',
        {
          title: 'Validate the routing model against the HuggingFace reference',
          description:
            'The active routing model on the validation split; the reference zero-shot model found and described (id, revision, license, downloads) through the HuggingFace MCP server (mcp.servers.huggingface); and, with HF_TOKEN or HF_ENDPOINT_URL, its accuracy on `limit` of the same requests. A part that cannot run says why in referenceError/zeroShotError. Needs admin scope (and MFA when configured).',
          inputSchema: SCHEMAS.validateRoutingModelInput,
          outputSchema: SCHEMAS.validateRoutingModelOutput,
          annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: true },
        },
        async (input: z.output<typeof validateRoutingModelInput>) => ok(await validation.validate(input)),
      );
    }

    if (deps.traffic) {
      const traffic = deps.traffic;
      tool(
        'get_traffic_split',
        {
          title: 'Traffic split',
          description: 'Stable/canary split of one route (or all routes that have one): services, live weights, sticky mode, who changed it last, why, and the recent history.',
          inputSchema: SCHEMAS.getTrafficSplitInput,
          outputSchema: SCHEMAS.getTrafficSplitOutput,
          annotations: READ_ONLY,
        },
        (input: z.output<typeof getTrafficSplitInput>) => answer(() => traffic.list(input), TrafficSplitError),
      );
      adminTool(
        'shift_traffic',
        {
          title: 'Shift traffic between stable and canary',
          description:
            'Set the stable/canary weights of a route (integers 0-100 summing to 100) on every replica within a second. Records who and why. Use dry_run: true to check the change first. Needs admin scope (and MFA when configured).',
          inputSchema: SCHEMAS.shiftTrafficInput,
          outputSchema: SCHEMAS.shiftTrafficOutput,
          annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
        },
        (input: z.output<typeof shiftTrafficInput>, who: Principal) => answer(() => traffic.shift(input, who.subject), TrafficSplitError),
      );
    }

    if (deps.mcpServers) {
      const mcpServers = deps.mcpServers;
      tool(
        'list_mcp_servers',
        {
          title: 'Upstream MCP servers',
          description: 'The MCP servers the gateway is a client of (mcp.servers): state, last error, tool count, negotiated protocol revision, breaker, federation prefix.',
          outputSchema: SCHEMAS.listMcpServersOutput,
          annotations: READ_ONLY,
        },
        () => ok(mcpServers.list()),
      );
      adminTool(
        'restart_mcp_server',
        {
          title: 'Restart an upstream MCP server',
          description: "Drop one upstream MCP server's connection and connect again (a stdio server's process is restarted); answers when it is connected or failed. Needs admin scope (and MFA when configured); audited.",
          inputSchema: SCHEMAS.restartMcpServerInput,
          outputSchema: SCHEMAS.restartMcpServerOutput,
          annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: true },
        },
        (input: z.output<typeof restartMcpServerInput>) => answer(() => mcpServers.restart(input), McpServerAdminError),
      );
    }
    const needs = 'Needs admin scope (and MFA when configured); audited.';
    if (deps.migrations) {
      const migrations = deps.migrations;
      const changing = { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false } as const;
      adminTool(
        'start_migration',
        {
          title: 'Start a progressive migration',
          description: `Move a split route's traffic to its canary in steps (default 10, 25, 50, 100%), each held for stepSeconds and minRequests, with gates on the canary's error rate and p99 from every replica; a failed gate rolls back to 0% by itself. Tracked in GitHub when configured. Use dry_run: true first. ${needs}`,
          inputSchema: SCHEMAS.startMigrationInput,
          outputSchema: SCHEMAS.migrationOutput,
          annotations: changing,
        },
        (input: z.output<typeof startMigrationInput>, who: Principal) => answer(() => migrations.start(input, who.subject), MigrationError),
      );
      adminTool(
        'get_migration',
        {
          title: 'A migration',
          description: `One migration by id, or the newest on a route: state (running, paused, completed, rolled_back, aborted), the figures of each step, why it ended, and its GitHub calls. ${needs}`,
          inputSchema: SCHEMAS.migrationRefInput,
          outputSchema: SCHEMAS.migrationOutput,
          annotations: READ_ONLY,
        },
        (input: z.output<typeof migrationRefInput>) => answer(() => migrations.get(input), MigrationError),
      );
      adminTool(
        'list_migrations',
        {
          title: 'Migrations',
          description: `Every migration (newest first), optionally of one state or route. ${needs}`,
          inputSchema: SCHEMAS.listMigrationsInput,
          outputSchema: SCHEMAS.listMigrationsOutput,
          annotations: READ_ONLY,
        },
        (input: z.output<typeof listMigrationsInput>) => answer(() => migrations.list(input), MigrationError),
      );
      for (const [name, action, title] of [
        ['approve_migration_step', 'approve', 'Approve the next step'],
        ['pause_migration', 'pause', 'Pause a migration'],
        ['resume_migration', 'resume', 'Resume a migration'],
      ] as const) {
        adminTool(
          name,
          { title, description: `${title} (by id, or the newest migration of a route). ${needs}`, inputSchema: SCHEMAS.migrationRefInput, outputSchema: SCHEMAS.migrationOutput, annotations: changing },
          (input: z.output<typeof migrationRefInput>, who: Principal) => answer(() => migrations.change(action, input, who.subject), MigrationError),
        );
      }
      for (const [name, how, description] of [
        ['rollback_migration', 'rollback', 'Roll a migration back: the canary goes to 0% now; the reason is recorded and posted on the tracking issue.'],
        ['abort_migration', 'abort', 'Stop a migration: the canary goes back to its weight before the migration.'],
      ] as const) {
        adminTool(
          name,
          { title: name.replace('_', ' '), description: `${description} ${needs}`, inputSchema: SCHEMAS.stopMigrationInput, outputSchema: SCHEMAS.migrationOutput, annotations: changing },
          (input: z.output<typeof stopMigrationInput>, who: Principal) => answer(() => migrations.stop(how, input, who.subject), MigrationError),
        );
      }
    }
    if (deps.legacyUsage) {
      const usage = deps.legacyUsage;
      adminTool(
        'legacy_usage',
        {
          title: 'Legacy endpoint use',
          description: `Who still calls the legacy endpoints (/query, /upload, /status, ...): calls and last seen per endpoint and caller, with each endpoint's sunset. ${needs}`,
          inputSchema: SCHEMAS.legacyUsageInput,
          outputSchema: SCHEMAS.legacyUsageOutput,
          annotations: READ_ONLY,
        },
        async (input: z.output<typeof legacyUsageInput>) => ok(await usage.list(input)),
      );
    }
  }

  // Resources: the same views as the tools, for clients that read rather than call.
  const listedResources = new Set<string>();
  const resource = (name: string, uri: string, description: string, read: () => unknown, cacheHint?: CacheHint) => {
    listedResources.add(uri);
    if (!reach.resources) return;
    server.registerResource(name, uri, { description, mimeType: JSON_MIME, ...(cacheHint ? { cacheHint } : {}) }, async () => ({
      contents: [{ uri, mimeType: JSON_MIME, text: JSON.stringify(await read()) }],
    }));
  };
  resource('routes', 'gateway://routes', 'The route table', () => routes.listRoutes());
  resource('services', 'gateway://services', 'The backend services and their health', () => ({ ...routes.listServices(), health: routes.serviceHealth() }));
  resource('config', 'gateway://config', 'The running configuration, secrets redacted', () => deps.redactedConfig(), CONFIG_CACHE_HINT);
  if (deps.mcpServers) {
    const mcpServers = deps.mcpServers;
    resource('mcp-servers', 'gateway://mcp-servers', 'The upstream MCP servers the gateway is a client of, and their state', () => mcpServers.list());
  }
  resource('metrics-summary', 'gateway://metrics/summary', 'Traffic summary over the last 5 minutes', () => deps.metrics.summary({ minutes: 5 }));
  if (deps.migrations) {
    const migrations = deps.migrations;
    resource('migrations', 'gateway://migrations', 'Progressive migrations, newest first, with the figures of each step (updates announced)', () => migrations.list());
  }

  // 2025 sessions subscribe with resources/subscribe (their updates come on the session's GET
  // stream, from any replica: ./legacy.ts); 2026-07-28 clients name the resources on
  // subscriptions/listen instead, which the SDK serves from the event bus.
  const session = scope.session;
  if (scope.era === 'legacy' && session !== undefined) {
    server.server.setRequestHandler('resources/subscribe', async (request) => {
      const { uri } = request.params;
      const refused = subscriptionRefusal(uri, session.subscriptions, listedResources);
      if (refused !== null) throw new ProtocolError(ProtocolErrorCode.InvalidParams, refused, { uri });
      await session.subscribe(uri);
      return {};
    });
    server.server.setRequestHandler('resources/unsubscribe', async (request) => {
      await session.unsubscribe(request.params.uri);
      return {};
    });
  }

  if (reach.prompts) registerPrompts(server, deps);

  // Upstream tools, resources and prompts, after the gateway's own (whose names they never shadow).
  deps.federation?.register(server, {
    get principal() {
      return scope.principal;
    },
    era: scope.era,
    method: scope.method,
    reach,
    get report() {
      return scope.report;
    },
    get client() {
      return scope.client;
    },
    get askClient() {
      return scope.askClient;
    },
  });

  return server;
}

/** The gateway's own prompts. */
function registerPrompts(server: McpServer, deps: GatewayMcpServerDeps): void {
  const { routes } = deps;
  server.registerPrompt(
    'diagnose_service',
    {
      title: 'Diagnose a failing service',
      description: 'Gathers the live health, traffic and errors of one service and asks for a diagnosis and next steps.',
      argsSchema: promptArgs.diagnose,
    },
    async ({ service }) => {
      const health = routes.serviceHealth();
      const summary = await deps.metrics.summary({ minutes: 15 });
      const facts = {
        health: health.services.find((s) => s.service === service) ?? null,
        traffic: summary.services.find((s) => s.service === service) ?? null,
        routes: routes.listRoutes().routes.filter((r) => r.service === service),
      };
      return userPrompt(
        `The "${service}" service behind the Unified Gateway may be failing. Live data from the gateway:\n` +
          `${JSON.stringify(facts, null, 2)}\n` +
          'Say whether it is failing, what the data points to (upstream down, timeouts, 5xx, disabled route), ' +
          'and which gateway tools to use next (get_metrics, query_metric, get_route).',
      );
    },
  );

  if (deps.traffic) {
    const traffic = deps.traffic;
    server.registerPrompt(
      'plan_canary_rollout',
      {
        title: 'Plan a canary rollout',
        description: "Gathers a split route's live weights, history and the stable and canary services' health and traffic, and asks for a step-by-step rollout plan with rollback criteria.",
        argsSchema: promptArgs.canary,
      },
      async ({ route }) => {
        let split;
        try {
          split = traffic.list({ route }).splits[0]!;
        } catch (err) {
          if (err instanceof TrafficSplitError) throw new ProtocolError(ProtocolErrorCode.InvalidParams, err.message);
          throw err;
        }
        const health = routes.serviceHealth();
        const summary = await deps.metrics.summary({ minutes: 15 });
        const sides = [split.stableService, split.canaryService];
        const facts = {
          split,
          health: health.services.filter((s) => sides.includes(s.service)),
          traffic: summary.services.filter((s) => sides.includes(s.service)),
        };
        return userPrompt(
          `Plan the canary rollout of route "${route}" on the Unified Gateway: ${split.stableService} (stable) to ${split.canaryService} (canary), ` +
            `now ${split.weights.stable}/${split.weights.canary}. Live data from the gateway:\n${JSON.stringify(facts, null, 2)}\n` +
            'Propose the next steps as canary weights with how long to hold each, the error-rate and p99-latency limits that ' +
            'trigger a rollback to 0, and check each step with get_metrics before applying it with shift_traffic (dry_run first).',
        );
      },
    );
  }

}
