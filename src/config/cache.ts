import { z } from 'zod';

/* The response cache (src/cache): the gateway-wide store and a route's own rule. */

/** The response cache: on by default for what upstreams mark cacheable. */
export const responseCacheSchema = z
  .strictObject({
    /** false: nothing is cached, not even on routes with a `cache` block. */
    enabled: z.boolean().default(true),
    /** Larger responses stream through and are not stored. */
    maxEntryBytes: z.number().int().min(1).max(64 * 1024 * 1024).default(1024 * 1024),
    /** Bound of all stored bodies together (per replica). */
    maxTotalBytes: z.number().int().min(1).max(4 * 1024 * 1024 * 1024).default(64 * 1024 * 1024),
    /** How long an entry is kept past its lifetime for the `stale-cache` fallback (never served fresh then). */
    staleSeconds: z.number().int().min(0).max(7 * 86_400).default(600),
  })
  .prefault({});

/** A route's cache: cache GET/HEAD answers for ttlSeconds even without upstream Cache-Control; false: never cache. */
export const routeCacheSchema = z.union([
  z.literal(false),
  z.strictObject({
    ttlSeconds: z.number().int().min(1).max(86_400),
    /** Entries are per principal (the subject is part of the key), also for `private` answers. */
    perUser: z.boolean().default(false),
  }),
]);
