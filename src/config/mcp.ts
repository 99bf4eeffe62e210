import { z } from 'zod';
import { comparing, type Checker } from './check.js';
import { booleanFromEnv, httpUrl, origin } from './fields.js';

/* The gateway as an MCP server (mcp/server). */

export const mcpEnv = z.object({
  /** false: /mcp without credentials, for local development and the conformance suite; refused in production. */
  MCP_REQUIRE_AUTH: booleanFromEnv.default(true),
});
type McpEnv = z.output<typeof mcpEnv>;

/** A host name as the Host header carries it, without port: a DNS name, an IPv4 address or a bracketed IPv6 one. */
const hostName = z
  .string()
  .min(1)
  .max(253)
  .regex(/^([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.?|\[[0-9A-Fa-f:.]+\])$/, 'must be a host name without scheme or port (IPv6 in brackets)')
  .transform((h) => h.toLowerCase());

export const mcpSchema = z
  .strictObject({
    /** Serve MCP at /mcp. */
    enabled: z.boolean().default(true),
    // Long-lived streams per replica: the GET streams of 2025 sessions and the 2026-07-28
    // subscriptions/listen streams (everything else of MCP is served per request and
    // forgotten; 2025 sessions are records in the state store). Bounded per principal, per
    // client address, and a share of the total that only admin-scoped principals may use.
    /** Open streams per replica at most; past it, a new one gets 503. */
    maxStreams: z.number().int().min(1).max(100_000).default(200),
    /** Open streams of one authenticated principal (API key / JWT subject) per replica; a newer one closes its oldest. */
    maxStreamsPerPrincipal: z.number().int().min(1).max(100_000).default(10),
    /** Open streams of non-admin principals (anonymous ones included) from one client address (IPv6: its /64) per replica. */
    maxStreamsPerAddress: z.number().int().min(1).max(100_000).default(20),
    /** Streams of maxStreams only admin-scoped principals may open. Default: a tenth of maxStreams, rounded up, less than maxStreams. */
    adminReservedStreams: z.number().int().min(0).max(100_000).optional(),
    /** A 2025 session (its state-store record) ends this long after its last request while no stream of it is open. */
    sessionIdleSeconds: z.number().int().min(2).max(86_400).default(1800),
    /** Reconnection delay suggested to 2025 clients on their GET stream (SSE `retry`); they resume with Last-Event-ID. */
    streamRetryMs: z.number().int().min(100).max(600_000).default(1000),
    /**
     * Browser origins allowed to call /mcp (DNS-rebinding protection). Requests without Origin
     * (non-browser clients) pass; default: the CORS origins, plus localhost ones outside production.
     */
    allowedOrigins: z.array(origin).optional(),
    /**
     * Host names /mcp may be called by (DNS-rebinding protection, with Origin). Default: the host
     * of resourceUrl, plus outside production localhost, 127.0.0.1, [::1] and the listen address.
     */
    allowedHosts: z.array(hostName).min(1).optional(),
    /** This gateway's public /mcp URL, named in the RFC 9728 metadata; default: from the request's Host. */
    resourceUrl: httpUrl.optional(),
    // --- issue 15: the Memory and Sequential Thinking integrations (mcp/integrations/) ---
    /** Operational memory written through the `memory` MCP server (mcp.servers.memory). */
    memory: z
      .strictObject({
        /** Record health transitions, breaker openings, interval summaries, baselines, routing aggregates. */
        enabled: z.boolean().default(true),
        /** Name of the upstream MCP server (mcp.servers.<name>) that stores the graph. */
        server: z.string().min(1).max(64).default('memory'),
        /** Write the queued events (and an interval summary) this often. */
        flushSeconds: z.number().int().min(1).max(86_400).default(60),
        /** ...or as soon as this many events are queued. */
        flushEvents: z.number().int().min(1).max(100_000).default(200),
        /** Events queued at most; past it, new events are dropped (gateway_memory_events_total{outcome="dropped"}). */
        queueSize: z.number().int().min(10).max(1_000_000).default(5000),
        /** Observations kept per entity; past it the oldest are folded into one summary observation. */
        maxObservationsPerEntity: z.number().int().min(4).max(10_000).default(100),
        /** Per-principal usage summaries (principals only as salted hashes). Off by default. */
        principalUsage: z.boolean().default(false),
        /** Salt of the principal hashes (default: random per process, so hashes do not link across restarts). */
        principalSalt: z.string().min(16).max(256).optional(),
        /** Read the last health states and baselines back at start (warm start). */
        warmStart: z.boolean().default(true),
        /** At start-up only: how long the warm start waits for the memory server to connect (the probes start after it). */
        warmStartWaitMs: z.number().int().min(0).max(60_000).default(3000),
      })
      .prefault({}),
    /** Stepwise routing analyses (analyze_routing, review_routing) recorded through the `sequential-thinking` server. */
    sequentialThinking: z
      .strictObject({
        /** Name of the upstream MCP server that records the chains. */
        server: z.string().min(1).max(64).default('sequential-thinking'),
        /** The runner-up within this probability of the choice opens a branch (branchFromThought). */
        branchMargin: z.number().min(0).max(1).default(0.15),
        /** Recent routing decisions kept per replica for review_routing and analyze_routing by requestId. */
        decisionLogSize: z.number().int().min(100).max(1_000_000).default(10_000),
        /** Below this confidence a decision counts as low-confidence in the reviews. */
        lowConfidence: z.number().min(0).max(1).default(0.6),
      })
      .prefault({}),
    // --- end issue 15 ---
  })
  .refine(
    (m) => m.adminReservedStreams === undefined || m.adminReservedStreams < m.maxStreams,
    comparing(['adminReservedStreams', 'maxStreams'], ['adminReservedStreams'], 'must be less than maxStreams'),
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
    adminReservedStreams: file.adminReservedStreams ?? Math.min(Math.ceil(file.maxStreams / 10), file.maxStreams - 1),
  };
}
