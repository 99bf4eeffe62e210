import { createHash } from 'node:crypto';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import { McpServer, type ToolCallback } from '@modelcontextprotocol/sdk/server/mcp.js';
import {
  ErrorCode,
  McpError,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
  type CallToolResult,
  type GetPromptResult,
  type RequestId,
} from '@modelcontextprotocol/sdk/types.js';
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
  metricsSummaryInput,
  metricsSummaryOutput,
  queryMetricInput,
  queryMetricOutput,
  UnknownMetricError,
  type MetricsService,
} from '../../src/admin/metrics-service.js';
import { accessRefusal, adminAccessPolicy } from '../../src/admin/access.js';
import { listBlockedClientsOutput, unblockClientInput, type BlockedClientsService } from '../../src/admin/blocked-clients.js';
import type { Principal } from '../../src/auth/principal.js';
import { grants } from '../../src/auth/scopes.js';
import type { RoutingModel } from '../../src/routing/model/model.js';
import {
  getTrafficSplitInput,
  getTrafficSplitOutput,
  shiftTrafficInput,
  shiftTrafficOutput,
  TrafficSplitError,
  type TrafficService,
} from '../../src/admin/traffic-service.js';
import { z } from 'zod';
import { requestPrincipal } from './auth.js';

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

/*
 * The gateway as an MCP server: tools are thin adapters over the admin service layer
 * (src/admin), so the MCP and REST faces always agree. Every request is authorised by its own
 * credential, not by the one that opened the session: the principal of the HTTP request a
 * message came with reaches the handlers as the SDK's `extra.authInfo` (./auth.ts). Read tools
 * need `read` (checked when /mcp is reached); the admin tools (mutating ones, and
 * list_blocked_clients) follow the admin services' rule, `admin` scope plus MFA when
 * configured (src/admin/access.ts), checked per call, and are not listed for a request whose
 * credential lacks the scope (./observe.ts). Every tool call is audited. Transports:
 * Streamable HTTP (./http.ts) and, through the CLI, stdio relayed to it.
 */

/** The resources whose changes a subscribed session hears (notifications/resources/updated). */
export const SUBSCRIBABLE_RESOURCES = ['gateway://routes', 'gateway://services'] as const;
export type SubscribableResource = (typeof SUBSCRIBABLE_RESOURCES)[number];

/** Subscriptions one session may hold (they are kept in its state-store record, so bounded). */
export const MAX_SUBSCRIPTIONS_PER_SESSION = 32;
const MAX_SUBSCRIBE_URI_LENGTH = 1024;
/** An absolute URI (RFC 3986 scheme, then something, no whitespace). */
const ABSOLUTE_URI = /^[a-z][a-z0-9+.-]*:\S+$/i;
/** The gateway's own resource namespace: it knows every resource in it. */
const GATEWAY_SCHEME = 'gateway://';

/** One audited tool call: arguments are hashed, never logged (they may carry client ids or reasons). */
export interface McpAuditEntry {
  readonly tool: string;
  readonly principal: string;
  readonly argsHash: string;
  readonly result: 'ok' | 'refused' | 'failed';
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
  /** The redacted configuration, for the gateway://config resource. */
  readonly redactedConfig: () => unknown;
  /** Traffic splits (get_traffic_split, shift_traffic, the canary prompt). */
  readonly traffic?: TrafficService;
  /** Tells the session when a subscribable resource changed (traffic shift, health change). */
  readonly resourceChanges?: (listener: (uri: SubscribableResource) => void) => () => void;
  /** Subscriptions of a session restored on another replica (./http.ts). */
  readonly subscriptions?: ReadonlySet<string>;
  /** Called when the session's subscriptions change, to keep them with the session. */
  readonly onSubscriptionsChange?: (uris: readonly string[]) => void;
  /**
   * Request ids of tool calls refused for a missing scope or second factor: the session's
   * observer (./observe.ts), which audits every call, reads it to tell refusals apart.
   */
  readonly refused?: Set<RequestId>;
  readonly version: string;
}

/**
 * The tools behind the admin services' access rule (admin scope, and MFA when configured): the
 * ones that change the gateway, and list_blocked_clients (it shows clients' addresses, which
 * REST shows to admins only).
 */
export const ADMIN_TOOLS = ['shift_traffic', 'unblock_client', 'reset_circuit_breaker', 'list_blocked_clients'] as const;

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
  ...ADMIN_TOOLS,
]);

