import { z } from 'zod';
import { comparing } from './check.js';
import { booleanFromEnv, cidrSchema, intFromEnv, origin } from './fields.js';

/*
 * The listener and what the gateway accepts from clients: address, drain and shutdown, client
 * timeouts and connection caps, event-loop pressure, request limits, CORS (src/server,
 * src/security, src/health/pressure.ts).
 */

export const serverEnv = z.object({
  GATEWAY_HOST: z.string().min(1).default('0.0.0.0'),
  GATEWAY_PORT: intFromEnv(0, 65535).default(8000),
  ENABLE_WEBSOCKETS: booleanFromEnv.default(true),
  /** Gateway processes on one port (node:cluster, src/server/cluster.ts); 1: a single process, no primary. */
  WORKER_THREADS: intFromEnv(1, 256).default(1),
  /** Overrides server.drainDelayMs (e.g. 0 for a developer's quick restarts, or in tests). */
  GATEWAY_DRAIN_DELAY_MS: intFromEnv(0, 600_000).optional(),
  // --- probe listener off the proxy's event loop (src/server/probe-listener.ts; issue 18) ---
  /** Port of the probe listener (/livez, /readyz, /healthz on a thread of its own); unset: none (0: any free port). */
  GATEWAY_PROBE_PORT: intFromEnv(0, 65535).optional(),
  /** Its address; default GATEWAY_HOST. */
  GATEWAY_PROBE_HOST: z.string().min(1).optional(),
});

export const serverFileSchema = z
  .strictObject({
    /** How long graceful shutdown waits for in-flight requests before cutting them. */
    shutdownTimeoutMs: z.number().int().min(0).max(600_000).default(10_000),
    /**
     * On SIGTERM, how long the gateway keeps serving with /readyz at 503 before it stops
     * accepting, so load balancers and Kubernetes endpoints move traffic away first (haproxy
     * checking every second with `fall 3` needs 3 s; kube-proxy a few seconds).
     */
    drainDelayMs: z.number().int().min(0).max(600_000).default(5000),
    /** Addresses allowed to set X-Forwarded-* (Fastify trustProxy); none by default. */
    trustProxy: z
      .union([z.boolean(), z.array(z.union([cidrSchema, z.enum(['loopback', 'linklocal', 'uniquelocal'])]))])
      .default(false),
    // --- slow clients and connection floods (src/server/client-timeouts.ts, connection-guard.ts) ---
    /** Longest a client may take to send a request's whole header block (Node's headersTimeout; nginx client_header_timeout). */
    clientHeaderTimeoutMs: z.number().int().min(100).max(600_000).default(60_000),
    /** Longest the gateway waits for the next byte of a request body it is ready to read (nginx client_body_timeout); also the grace period of the rate rule. */
    clientBodyTimeoutMs: z.number().int().min(100).max(600_000).default(60_000),
    /** A body still arriving after clientBodyTimeoutMs must have averaged at least this since it began (time the gateway held the client back excluded); 0: no rate rule. */
    clientBodyMinBytesPerSecond: z.number().int().min(0).max(1_000_000_000).default(1024),
    /** Longest a response waits for the client to take any of the data queued for it (nginx send_timeout). */
    clientSendTimeoutMs: z.number().int().min(100).max(3_600_000).default(60_000),
    /** Hard cap on receiving one whole request, headers and body (Node's requestTimeout); 0: none, the rate rule bounds slow bodies. */
    requestTimeoutMs: z.number().int().min(0).max(86_400_000).default(0),
    /** An idle keep-alive connection is closed after this (Node's keepAliveTimeout; above a load balancer's 60 s idle timeout). */
    keepAliveTimeoutMs: z.number().int().min(1000).max(600_000).default(72_000),
    /** Open connections per client address (IPv6: per /64), counted on accept; past it new ones are closed at once. 0: no cap. */
    maxConnectionsPerIp: z.number().int().min(0).max(1_000_000).default(256),
    /** Open client connections in all (Node's server.maxConnections); default: 3/4 of the process's open-file limit. */
    maxConnections: z.number().int().min(1).max(10_000_000).optional(),
    /**
     * Sustained event-loop or heap pressure turns /readyz 503 (only /readyz: traffic is still
     * served) so a load balancer sends new requests to other replicas.
     */
    pressure: z
      .strictObject({
        enabled: z.boolean().default(true),
        /** Mean event-loop delay over one sample above which the sample counts as pressure. */
        maxEventLoopDelayMs: z.number().int().min(1).max(60_000).default(1000),
        /** Heap used above which a sample counts as pressure; 0 does not watch the heap. */
        maxHeapUsedBytes: z.number().int().min(0).default(0),
        sampleIntervalMs: z.number().int().min(20).max(60_000).default(1000),
        /** Consecutive samples under pressure before /readyz turns 503 (one good sample clears it). */
        sustainedSamples: z.number().int().min(1).max(1000).default(5),
      })
      .prefault({}),
    // --- the heap a load left behind, given back once idle (src/server/idle-heap-reclaim.ts; issue 18) ---
    /**
     * When no request arrived and the event loop was nearly idle for a whole check interval, and
     * the memory V8 has committed for the old generation has grown by minHeapGrowthBytes since the
     * last such GC, ask V8 for one memory-reducing full GC, a pause taken while idle (V8's own
     * memory reducer does not, after a load: see the module).
     */
    idleHeapReclaim: z
      .strictObject({
        enabled: z.boolean().default(true),
        checkIntervalMs: z.number().int().min(100).max(600_000).default(2000),
        /** Event-loop utilization (0-1) over the interval at or under which the gateway counts as idle. */
        maxEventLoopUtilization: z.number().min(0).max(1).default(0.05),
        minHeapGrowthBytes: z.number().int().min(0).default(4 * 1024 * 1024),
      })
      .prefault({}),
  })
  .refine(
    (s) => s.requestTimeoutMs === 0 || s.requestTimeoutMs >= s.clientHeaderTimeoutMs,
    comparing(['requestTimeoutMs', 'clientHeaderTimeoutMs'], ['requestTimeoutMs'], 'requestTimeoutMs must be 0 or at least clientHeaderTimeoutMs'),
  )
  .prefault({});

