import { z } from 'zod';
import { routeCacheSchema } from './cache.js';
import type { Checker } from './check.js';
import { HTTP_METHODS, httpUrl, scopeSchema, serviceNameSchema } from './fields.js';
import { deepFreeze, type DeepReadonly } from './frozen.js';
import { rateQuotaSchema } from './ratelimit.js';
import { resolveRouteWebsocket, routeWebsocketConfigSchema, routeWebsocketSchema } from './websockets.js';
import type { KnownServices, ResolvedService } from './services.js';

/*
 * The route table (src/routing/route-table.ts): the five default routes, and the file's
 * routes that add to or replace them, with their auth policy, validation, limits, cache,
 * traffic split and request-target options.
 */

const routePrefix = z
  .string()
  .regex(/^\/[A-Za-z0-9._~\-/]*$/, 'a path prefix such as /v1/twin')
  .refine((p) => p === '/' || !p.endsWith('/'), 'no trailing slash')
  .refine((p) => !p.includes('//'), 'no empty path segment')
  .refine((p) => !/\/\.\.?(\/|$)/.test(p), 'no dot path segment');

export const VALIDATION_MODES = ['strict', 'text', 'off'] as const;
export type ValidationMode = (typeof VALIDATION_MODES)[number];

export const routeAuthSchema = z.strictObject({
  /** false makes the route public. Default: every route needs credentials. */
  required: z.boolean().default(true),
  /** One scope for every method; default read for GET/HEAD/OPTIONS, write otherwise. */
  scope: scopeSchema.optional(),
  /** Require a second factor (`amr` with mfa/otp). */
  mfa: z.boolean().optional(),
});

const fieldNames = z.array(z.string().min(1).max(128)).max(64);

/** Integer weights of a split's two sides; they add up to 100. */
export const splitWeightsSchema = z
  .strictObject({
    stable: z.number().int().min(0).max(100),
    canary: z.number().int().min(0).max(100),
  })
  .refine((w) => w.stable + w.canary === 100, 'stable + canary must be 100');

/**
 * A route's traffic split (src/routing/traffic-split.ts): a stable and a canary side. The
 * canary is another configured service, or a second URL set of the route's own service.
 */
const routeSplitSchema = z.strictObject({
  canary: z.union([z.strictObject({ service: serviceNameSchema }), z.strictObject({ urls: z.array(httpUrl).min(1) })], {
    error: 'canary is { service: <name> } or { urls: [<url>, ...] }',
  }),
  /** Weights at first start; the live weights are in the state store (shift_traffic). */
  weights: splitWeightsSchema.default({ stable: 100, canary: 0 }),
  /** Clients without a principal stick to a side by a cookie the gateway sets, or by their IP. */
  sticky: z.enum(['cookie', 'ip']).default('cookie'),
});

const routeFileSchema = z.strictObject({
  id: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/, 'route ids are lowercase letters, digits, "_", "." and "-"').optional(),
  prefix: routePrefix,
  service: serviceNameSchema,
  methods: z.array(z.enum(HTTP_METHODS)).min(1).optional(),
  /** Replace `prefix` with this when forwarding (e.g. "/" strips it). Default: path unchanged. */
  rewritePrefix: z
    .string()
    .regex(/^\/[A-Za-z0-9._~\-/]*$/, 'a path such as /api')
    .refine((p) => !p.includes('//') && !/(^|\/)\.\.?(\/|$)/.test(p), 'no empty or dot path segment')
    .optional(),
  auth: routeAuthSchema.optional(),
  /** Input validation: strict (default), text (SQL-looking prose allowed), off. */
  validation: z.enum(VALIDATION_MODES).optional(),
  /** JSON body fields checked in `text` mode even when the route is strict. */
  textFields: fieldNames.optional(),
  /** JSON body fields that are free text (code snippets): not inspected. */
  freeTextFields: fieldNames.optional(),
  /** Largest request body this route accepts; default limits.bodyBytes. */
  bodyLimitBytes: z.number().int().positive().optional(),
  /** This route's own quota (a separate budget per principal, or per IP when public); false: not limited. */
  rateLimit: z.union([z.literal(false), rateQuotaSchema]).optional(),
  /** Response cache of this route (src/cache). */
  cache: routeCacheSchema.optional(),
  /** Stable/canary traffic split of this route. */
  split: routeSplitSchema.optional(),
  // --- request target and upstream credentials (src/routing/canonical-path.ts, src/proxy/headers.ts) ---
  /**
   * Accept %2F / %5C inside a path segment and forward it still encoded (never a separator
   * for matching). Default: 400 GW_REQUEST_PATH_INVALID. Only for upstreams that do not decode
   * them into separators.
   */
  allowEncodedSlashes: z.boolean().default(false),
  /** Accept `;` (matrix parameters) in the path and forward it. Default: 400 GW_REQUEST_PATH_INVALID. */
  allowSemicolons: z.boolean().default(false),
  /** Forward the client's `Authorization: Bearer` token to the upstream. Default: removed (the identity headers say who called). */
  forwardAuthorization: z.boolean().default(false),
  /** WebSocket upgrades on this route (src/ws): default on when ENABLE_WEBSOCKETS; `false` turns them off; options set a scope and text-frame inspection. */
  websocket: routeWebsocketSchema.optional(),
});
type RouteFile = z.output<typeof routeFileSchema>;

