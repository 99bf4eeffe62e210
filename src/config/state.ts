import { z } from 'zod';

/* The shared-state store (src/state): memory, or Redis shared by the replicas. */

export const stateEnv = z.object({
  REDIS_URL: z
    .string()
    .url()
    .refine((u) => /^rediss?:\/\//.test(u), 'expected a redis:// or rediss:// URL')
    .optional(),
});

export const stateSchema = z
  .strictObject({
    /** Prefix of every Redis key and of the pub/sub channel (several gateways sharing one Redis). */
    keyPrefix: z.string().regex(/^[A-Za-z0-9_.:-]{0,32}$/, 'up to 32 letters, digits, "_", ".", ":" and "-"').default('ugw:'),
    /** Longest a request waits for Redis before the replica decides alone. */
    commandTimeoutMs: z.number().int().min(5).max(5000).default(50),
  })
  .prefault({});