export const limitsSchema = z
  .strictObject({
    /** Largest streamed request body (uploads); 413 past it. */
    bodyBytes: z.number().int().positive().default(128 * 1024 * 1024),
    /** Largest JSON body, which is buffered to be inspected; 413 past it. */
    jsonBodyBytes: z.number().int().positive().max(64 * 1024 * 1024).default(1024 * 1024),
    /** Most request headers accepted; 431 past it. */
    headerCount: z.number().int().min(10).max(1000).default(100),
    /** Largest total header size (Node's maxHeaderSize); 431 past it. */
    headerBytes: z.number().int().min(1024).max(1024 * 1024).default(16 * 1024),
    // Input inspection budget (src/security/detect): the most text inspected in one value and in
    // one request (path, query, headers, body, form fields together), in characters of decoded text
    // (never more than the bytes received). Past it: 413 GW_SECURITY_INPUT_TOO_LARGE, never
    // unbounded work and never a value let through uninspected. The defaults inspect a whole
    // default-size JSON body (jsonBodyBytes, 1 MiB) in a few tens of milliseconds at worst.
    inspectValueBytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(1024 * 1024),
    inspectRequestBytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(1280 * 1024),
  })
  .prefault({});

export const corsSchema = z
  .strictObject({
    /** Allowed browser origins; empty: no cross-origin access. "*" allows any (never with credentials). */
    origins: z.array(z.union([origin, z.literal('*')])).default([]),
    credentials: z.boolean().default(false),
    maxAgeSeconds: z.number().int().min(0).max(86_400).default(600),
    exposedHeaders: z
      .array(z.string().min(1))
      .default([
        'x-request-id',
        'ratelimit',
        'ratelimit-policy',
        'x-ratelimit-limit',
        'x-ratelimit-remaining',
        'x-ratelimit-reset',
        'retry-after',
        'x-routed-to',
        'x-routing-confidence',
        'x-gateway-upstream',
        'x-cache',
      ]),
  })
  .refine(
    (c) => !(c.credentials && c.origins.includes('*')),
    comparing(['credentials', 'origins'], ['credentials'], 'true needs an explicit origin list, not "*"'),
  )
  .prefault({});

/** The listener: address from the environment, the rest from the file (GATEWAY_DRAIN_DELAY_MS wins over server.drainDelayMs). */
export function resolveServer(env: z.output<typeof serverEnv>, file: z.output<typeof serverFileSchema>) {
  return {
    host: env.GATEWAY_HOST,
    port: env.GATEWAY_PORT,
    ...file,
    /** SIGTERM: serve on with /readyz 503 this long before closing the listener. */
    drainDelayMs: env.GATEWAY_DRAIN_DELAY_MS ?? file.drainDelayMs,
    /** The probe listener (src/server/probe-listener.ts), when GATEWAY_PROBE_PORT is set. */
    ...(env.GATEWAY_PROBE_PORT !== undefined ? { probe: { port: env.GATEWAY_PROBE_PORT, host: env.GATEWAY_PROBE_HOST ?? env.GATEWAY_HOST } } : {}),
  };
}
