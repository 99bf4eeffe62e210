import { z } from 'zod';
import { comparing, type Checker } from './check.js';
import { booleanFromEnv, cidrSchema, intFromEnv } from './fields.js';

/* Rate limiting and suspicious-client detection (src/ratelimit). */

export const rateLimitEnv = z.object({
  // Default quota per principal and per client IP.
  RATE_LIMIT_REQUESTS: intFromEnv(1, 10_000_000).default(1000),
  RATE_LIMIT_WINDOW_SECONDS: intFromEnv(1, 86_400).default(60),
  /** Loopback clients never limited, slowed or blocked (rateLimit.exemptLoopback wins); default false in every ENVIRONMENT. */
  RATE_LIMIT_EXEMPT_LOOPBACK: booleanFromEnv.optional(),
});

/** N requests per sliding window (the global quotas and a route's own). */
export const rateQuotaSchema = z.strictObject({
  requests: z.number().int().min(1).max(10_000_000),
  windowSeconds: z.number().int().min(1).max(86_400),
});

const threatSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    /** The score halves every this many seconds without new signals. */
    halfLifeSeconds: z.number().positive().max(86_400).default(300),
    /** Score at which each level starts (below medium: low, served normally). */
    levels: z
      .strictObject({
        medium: z.number().positive().default(30),
        high: z.number().positive().default(60),
        critical: z.number().positive().default(100),
      })
      .prefault({})
      .refine((l) => l.medium < l.high && l.high < l.critical, comparing(['medium', 'high', 'critical'], [], 'levels must grow: medium < high < critical')),
    /** Score added per signal. */
    weights: z
      .strictObject({
        inputRejected: z.number().min(0).max(1000).default(25),
        authFailed: z.number().min(0).max(1000).default(8),
        /** Per distinct path nothing serves (the same missing path again adds nothing). */
        notFound: z.number().min(0).max(1000).default(4),
        rateLimited: z.number().min(0).max(1000).default(0.25),
      })
      .prefault({}),
    /** medium: the client's quotas are multiplied by this. */
    mediumLimitFactor: z.number().gt(0).max(1).default(0.5),
    /** high: each request waits this long first (at most maxTarpitted at once; past that, 429). */
    tarpitMs: z.number().int().min(0).max(30_000).default(1000),
    maxTarpitted: z.number().int().min(0).max(100_000).default(256),
    /** critical: blocked (403) for blockSeconds, doubled on each repeat within strikeMemorySeconds, at most maxBlockSeconds. */
    blockSeconds: z.number().int().min(1).max(86_400).default(60),
    maxBlockSeconds: z.number().int().min(1).max(30 * 86_400).default(86_400),
    strikeMemorySeconds: z.number().int().min(1).max(30 * 86_400).default(86_400),
  })
  .prefault({});

export const rateLimitSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    /** Per API key / JWT subject, after authentication; default RATE_LIMIT_REQUESTS per RATE_LIMIT_WINDOW_SECONDS. */
    principal: rateQuotaSchema.optional(),
    /** Per client IP (IPv6: per /64), before authentication; default as principal. */
    ip: rateQuotaSchema.optional(),
    /**
     * Internal callers never limited, slowed or blocked: API key names and client CIDRs. No
     * CIDR by default, loopback included: behind a sidecar proxy every client would look like
     * 127.0.0.1 and be exempt.
     */
    allowList: z
      .strictObject({
        keys: z.array(z.string().min(1)).default([]),
        cidrs: z.array(cidrSchema).default([]),
      })
      .prefault({}),
    /** Opt-in: add loopback (127.0.0.0/8, ::1) to the allow-list (the demo, local tests); default RATE_LIMIT_EXEMPT_LOOPBACK, else false. */
    exemptLoopback: z.boolean().optional(),
    threat: threatSchema,
  })
  .prefault({});
type RateLimitFile = z.output<typeof rateLimitSchema>;

/** What `rateLimit.exemptLoopback` adds to the allow-list. */
export const LOOPBACK_CIDRS: readonly string[] = ['127.0.0.0/8', '::1/128'];

/**
 * An allow-listed key must exist. `c` is rooted at the file's `rateLimit`; `keyNames` are the
 * API keys' names, undefined when some did not parse.
 */
export function checkRateLimit(c: Checker, rateLimit: RateLimitFile, keyNames: ReadonlySet<string> | undefined): void {
  if (keyNames === undefined || !c.readable('allowList', 'keys')) return;
  rateLimit.allowList.keys.forEach((name, i) => {
    if (c.valid('allowList', 'keys', i) && !keyNames.has(name)) {
      c.problem(['allowList', 'keys', i], `no API key is named "${name}" (known: ${[...keyNames].join(', ') || 'none'})`);
    }
  });
}

/** Quotas default to RATE_LIMIT_*; loopback is exempt only when asked (the file wins over the variable), whatever ENVIRONMENT says. */
export function resolveRateLimit(env: z.output<typeof rateLimitEnv>, file: RateLimitFile) {
  const exemptLoopback = file.exemptLoopback ?? env.RATE_LIMIT_EXEMPT_LOOPBACK ?? false;
  const quota = { requests: env.RATE_LIMIT_REQUESTS, windowSeconds: env.RATE_LIMIT_WINDOW_SECONDS };
  return {
    ...file,
    principal: file.principal ?? quota,
    ip: file.ip ?? { ...quota },
    /** The allow-list; `cidrs` holds loopback when `exemptLoopback`. */
    allowList: { keys: file.allowList.keys, cidrs: [...file.allowList.cidrs, ...(exemptLoopback ? LOOPBACK_CIDRS : [])] },
    /** Loopback clients are allow-listed (opt-in: rateLimit.exemptLoopback / RATE_LIMIT_EXEMPT_LOOPBACK). */
    exemptLoopback,
  };
}