const NO_ADMIN_TOOLS: ReadonlyMap<string, string> = new Map();
const ADMIN_SCOPE_NEEDED: ReadonlyMap<string, string> = new Map(ADMIN_TOOLS.map((name) => [name, 'GW_AUTH_INSUFFICIENT_SCOPE: this tool needs the "admin" scope'] as const));

/**
 * The admin tools a request's principal lacks the scope for, with why: not listed for that
 * request, and a call is answered with that refusal (./observe.ts).
 */
export function hiddenTools(principal: Principal | null): ReadonlyMap<string, string> {
  return principal !== null && grants(principal.scopes, 'admin') ? NO_ADMIN_TOOLS : ADMIN_SCOPE_NEEDED;
}

/** Stable short hash of a tool's arguments for the audit line. */
export function argsHash(args: unknown): string {
  return createHash('sha256').update(JSON.stringify(args ?? {})).digest('hex').slice(0, 16);
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

export function createGatewayMcpServer(deps: GatewayMcpServerDeps): McpServer {
  const server = new McpServer(
    { name: 'unified-gateway', version: deps.version },
    {
      capabilities: { resources: { subscribe: true, listChanged: false }, logging: {} },
      instructions:
        'Unified Gateway of the AI Village services. Read tools: list_routes, get_route, list_services, get_service_health, get_metrics, query_metric, get_traffic_split, explain_routing. Admin tools (admin scope, and MFA when the gateway requires it; each request is checked with its own credential): shift_traffic (use dry_run first), unblock_client, reset_circuit_breaker, list_blocked_clients.',
    },
  );
  const { routes } = deps;
  const adminPolicy = adminAccessPolicy(deps.requireMfaForAdmin);
  /** Tool results that are refusals (missing scope/MFA), for the audit line. */
  const refusals = new WeakSet<CallToolResult>();
  /** registerTool, telling the session's observer which calls were refusals (it audits every call). */
  const tool = ((name: string, config: object, handler: (...args: never[]) => CallToolResult | Promise<CallToolResult>) =>
    server.registerTool(name, config as never, (async (...args: unknown[]) => {
      const result = await (handler as (...a: unknown[]) => CallToolResult | Promise<CallToolResult>)(...args);
      const extra = args.at(-1) as { requestId?: RequestId } | undefined;
      if (refusals.has(result) && extra?.requestId !== undefined) deps.refused?.add(extra.requestId);
      return result;
    }) as ToolCallback)) as McpServer['registerTool'];
  /**
   * An admin tool's body behind the admin access rule, checked for the principal of the
   * request this call came with (plus the tool's own `check`); it runs as that principal. A
   * refusal names the error REST would answer with, and is marked so that the session's
   * audit line says "refused".
   */
  const adminCall = async (
    extra: { readonly authInfo?: AuthInfo | undefined },
    run: (principal: Principal) => CallToolResult | Promise<CallToolResult>,
    check: () => string | null = () => null,
  ): Promise<CallToolResult> => {
    const principal = requestPrincipal(extra);
    const denied = accessRefusal(principal, adminPolicy);
    const refused = denied !== null ? `${denied.code}: ${denied.message}` : check();
    if (refused === null && principal !== null) return run(principal);
    const result = toolError(refused ?? 'GW_AUTH_MISSING_CREDENTIALS');
    refusals.add(result);
    return result;
  };

  tool(
    'list_routes',
    {
      title: 'List routes',
      description: 'Every route of the gateway: path prefix, service, methods, whether it is enabled, its auth requirements and validation mode.',
      outputSchema: listRoutesOutput,
      annotations: READ_ONLY,
    },
    () => ok(routes.listRoutes()),
  );

  tool(
    'get_route',
    {
      title: 'Explain a route',
      description: 'Which route and service would serve a method and path, where it would be sent, and the scope and MFA it needs.',
      inputSchema: getRouteInput,
      outputSchema: getRouteOutput,
      annotations: READ_ONLY,
    },
    (input) => ok(routes.getRoute(input)),
  );

  tool(
    'list_services',
    {
      title: 'List services',
      description: 'The backend services: whether each is enabled (and what disabled it), upstream URLs, health path, timeout and routes.',
      outputSchema: listServicesOutput,
      annotations: READ_ONLY,
    },
    () => ok(routes.listServices()),
  );

  tool(
    'get_service_health',
    {
      title: 'Service health',
      description: "The health prober's last snapshot (no upstream call): overall status and each service's status, latency and last check.",
      inputSchema: serviceHealthInput,
      outputSchema: serviceHealthOutput,
      annotations: READ_ONLY,
    },
    (input) => answer(() => routes.serviceHealth(input), UnknownServiceError),
  );

  tool(
    'get_metrics',
    {
      title: 'Traffic summary',
      description:
        "Per route and per service over the last N minutes: requests, request rate, error rate, and p50/p95/p99 latency, from the gateway's own metrics.",
      inputSchema: metricsSummaryInput,
      outputSchema: metricsSummaryOutput,
      annotations: READ_ONLY,
    },
    async (input) => ok(await deps.metrics.summary(input)),
  );

  tool(
    'query_metric',
    {
      title: 'Read one metric',
      description: 'The current series of one Prometheus metric of the gateway (e.g. gateway_circuit_breaker_state), filtered by label values.',
      inputSchema: queryMetricInput,
      outputSchema: queryMetricOutput,
      annotations: READ_ONLY,
    },
    (input) => answer(() => deps.metrics.queryMetric(input), UnknownMetricError),
  );

  if (deps.blockedClients) {
    const blocked = deps.blockedClients;
    tool(
      'list_blocked_clients',
      {
        title: 'Blocked clients',
        description: 'Clients the suspicious-client detector (or an admin) blocked, with reason, strikes and time left. Needs admin scope (and MFA when configured), as GET /admin/blocked-clients.',
        outputSchema: listBlockedClientsOutput,
        annotations: READ_ONLY,
      },
      (extra) => adminCall(extra, async () => ok(await blocked.list())),
    );
    tool(
      'unblock_client',
      {
        title: 'Unblock a client',
        description: 'Lift a block on every replica and forget the client\'s threat score. Needs admin scope (and MFA when configured).',
        inputSchema: unblockClientInput,
        outputSchema: z.object({ client: z.string(), unblocked: z.boolean() }),
        annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
      },
      (input, extra) => adminCall(extra, async () => ok(await blocked.unblock(input))),
    );
  }

  if (deps.routingModel) {
    const current = deps.routingModel;
    tool(
      'explain_routing',
      {
        title: 'Explain a routing decision',
        description: 'Run the active routing model on a request text: the service it picks, the probability of each service and the features that weighed most.',
        inputSchema: explainRoutingInput,
        outputSchema: explainRoutingOutput,
        annotations: READ_ONLY,
      },
      (input) => {
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

  if (deps.resetBreakers) {
    const resetBreakers = deps.resetBreakers;
    tool(
      'reset_circuit_breaker',
      {
        title: 'Reset a circuit breaker',
        description: "Close every circuit breaker of a service by hand so traffic flows again now. Needs admin scope (and MFA when configured); audited.",
        inputSchema: z.strictObject({ service: z.string().min(1).max(64) }),
        outputSchema: z.object({ service: z.string(), reset: z.number().int().describe('Breakers that were open or half-open') }),
        annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
      },
      (input, extra) =>
        adminCall(
          extra,
          () => ok({ service: input.service, reset: resetBreakers(input.service) }),
          () => (deps.serviceNames && !deps.serviceNames.includes(input.service) ? `unknown service "${input.service}"` : null),
        ),
    );
  }

  if (deps.traffic) {
    const traffic = deps.traffic;
    tool(
      'get_traffic_split',
      {
        title: 'Traffic split',
        description: 'Stable/canary split of one route (or all routes that have one): services, live weights, sticky mode, who changed it last, why, and the recent history.',
        inputSchema: getTrafficSplitInput,
        outputSchema: getTrafficSplitOutput,
        annotations: READ_ONLY,
      },
      (input) => answer(() => traffic.list(input), TrafficSplitError),
    );
    tool(
      'shift_traffic',
      {
        title: 'Shift traffic between stable and canary',
        description:
          'Set the stable/canary weights of a route (integers 0-100 summing to 100) on every replica within a second. Records who and why. Use dry_run: true to check the change first. Needs admin scope (and MFA when configured).',
        inputSchema: shiftTrafficInput,
        outputSchema: shiftTrafficOutput,
        annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
      },
      (input, extra) => adminCall(extra, (principal) => answer(() => traffic.shift(input, principal.subject), TrafficSplitError)),
    );
  }

  // Resources: the same views as the tools, for clients that read rather than call.
  const listedResources = new Set<string>();
  const resource = (name: string, uri: string, description: string, read: () => unknown | Promise<unknown>) => {
    listedResources.add(uri);
    return server.registerResource(name, uri, { description, mimeType: JSON_MIME }, async () => ({
      contents: [{ uri, mimeType: JSON_MIME, text: JSON.stringify(await read()) }],
    }));
  };
  resource('routes', 'gateway://routes', 'The route table', () => routes.listRoutes());
  resource('services', 'gateway://services', 'The backend services and their health', () => ({ ...routes.listServices(), health: routes.serviceHealth() }));
  resource('config', 'gateway://config', 'The running configuration, secrets redacted', () => deps.redactedConfig());
  resource('metrics-summary', 'gateway://metrics/summary', 'Traffic summary over the last 5 minutes', () => deps.metrics.summary({ minutes: 5 }));

  // resources/subscribe: routes (traffic shifts) and services (health changes) tell the
  // session when they change; the session hears it on its SSE stream.
  //
  // Which URIs may be subscribed: the MCP spec (2025-06-18 and 2025-11-25, server/resources
  // "Subscriptions") puts no limit on them and a subscription is only a request for
  // notifications/resources/updated, so a subscription to a resource that never announces a
  // change (gateway://config, gateway://metrics/summary) or to a URI that is not the
  // gateway's is accepted and simply never fires. The official conformance suite
  // (resources-subscribe / resources-unsubscribe, test/e2e/mcp-conformance.test.ts)
  // subscribes to its fixture URI test://watched-resource and expects {}. What is still
  // refused (spec: servers MUST validate resource URIs): an unknown gateway:// URI (the
  // gateway knows every resource of its own namespace, so that is a typo worth telling the
  // agent about), a string that is not an absolute URI or is too long, and more than
  // MAX_SUBSCRIPTIONS_PER_SESSION subscriptions (they are stored with the session).
  const subscribed = new Set<string>(deps.subscriptions ?? []);
  const subscriptionsChanged = () => deps.onSubscriptionsChange?.([...subscribed]);
  server.server.setRequestHandler(SubscribeRequestSchema, (request) => {
    const { uri } = request.params;
    if (uri.length > MAX_SUBSCRIBE_URI_LENGTH || !ABSOLUTE_URI.test(uri)) {
      throw new McpError(ErrorCode.InvalidParams, `cannot subscribe to ${uri.slice(0, 200)}: not an absolute URI of at most ${MAX_SUBSCRIBE_URI_LENGTH} characters`);
    }
    if (uri.startsWith(GATEWAY_SCHEME) && !listedResources.has(uri)) {
      throw new McpError(ErrorCode.InvalidParams, `unknown resource ${uri}; updates are sent for: ${SUBSCRIBABLE_RESOURCES.join(', ')}`, { uri });
    }
    if (!subscribed.has(uri) && subscribed.size >= MAX_SUBSCRIPTIONS_PER_SESSION) {
      throw new McpError(ErrorCode.InvalidParams, `a session may hold at most ${MAX_SUBSCRIPTIONS_PER_SESSION} subscriptions; unsubscribe first`);
    }
    subscribed.add(uri);
    subscriptionsChanged();
    return {};
  });
  server.server.setRequestHandler(UnsubscribeRequestSchema, (request) => {
    if (subscribed.delete(request.params.uri)) subscriptionsChanged();
    return {};
  });
  const stopListening = deps.resourceChanges?.((uri) => {
    if (subscribed.has(uri) && server.isConnected()) void server.server.sendResourceUpdated({ uri }).catch(() => {});
  });
  if (stopListening !== undefined) {
    const previous = server.server.onclose;
    server.server.onclose = () => {
      stopListening();
      previous?.();
    };
  }

  server.registerPrompt(
    'diagnose_service',
    {
      title: 'Diagnose a failing service',
      description: 'Gathers the live health, traffic and errors of one service and asks for a diagnosis and next steps.',
      argsSchema: { service: z.string().describe('Service name, e.g. knowledge') },
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
        argsSchema: { route: z.string().describe('Id of a route with a traffic split (see get_traffic_split)') },
      },
      async ({ route }) => {
        let split;
        try {
          split = traffic.list({ route }).splits[0]!;
        } catch (err) {
          if (err instanceof TrafficSplitError) throw new McpError(ErrorCode.InvalidParams, err.message);
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

  return server;
}