export const routesFileSchema = z.array(routeFileSchema).default([]);

// --- the resolved shape ---

export const routeSplitConfigSchema = z.strictObject({
  /** The service of the canary side: another service, or `<service>-canary` made from a URL set. */
  canaryService: z.string(),
  /** Weights at first start; the live ones are in the state store. */
  weights: splitWeightsSchema,
  sticky: z.enum(['cookie', 'ip']),
});

/** A route as the gateway uses it. */
export const routeConfigSchema = z.strictObject({
  id: z.string(),
  prefix: z.string(),
  service: z.string(),
  /** null: every method. */
  methods: z.array(z.enum(HTTP_METHODS)).nullable(),
  rewritePrefix: z.string().optional(),
  /** One scope for every method, or read for GET/HEAD/OPTIONS and write for the rest; `mfa`: a second factor. */
  auth: routeAuthSchema,
  validation: z.enum(VALIDATION_MODES),
  textFields: z.array(z.string()),
  freeTextFields: z.array(z.string()),
  bodyLimitBytes: z.number().optional(),
  /** The route's own quota (separate budget), or false for none; absent: the global quotas. */
  rateLimit: z.union([z.literal(false), rateQuotaSchema]).optional(),
  /** Response cache of this route (src/cache); absent: only what upstreams mark cacheable. */
  cache: routeCacheSchema.optional(),
  /** Stable/canary split (src/routing/traffic-split.ts); absent: every request goes to `service`. */
  split: routeSplitConfigSchema.optional(),
  /** %2F / %5C accepted in a segment and forwarded encoded (src/routing/canonical-path.ts); absent: refused. */
  allowEncodedSlashes: z.boolean().optional(),
  /** `;` accepted in the path; absent: refused. */
  allowSemicolons: z.boolean().optional(),
  /** The client's bearer token is forwarded upstream (src/proxy/headers.ts); absent: removed. */
  forwardAuthorization: z.boolean().optional(),
  /** WebSocket settings (src/ws); absent: upgrades accepted with the defaults when ENABLE_WEBSOCKETS. */
  websocket: routeWebsocketConfigSchema.optional(),
});
type Route = DeepReadonly<z.output<typeof routeConfigSchema>>;

const defaultRoute = (id: string, prefix: string, service: string): z.output<typeof routeConfigSchema> => ({
  id,
  prefix,
  service,
  methods: null,
  auth: { required: true },
  validation: 'strict',
  textFields: [],
  freeTextFields: [],
});

export const DEFAULT_ROUTES: readonly Route[] = deepFreeze([
  defaultRoute('twin', '/v1/twin', 'twin'),
  defaultRoute('agents', '/v1/agents', 'agent-controller'),
  defaultRoute('knowledge', '/v1/knowledge', 'knowledge'),
  defaultRoute('fog', '/v1/fog', 'fog'),
  defaultRoute('p2p', '/v1/p2p', 'p2p'),
]);

