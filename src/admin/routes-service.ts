import { z } from 'zod';
import { scopeForMethod } from '../auth/scopes.js';
import type { GatewayConfig, RouteConfig } from '../config/index.js';
import { HTTP_METHODS } from '../config/index.js';
import type { HealthProber } from '../health/prober.js';
import { matchRoute, type RouteTable } from '../routing/route-table.js';
import type { TrafficSplits } from '../routing/traffic-split.js';

/*
 * The admin service for routes and services: one implementation behind the MCP tools
 * (mcp/server) and, later, the REST admin API. Inputs and outputs are zod schemas, the single
 * source of their types and of the MCP tools' input and output schemas.
 */

const authSchema = z.object({
  required: z.boolean(),
  scope: z.enum(['read', 'write', 'admin']).optional().describe('One scope for every method; absent: read for GET/HEAD/OPTIONS, write otherwise'),
  mfa: z.boolean().optional(),
});

export const routeSchema = z.object({
  id: z.string(),
  prefix: z.string().describe('The route covers this path and everything below it'),
  service: z.string(),
  methods: z.array(z.string()).nullable().describe('null: every method'),
  enabled: z.boolean(),
  disabledBy: z.string().optional().describe('The setting that switched the service off'),
  auth: authSchema,
  validation: z.enum(['strict', 'text', 'off']),
  split: z
    .object({
      canaryService: z.string(),
      weights: z.object({ stable: z.number().int(), canary: z.number().int() }),
    })
    .optional()
    .describe('Stable/canary traffic split with its live weights (get_traffic_split for the details)'),
});
export type RouteView = z.infer<typeof routeSchema>;

export const listRoutesOutput = z.object({ routes: z.array(routeSchema) });

export const getRouteInput = z.strictObject({
  method: z.enum(HTTP_METHODS).describe('HTTP method of the request to explain'),
  path: z.string().min(1).max(2048).startsWith('/').describe('Request path (a query string is ignored)'),
});

export const getRouteOutput = z.object({
  match: z.enum(['route', 'method-not-allowed', 'disabled', 'none']),
  route: routeSchema.optional(),
  upstreamUrls: z.array(z.string()).optional().describe('Where the gateway would send it'),
  requiredScope: z.enum(['read', 'write', 'admin']).optional().describe('Scope the caller needs for this method'),
  mfaRequired: z.boolean().optional(),
  allowedMethods: z.array(z.string()).optional(),
  explanation: z.string(),
});

export const serviceSchema = z.object({
  name: z.string(),
  enabled: z.boolean(),
  disabledBy: z.string().optional(),
  urls: z.array(z.string()).describe('Upstream base URLs (credentials hidden)'),
  healthPath: z.string(),
  timeoutMs: z.number().int(),
  routes: z.array(z.string()).describe('Ids of the routes served by this service'),
});

export const listServicesOutput = z.object({ services: z.array(serviceSchema) });

export const serviceHealthInput = z.strictObject({
  service: z.string().min(1).max(64).optional().describe('One service; absent: all'),
});

const healthSchema = z.object({
  service: z.string(),
  status: z.enum(['up', 'down', 'unknown']),
  latencyMs: z.number().nullable(),
  lastCheck: z.string().nullable(),
  httpStatus: z.number().int().optional(),
  error: z.string().optional(),
});

export const serviceHealthOutput = z.object({
  status: z.enum(['ok', 'degraded', 'down']),
  checkedAt: z.string().nullable(),
  services: z.array(healthSchema),
});

export class UnknownServiceError extends Error {
  constructor(readonly service: string, readonly known: readonly string[]) {
    super(`unknown service "${service}" (known: ${known.join(', ')})`);
    this.name = 'UnknownServiceError';
  }
}

/** Upstream URLs may carry credentials (user:pass@host): never shown. */
export const hideCredentials = (u: string) => u.replace(/\/\/[^@/]*@/, '//***@');

export class RoutesService {
  constructor(
    private readonly config: Pick<GatewayConfig, 'routes' | 'services'>,
    private readonly table: RouteTable,
    private readonly prober: Pick<HealthProber, 'snapshot'>,
    private readonly splits?: Pick<TrafficSplits, 'state'>,
  ) {}

