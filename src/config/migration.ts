import { z } from 'zod';
import { httpUrl } from './fields.js';

/*
 * Migration (src/migration): the legacy endpoints the seed's clients still call, the
 * progressive traffic moves with SLO gates, and their tracking in GitHub.
 */

const legacyPath = z
  .string()
  .regex(/^\/[A-Za-z0-9._~\-/]*$/, 'a path such as /query')
  .refine((p) => p !== '/' && !p.endsWith('/') && !p.includes('//') && !/\/\.\.?(\/|$)/.test(p), 'no trailing slash, empty or dot segment');

/** An HTTP date or an ISO date/time: the moment a legacy endpoint stops answering (410 from then on). */
const sunsetSchema = z
  .string()
  .refine((s) => !Number.isNaN(Date.parse(s)), 'a date such as 2027-06-30T00:00:00Z')
  .transform((s) => new Date(Date.parse(s)).toISOString());

/** One legacy endpoint: its old path, the new one it maps to, when it is deprecated and sunset, and where the docs are. */
export const legacyEndpointSchema = z.strictObject({
  path: legacyPath,
  /** The new path the request is served by (the same request path as a direct call). */
  to: legacyPath,
  /** Deprecated since (RFC 9745 `Deprecation`); default: the start of the legacy mapping (2026-01-01). */
  deprecated: sunsetSchema.default('2026-01-01T00:00:00.000Z'),
  /** RFC 8594 `Sunset`: after this moment the path answers 410 GW_LEGACY_GONE naming `to`. */
  sunset: sunsetSchema.default('2027-06-30T00:00:00.000Z'),
  /** Link with rel="deprecation": the migration notes. */
  docs: httpUrl.default('https://github.com/ai-village/unified-gateway/blob/main/docs/operations.md#legacy-endpoints'),
});
export type LegacyEndpointConfig = z.output<typeof legacyEndpointSchema>;

/** The seed's mapping: /query and /upload to their /v1 routes (service auto-detection), /status to /healthz; /metrics stays as it is. */
export const DEFAULT_LEGACY: ReadonlyArray<z.input<typeof legacyEndpointSchema>> = [
  { path: '/query', to: '/v1/query' },
  { path: '/upload', to: '/v1/upload' },
  { path: '/status', to: '/healthz' },
];

export const legacySchema = z
  .array(legacyEndpointSchema)
  .max(64)
  .default(DEFAULT_LEGACY.map((e) => legacyEndpointSchema.parse(e)))
  .refine((list) => new Set(list.map((e) => e.path)).size === list.length, 'each legacy path once');

/** GitHub tracking of migrations (src/migration/tracker.ts). */
const trackingSchema = z
  .strictObject({
    /** none: not tracked; octokit: the REST API; mcp: the federated GitHub MCP server. */
    backend: z.enum(['none', 'octokit', 'mcp']).default('none'),
    /** owner/name of the repository the issues are opened in. */
    repo: z.string().regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, 'owner/name').optional(),
    /** owner/name of the configuration repository the completion pull requests go to (default: `repo`). */
    configRepo: z.string().regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, 'owner/name').optional(),
    /** Base branch of the pull requests. */
    baseBranch: z.string().min(1).max(200).default('main'),
    /** The file of the configuration repository a completed migration rewrites. */
    configPath: z.string().min(1).max(300).default('gateway.yaml'),
    /** GitHub Enterprise: https://ghe.example.com/api/v3. */
    baseUrl: httpUrl.default('https://api.github.com'),
    /** The name of the GitHub MCP server under mcp.servers (backend mcp). */
    mcpServer: z.string().min(1).max(64).default('github'),
    /** Label put on the issue of a rolled-back migration. */
    rollbackLabel: z.string().min(1).max(50).default('migration-rolled-back'),
    /** Attempts of one call before it is given up (backoff doubles from 1 s, at most 60 s). */
    maxAttempts: z.number().int().min(1).max(20).default(8),
  })
  .prefault({});

export const migrationSchema = z
  .strictObject({
    /** How often the controller evaluates the gates (a failed gate rolls back within one interval). */
    evaluationIntervalMs: z.number().int().min(100).max(300_000).default(10_000),
    /** Default steps (percent to the canary). */
    steps: z.array(z.number().int().min(1).max(100)).min(1).max(20).default([10, 25, 50, 100]),
    stepSeconds: z.number().int().min(1).max(86_400).default(300),
    minRequests: z.number().int().min(0).max(10_000_000).default(100),
    /** Gates: canary error rate under maxErrorRate and under errorRatioToStable x stable's. */
    gates: z
      .strictObject({
        maxErrorRate: z.number().min(0).max(1).default(0.005),
        errorRatioToStable: z.number().min(1).max(100).default(2),
        maxP99Ms: z.number().positive().max(600_000).default(200),
        p99RatioToStable: z.number().min(1).max(100).default(1.5),
      })
      .prefault({}),
    /** Legacy callers counted under their own label; the rest is `other` (bounded metric labels). */
    legacyCallerLabels: z.number().int().min(0).max(1000).default(50),
    tracking: trackingSchema,
  })
  .prefault({});

export const migrationEnv = z.object({
  /** Token of the GitHub tracker (octokit backend). */
  GITHUB_TOKEN: z.string().min(1).optional(),
});

export function resolveMigration(env: z.output<typeof migrationEnv>, file: z.output<typeof migrationSchema>) {
  return { ...file, tracking: { ...file.tracking, ...(env.GITHUB_TOKEN !== undefined ? { token: env.GITHUB_TOKEN } : {}) } };
}
