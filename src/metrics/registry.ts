import { readdir } from 'node:fs/promises';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { TalliedCounter, TalliedHistogram } from './tallied.js';

/**
 * Every metric the gateway exposes, on a registry of its own (not prom-client's global one)
 * so tests and several gateways in one process never collide. Metrics that later stages
 * fill (routing decisions, breaker state, threat detections) are registered here up front
 * so their names and labels are fixed in one place. Those counted on every request are
 * tallied (src/metrics/tallied.ts): prom-client's per-call label hashing was a measurable share
 * of the request path.
 */
export interface GatewayMetrics {
  readonly registry: Registry;
  readonly requestsTotal: TalliedCounter<'method' | 'endpoint' | 'status'>;
  readonly requestDuration: TalliedHistogram<'method' | 'endpoint' | 'status'>;
  readonly serviceRequests: TalliedCounter<'service' | 'status' | 'side'>;
  readonly upstreamDuration: TalliedHistogram<'service'>;
  /** A proxied request's time less its upstream wait (src/proxy/request-path.ts), finely bucketed. */
  readonly proxyOverhead: TalliedHistogram<'service'>;
  readonly healthCheckDuration: Histogram<'deep'>;
  readonly serviceUp: Gauge<'service'>;
  readonly serviceProbeDuration: Histogram<'service'>;
  readonly routingDecisions: Counter<'service' | 'auto_detected'>;
  /** Shadow routing model vs the active one (src/routing/model): agree, disagree, dropped (queue full). */
  readonly routingShadowAgreement: Counter<'result'>;
  readonly circuitBreakerState: Gauge<'service'>;
  /** Upstream retries (src/resilience/retry.ts): retried, or budget_exhausted (a retry the budget refused). */
  readonly upstreamRetries: Counter<'service' | 'result'>;
  readonly threatLevelDetections: Counter<'level'>;
  // --- shared state and rate limiting (src/state, src/ratelimit) ---
  readonly stateStoreUp: Gauge<'backend'>;
  readonly stateStoreFallbacks: Counter;
  readonly rateLimitRequests: TalliedCounter<'scope' | 'result'>;
  readonly threatActions: Counter<'action'>;
  readonly blockedClients: Gauge;
  readonly inputRejections: Counter<'rule' | 'location'>;
  /** Response cache lookups (src/cache): hit, miss, bypass, coalesced, not_modified, stale. */
  readonly cacheRequests: TalliedCounter<'result'>;
  readonly mcpRequests: Counter<'method' | 'tool' | 'status'>;
  // --- WebSockets (src/ws): `route` is a route id or `events` (/v1/events) ---
  readonly wsConnections: Gauge<'route'>;
  /** direction: `in` (client to gateway) or `out` (gateway to client). */
  readonly wsMessages: Counter<'route' | 'direction'>;
  readonly wsBytes: Counter<'route' | 'direction'>;
  /** by: client, upstream or gateway (limits, idle, shutdown); code: 1000-1015, or 3xxx / 4xxx. */
  readonly wsCloses: Counter<'route' | 'by' | 'code'>;
  /** Operational-memory recorder (mcp/integrations/memory): queued, written, dropped (queue full), failed (write refused). */
  readonly memoryEvents: Counter<'outcome'>;
  // --- migration (src/migration) ---
  /** Calls of legacy endpoints per endpoint and caller (bounded: the rest is `other`). */
  readonly legacyRequests: Counter<'endpoint' | 'caller'>;
  /** Canary percent of each route's running migration (0: none, or rolled back). */
  readonly migrationCanaryPercent: Gauge<'route'>;
  /** Gate failures that rolled a migration back, by gate. */
  readonly migrationGateFailures: Counter<'route' | 'gate'>;
  /** The canary's error ratio and p99 in the current step's window, as the controller last evaluated them. */
  readonly migrationCanaryErrorRatio: Gauge<'route'>;
  readonly migrationCanaryP99: Gauge<'route'>;
  // --- the Security and Business Intelligence dashboards (docker/grafana/dashboards) ---
  /** Requests refused by the auth stage, by catalogue code (GW_AUTH_*). */
  readonly authFailures: Counter<'reason'>;
  /** Requests by the kind of caller: anonymous, api-key, jwt. */
  readonly callerRequests: TalliedCounter<'caller_class'>;
  /** The routing model's confidence in the service it picked (model decisions only). */
  readonly routingConfidence: Histogram<'service'>;
}

/**
 * prom-client's default metrics, with `process_open_fds` read off the event loop: the default
 * collector lists /proc/self/fd synchronously, 4-20 ms on the event loop per scrape with 3,000
 * open descriptors (a gateway with 1,000 proxied WebSockets has two sockets each), which every
 * frame relayed meanwhile waits for. Same name, help and value; the listing runs on libuv's pool.
 */
function defaultMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry });
  if (registry.getSingleMetric('process_open_fds') === undefined) return; // not Linux
  registry.removeSingleMetric('process_open_fds');
  new Gauge({
    name: 'process_open_fds',
    help: 'Number of open file descriptors.',
    registers: [registry],
    async collect() {
      try {
        // Minus the descriptor the listing itself held open, as prom-client counts.
        this.set((await readdir('/proc/self/fd')).length - 1);
      } catch {
        // no /proc: the metric keeps its last value
      }
    },
  });
}

/** gateway_proxy_overhead_seconds' buckets: 0.1 ms to 100 ms. */
export const PROXY_OVERHEAD_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1] as const;

export function createMetrics(options: { durationBuckets: readonly number[]; defaultMetrics?: boolean }): GatewayMetrics {
  const registry = new Registry();
  if (options.defaultMetrics !== false) defaultMetrics(registry);
  const buckets = [...options.durationBuckets];
  const registers = [registry];
  return {
    registry,
    requestsTotal: new TalliedCounter({
      name: 'gateway_requests_total',
      help: 'Requests answered by the gateway, by method, route pattern and status code',
      labelNames: ['method', 'endpoint', 'status'],
      registers,
    }),
    requestDuration: new TalliedHistogram({
      name: 'gateway_request_duration_seconds',
      help: 'Time from request received to response finished, by method, route pattern and status code',
      labelNames: ['method', 'endpoint', 'status'],
      buckets,
      registers,
    }),
    serviceRequests: new TalliedCounter({
      name: 'gateway_service_requests',
      help: 'Requests forwarded to each backend service, by upstream status code (or error class) and traffic-split side',
      labelNames: ['service', 'status', 'side'],
      registers,
    }),
    upstreamDuration: new TalliedHistogram({
      name: 'gateway_upstream_duration_seconds',
      help: 'Time until the upstream answered with headers, per service',
      labelNames: ['service'],
      buckets,
      registers,
    }),
    proxyOverhead: new TalliedHistogram({
      name: 'gateway_proxy_overhead_seconds',
      help: 'Time the gateway itself took on a proxied request (received to answer going out, less the upstream wait), per service',
      labelNames: ['service'],
      // Fixed and fine: what a proxy adds is judged in fractions of a millisecond (issue 18).
      buckets: PROXY_OVERHEAD_BUCKETS,
      registers,
    }),
    healthCheckDuration: new Histogram({
      name: 'gateway_health_check_duration_seconds',
      help: 'Time to answer /healthz (deep="1" when it probed the services now)',
      labelNames: ['deep'],
      buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5],
      registers,
    }),
    serviceUp: new Gauge({
      name: 'gateway_service_up',
      help: 'Last health probe result per service (1 up, 0 down)',
      labelNames: ['service'],
      registers,
    }),
    serviceProbeDuration: new Histogram({
      name: 'gateway_service_probe_duration_seconds',
      help: 'Duration of background health probes per service',
      labelNames: ['service'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5],
      registers,
    }),
    routingDecisions: new Counter({
      name: 'gateway_routing_decisions',
      help: 'Routing decisions by chosen service and whether the routing model chose it',
      labelNames: ['service', 'auto_detected'],
      registers,
    }),
    routingShadowAgreement: new Counter({
      name: 'gateway_routing_shadow_agreement_total',
      help: 'Requests the shadow routing model also scored: agree or disagree with the active model, or dropped (shadow queue full)',
      labelNames: ['result'],
      registers,
    }),
    circuitBreakerState: new Gauge({
      name: 'gateway_circuit_breaker_state',
      help: 'Circuit breaker state per service: 0 closed, 1 half-open, 2 open',
      labelNames: ['service'],
      registers,
    }),
    upstreamRetries: new Counter({
      name: 'gateway_upstream_retries_total',
      help: 'Upstream retries per service: retried, or budget_exhausted (a retry the retry budget refused)',
      labelNames: ['service', 'result'],
      registers,
    }),
    inputRejections: new Counter({
      name: 'gateway_input_rejections_total',
      help: 'Requests refused by input validation, by rule class and where the input was',
      labelNames: ['rule', 'location'],
      registers,
    }),
    mcpRequests: new Counter({
      name: 'gateway_mcp_requests_total',
      help: 'MCP requests answered by the gateway\'s MCP server, by JSON-RPC method, tool (tools/call) and status (ok, error, tool_error, refused)',
      labelNames: ['method', 'tool', 'status'],
      registers,
    }),
    cacheRequests: new TalliedCounter({
      name: 'gateway_cache_requests_total',
      help: 'Response cache lookups, by result (hit, miss, bypass, coalesced, not_modified)',
      labelNames: ['result'],
      registers,
    }),
    threatLevelDetections: new Counter({
      name: 'gateway_threat_level_detections',
      help: 'Clients whose threat level changed, by new level',
      labelNames: ['level'],
      registers,
    }),
    // --- shared state and rate limiting (src/state, src/ratelimit) ---
    stateStoreUp: new Gauge({
      name: 'gateway_state_store_up',
      help: 'Whether the state store answers (1) or this replica decides alone (0), by backend (memory or redis)',
      labelNames: ['backend'],
      registers,
    }),
    stateStoreFallbacks: new Counter({
      name: 'gateway_state_store_fallbacks_total',
      help: 'State store calls this replica answered from its own memory because Redis was down or too slow',
      registers,
    }),
    rateLimitRequests: new TalliedCounter({
      name: 'gateway_rate_limit_requests_total',
      help: 'Rate-limit decisions by scope (ip, principal, route, mcp_tool) and result (allowed, limited)',
      labelNames: ['scope', 'result'],
      registers,
    }),
    threatActions: new Counter({
      name: 'gateway_threat_actions_total',
      help: 'Requests of suspicious clients by the action taken: tightened (medium), tarpitted (high), blocked (critical)',
      labelNames: ['action'],
      registers,
    }),
    blockedClients: new Gauge({
      name: 'gateway_blocked_clients',
      help: 'Clients currently blocked, as this replica knows them',
      registers,
    }),
    wsConnections: new Gauge({ name: 'gateway_websocket_connections', help: 'Open client WebSocket connections', labelNames: ['route'], registers }),
    wsMessages: new Counter({ name: 'gateway_websocket_messages_total', help: 'WebSocket messages relayed, by direction (in: from clients)', labelNames: ['route', 'direction'], registers }),
    wsBytes: new Counter({ name: 'gateway_websocket_bytes_total', help: 'WebSocket payload bytes relayed, by direction (in: from clients)', labelNames: ['route', 'direction'], registers }),
    wsCloses: new Counter({ name: 'gateway_websocket_closes_total', help: 'Client WebSocket connections closed, by who closed and close code', labelNames: ['route', 'by', 'code'], registers }),
    memoryEvents: new Counter({
      name: 'gateway_memory_events_total',
      help: 'Events of the operational-memory recorder: queued, written, dropped (queue full), failed (per flush attempt that could not write them: the memory server refused or was down; they stay queued)',
      labelNames: ['outcome'],
      registers,
    }),
    // --- migration (src/migration) ---
    legacyRequests: new Counter({
      name: 'gateway_legacy_requests_total',
      help: 'Calls of legacy endpoints, by legacy path and caller (API key or JWT subject; past the label budget: other)',
      labelNames: ['endpoint', 'caller'],
      registers,
    }),
    migrationCanaryPercent: new Gauge({
      name: 'gateway_migration_canary_percent',
      help: "Canary percent of each route's running migration, as the controller set it (0: none or rolled back)",
      labelNames: ['route'],
      registers,
    }),
    migrationGateFailures: new Counter({
      name: 'gateway_migration_gate_failures_total',
      help: 'Migration gates that failed and rolled the canary back, by route and gate (error_rate, error_ratio, p99, p99_ratio)',
      labelNames: ['route', 'gate'],
      registers,
    }),
    migrationCanaryErrorRatio: new Gauge({
      name: 'gateway_migration_canary_error_ratio',
      help: "Canary error ratio over the current migration step's window, all replicas (the controller's last evaluation)",
      labelNames: ['route'],
      registers,
    }),
    migrationCanaryP99: new Gauge({
      name: 'gateway_migration_canary_latency_seconds',
      help: "Canary p99 latency over the current migration step's window, all replicas (the controller's last evaluation)",
      labelNames: ['route'],
      registers,
    }),
    authFailures: new Counter({
      name: 'gateway_auth_failures_total',
      help: 'Requests refused by authentication or authorisation, by error code (GW_AUTH_*)',
      labelNames: ['reason'],
      registers,
    }),
    callerRequests: new TalliedCounter({
      name: 'gateway_caller_requests_total',
      help: 'Requests by caller class: anonymous, api-key, jwt',
      labelNames: ['caller_class'],
      registers,
    }),
    routingConfidence: new Histogram({
      name: 'gateway_routing_confidence',
      help: "The routing model's confidence in the service it picked (model decisions)",
      labelNames: ['service'],
      buckets: [0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1],
      registers,
    }),
  };
}
