import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
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

/*
 * The gateway as an MCP server: tools are thin adapters over the admin service layer
 * (src/admin), so the MCP and REST faces always agree. This first part has the read-only
 * tools on routes, services and health; transports (Streamable HTTP at /mcp, stdio), auth per
 * tool, the traffic-split and metrics tools come with the rest of the MCP issue.
 */

export interface GatewayMcpServerDeps {
  readonly routes: RoutesService;
  readonly metrics: MetricsService;
  readonly version: string;
}

/** Success: the structured result, and the same as text for clients without structured content. */
function ok(structured: Record<string, unknown>): CallToolResult {
  return { content: [{ type: 'text', text: JSON.stringify(structured) }], structuredContent: structured };
}

/** A failure the caller can act on: a tool result with isError, not a protocol error. */
function toolError(message: string): CallToolResult {
  return { content: [{ type: 'text', text: message }], isError: true };
}

const READ_ONLY = { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false } as const;

export function createGatewayMcpServer(deps: GatewayMcpServerDeps): McpServer {
  const server = new McpServer({ name: 'unified-gateway', version: deps.version });
  const { routes } = deps;

  server.registerTool(
    'list_routes',
    {
      title: 'List routes',
      description: 'Every route of the gateway: path prefix, service, methods, whether it is enabled, its auth requirements and validation mode.',
      outputSchema: listRoutesOutput,
      annotations: READ_ONLY,
    },
    () => ok(routes.listRoutes()),
  );

  server.registerTool(
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

  server.registerTool(
    'list_services',
    {
      title: 'List services',
      description: 'The backend services: whether each is enabled (and what disabled it), upstream URLs, health path, timeout and routes.',
      outputSchema: listServicesOutput,
      annotations: READ_ONLY,
    },
    () => ok(routes.listServices()),
  );

  server.registerTool(
    'get_service_health',
    {
      title: 'Service health',
      description: "The health prober's last snapshot (no upstream call): overall status and each service's status, latency and last check.",
      inputSchema: serviceHealthInput,
      outputSchema: serviceHealthOutput,
      annotations: READ_ONLY,
    },
    (input) => {
      try {
        return ok(routes.serviceHealth(input));
      } catch (err) {
        if (err instanceof UnknownServiceError) return toolError(err.message);
        throw err;
      }
    },
  );

  server.registerTool(
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

  server.registerTool(
    'query_metric',
    {
      title: 'Read one metric',
      description: 'The current series of one Prometheus metric of the gateway (e.g. gateway_circuit_breaker_state), filtered by label values.',
      inputSchema: queryMetricInput,
      outputSchema: queryMetricOutput,
      annotations: READ_ONLY,
    },
    async (input) => {
      try {
        return ok(await deps.metrics.queryMetric(input));
      } catch (err) {
        if (err instanceof UnknownMetricError) return toolError(err.message);
        throw err;
      }
    },
  );

  return server;
}