/** A route's id: its own, or made from its prefix. */
function routeId(r: Pick<RouteFile, 'id' | 'prefix'>): string {
  return r.id ?? (r.prefix.replace(/^\//, '').replace(/[^a-z0-9_.-]+/gi, '-').toLowerCase() || 'root');
}

const canaryServiceOf = (service: string) => `${service}-canary`;

// --- checks across keys ---

/**
 * A route names a known service and an id no other route has; its split's canary is another
 * known service or a URL set (which adds the service `<service>-canary` to `known`). `c` is
 * rooted at the file's `routes`.
 */
export function checkRoutes(c: Checker, routes: RouteFile[], known: KnownServices | undefined): void {
  if (!c.readable()) {
    if (known !== undefined) known.complete = false;
    return;
  }
  const ids = new Map<string, number>();
  routes.forEach((r, i) => {
    const route = c.at(i);
    if (known === undefined) return;
    if (!route.readable() || !route.valid('service') || !known.has(r.service)) {
      const unknown = route.readable() && route.valid('service') ? known.unknown(r.service) : undefined;
      if (unknown !== undefined) route.problem(['service'], unknown);
      // A split this check cannot follow may add a service other keys name.
      else if (!route.readable() || r.split !== undefined) known.complete = false;
      return;
    }
    if (route.valid('id') && (r.id !== undefined || route.valid('prefix'))) {
      const id = routeId(r);
      const seen = ids.get(id);
      if (seen !== undefined) {
        route.problem(['id'], `"${id}" is already used by routes[${seen}]`);
        return;
      }
      ids.set(id, i);
    }
    if (r.split === undefined) return;
    if (!route.valid('split', 'canary')) {
      known.complete = false;
      return;
    }
    const canary = r.split.canary;
    if ('service' in canary) {
      if (canary.service === r.service) route.problem(['split', 'canary', 'service'], "the canary must be another service than the route's own");
      else {
        const unknown = known.unknown(canary.service);
        if (unknown !== undefined) route.problem(['split', 'canary', 'service'], unknown);
      }
      return;
    }
    const name = canaryServiceOf(r.service);
    const urls = canary.urls.join(' ');
    const existing = known.get(name);
    if (existing !== undefined && (existing.canaryOf !== r.service || existing.urls !== urls)) {
      route.problem(['split', 'canary', 'urls'], `the service "${name}" already exists with other URLs (one canary URL set per service)`);
    } else known.add(name, { canaryOf: r.service, urls });
  });
}

// --- resolution ---

/**
 * The default routes, then the file's (one with a default prefix replaces the default route),
 * and the services with the canaries of URL-set splits added: `<service>-canary`, the stable
 * service's settings with those URLs, probed, balanced and broken like any service and shown
 * in metrics under its own name.
 */
export function resolveRoutes(
  file: RouteFile[],
  baseServices: Record<string, ResolvedService>,
): { routes: Route[]; services: Record<string, ResolvedService> } {
  const services = { ...baseServices };
  const byPrefix = new Map<string, Route>();
  for (const route of DEFAULT_ROUTES) byPrefix.set(route.prefix, route);
  for (const r of file) {
    let split: z.output<typeof routeSplitConfigSchema> | undefined;
    if (r.split !== undefined) {
      const canary = r.split.canary;
      const canaryService = 'service' in canary ? canary.service : canaryServiceOf(r.service);
      if ('urls' in canary) services[canaryService] = { ...services[r.service]!, name: canaryService, urls: canary.urls, canaryOf: r.service };
      split = { canaryService, weights: r.split.weights, sticky: r.split.sticky };
    }
    byPrefix.set(r.prefix, {
      id: routeId(r),
      prefix: r.prefix,
      service: r.service,
      methods: r.methods ? [...new Set(r.methods)] : null,
      ...(r.rewritePrefix !== undefined ? { rewritePrefix: r.rewritePrefix } : {}),
      auth: r.auth ?? { required: true },
      validation: r.validation ?? 'strict',
      textFields: r.textFields ?? [],
      freeTextFields: r.freeTextFields ?? [],
      ...(r.bodyLimitBytes !== undefined ? { bodyLimitBytes: r.bodyLimitBytes } : {}),
      ...(r.rateLimit !== undefined ? { rateLimit: r.rateLimit } : {}),
      ...(r.cache !== undefined ? { cache: r.cache } : {}),
      ...(split !== undefined ? { split } : {}),
      ...(r.allowEncodedSlashes ? { allowEncodedSlashes: true } : {}),
      ...(r.allowSemicolons ? { allowSemicolons: true } : {}),
      ...(r.forwardAuthorization ? { forwardAuthorization: true } : {}),
      ...(r.websocket !== undefined ? { websocket: resolveRouteWebsocket(r.websocket)! } : {}),
    });
  }
  return { routes: [...byPrefix.values()], services };
}
