import { z } from 'zod';
import { comparing, type Checker } from './check.js';
import { booleanFromEnv, httpUrl, origin } from './fields.js';

/* The gateway as an MCP server (mcp/server). */

export const mcpEnv = z.object({
  /** false: /mcp without credentials, for local development and the conformance suite; refused in production. */
  MCP_REQUIRE_AUTH: booleanFromEnv.default(true),
});
type McpEnv = z.output<typeof mcpEnv>;

export const mcpSchema = z
  .strictObject({
    /** Serve MCP at /mcp. */
    enabled: z.boolean().default(true),
    // Session slots (per replica). A session is kept in memory until it ends or goes idle, so
    // who may hold the slots is bounded: per principal, per client address, and a share of
    // the total that only admin-scoped principals may use (see docs/mcp.md).
    /** Open sessions per replica at most; past it, initialize gets 503. */
    maxSessions: z.number().int().min(1).max(100_000).default(100),
    /** Open sessions of one authenticated principal (API key / JWT subject) per replica at most. */
    maxSessionsPerPrincipal: z.number().int().min(1).max(100_000).default(10),
    /** Open sessions of non-admin principals (anonymous ones included) from one client address (IPv6: its /64) per replica. */
    maxSessionsPerAddress: z.number().int().min(1).max(100_000).default(20),
    /**
     * Slots of maxSessions that only admin-scoped principals may take: non-admin sessions stop at
     * maxSessions minus this. Default: a tenth of maxSessions, rounded up (10 of 100), less than maxSessions.
     */
    adminReservedSessions: z.number().int().min(0).max(100_000).optional(),
    /** When a cap is reached, sessions idle (no request, no stream open) this long may be closed to make room. */
    pressureIdleSeconds: z.number().int().min(1).max(86_400).default(60),
    /** Sessions idle this long are closed (their state store record expires too). */
    sessionIdleSeconds: z.number().int().min(2).max(86_400).default(1800),
    /**
     * Browser origins allowed to call /mcp (DNS-rebinding protection). Requests without Origin
     * (non-browser clients) pass; default: the CORS origins, plus localhost ones outside production.
     */
    allowedOrigins: z.array(origin).optional(),
    /** This gateway's public /mcp URL, named in the RFC 9728 metadata; default: from the request's Host. */
    resourceUrl: httpUrl.optional(),
  })
  .refine(
    (m) => m.adminReservedSessions === undefined || m.adminReservedSessions < m.maxSessions,
    comparing(['adminReservedSessions', 'maxSessions'], ['adminReservedSessions'], 'must be less than maxSessions'),
  )
  .prefault({});
type McpFile = z.output<typeof mcpSchema>;

/** `c` is rooted at the environment. */
export function checkMcpEnv(c: Checker, env: McpEnv & { ENVIRONMENT: string }): void {
  if (c.valid('ENVIRONMENT') && c.valid('MCP_REQUIRE_AUTH') && env.ENVIRONMENT === 'production' && !env.MCP_REQUIRE_AUTH) {
    c.problem(['MCP_REQUIRE_AUTH'], 'cannot be false when ENVIRONMENT=production (it serves /mcp without credentials)');
  }
}

export function resolveMcp(env: McpEnv, file: McpFile) {
  return {
    ...file,
    /** false only outside production (MCP_REQUIRE_AUTH). */
    requireAuth: env.MCP_REQUIRE_AUTH,
    adminReservedSessions: file.adminReservedSessions ?? Math.min(Math.ceil(file.maxSessions / 10), file.maxSessions - 1),
  };
}