  #view(route: RouteConfig): RouteView {
    const service = this.config.services[route.service];
    return {
      id: route.id,
      prefix: route.prefix,
      service: route.service,
      methods: route.methods ? [...route.methods] : null,
      enabled: service?.enabled ?? false,
      ...(service?.disabledBy !== undefined ? { disabledBy: service.disabledBy } : {}),
      auth: { ...route.auth },
      validation: route.validation,
      ...this.#split(route),
    };
  }

  #split(route: RouteConfig): Pick<RouteView, 'split'> {
    const state = this.splits?.state(route.id);
    if (route.split === undefined || state === undefined) return {};
    return { split: { canaryService: route.split.canaryService, weights: { ...state.weights } } };
  }

  listRoutes(): z.infer<typeof listRoutesOutput> {
    return { routes: [...this.table.active, ...this.table.disabled.map((d) => d.route)].map((r) => this.#view(r)) };
  }

  getRoute(input: z.input<typeof getRouteInput>): z.infer<typeof getRouteOutput> {
    const { method, path } = getRouteInput.parse(input);
    const match = matchRoute(this.table, method, path);
    switch (match.kind) {
      case 'none':
        return { match: 'none', explanation: `No route serves ${method} ${path}: the gateway answers 404 GW_ROUTE_NOT_FOUND.` };
      case 'disabled':
        return {
          match: 'disabled',
          route: this.#view(match.route),
          explanation: `${match.route.prefix} belongs to ${match.route.service}, which is disabled (${match.reason}): 404 GW_SERVICE_DISABLED.`,
        };
      case 'method-not-allowed':
        return {
          match: 'method-not-allowed',
          route: this.#view(match.route),
          allowedMethods: [...match.allowed],
          explanation: `${match.route.prefix} accepts ${match.allowed.join(', ')}: ${method} gets 405 GW_ROUTE_METHOD_NOT_ALLOWED.`,
        };
      case 'route': {
        const route = match.route;
        const requiredScope = route.auth.scope ?? scopeForMethod(method);
        const urls = (this.config.services[route.service]?.urls ?? []).map(hideCredentials);
        const auth = route.auth.required ? `needs the "${requiredScope}" scope${route.auth.mfa ? ' and MFA' : ''}` : 'is public';
        const view = this.#view(route);
        const split = view.split
          ? ` Traffic is split: ${view.split.weights.stable}% to ${route.service} (stable), ${view.split.weights.canary}% to ${view.split.canaryService} (canary), sticky per client.`
          : '';
        const canaryUrls = view.split ? (this.config.services[view.split.canaryService]?.urls ?? []).map(hideCredentials) : [];
        return {
          match: 'route',
          route: view,
          upstreamUrls: [...urls, ...canaryUrls],
          ...(route.auth.required ? { requiredScope } : {}),
          mfaRequired: route.auth.mfa === true,
          explanation: `${method} ${path} matches route "${route.id}" (${route.prefix}) and goes to ${route.service}; it ${auth}.${split}`,
        };
      }
    }
  }

  listServices(): z.infer<typeof listServicesOutput> {
    return {
      services: Object.values(this.config.services).map((s) => ({
        name: s.name,
        enabled: s.enabled,
        ...(s.disabledBy !== undefined ? { disabledBy: s.disabledBy } : {}),
        urls: s.urls.map(hideCredentials),
        healthPath: s.healthPath,
        timeoutMs: s.timeoutMs,
        routes: this.config.routes.filter((r) => r.service === s.name).map((r) => r.id),
      })),
    };
  }

  serviceHealth(input: z.input<typeof serviceHealthInput> = {}): z.infer<typeof serviceHealthOutput> {
    const { service } = serviceHealthInput.parse(input);
    const snapshot = this.prober.snapshot();
    const all = Object.values(snapshot.services);
    if (service !== undefined && !all.some((s) => s.service === service)) {
      throw new UnknownServiceError(service, all.map((s) => s.service));
    }
    return {
      status: snapshot.status,
      checkedAt: snapshot.checkedAt,
      services: all.filter((s) => service === undefined || s.service === service).map((s) => ({ ...s })),
    };
  }
}
