import { z } from 'zod';
import { booleanFromEnv } from './fields.js';

/* Metrics (src/metrics) and the access log (src/server/logger.ts). */

export const observabilityEnv = z.object({
  ENABLE_METRICS: booleanFromEnv.default(true),
});

/** Query parameters whose values the access log replaces with [redacted] (matching rule in logger.ts). */
export const DEFAULT_REDACTED_QUERY_PARAMS = [
  'token', 'secret', 'password', 'passwd', 'passphrase', 'pwd', 'signature', 'sig', 'key', 'code', 'auth', 'authorization',
  'credential', 'credentials', 'jwt', 'assertion', 'session', 'sessionid', 'sid', 'otp', 'totp', 'cookie', 'ticket', 'samlresponse',
] as const;

export const loggingSchema = z
  .strictObject({
    /**
     * The access log keeps the query string with these parameters' values replaced. A name
     * matches when, lower-cased and without `-`, `_`, `.`, `[` or `]`, it equals an entry or
     * ends with it ("token" covers access_token, id_token, X-Amz-Security-Token). Setting the
     * list replaces the defaults.
     */
    redactQueryParams: z
      .array(z.string().regex(/^[A-Za-z0-9_.\-[\]]{1,64}$/, 'a query parameter name'))
      .max(256)
      .default([...DEFAULT_REDACTED_QUERY_PARAMS]),
  })
  .prefault({});

export const metricsSchema = z
  .strictObject({
    /** Histogram buckets for request durations, in seconds. */
    durationBuckets: z.array(z.number().positive()).min(1).optional(),
  })
  .prefault({});

const DEFAULT_DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export function resolveMetrics(env: z.output<typeof observabilityEnv>, file: z.output<typeof metricsSchema>) {
  return { enabled: env.ENABLE_METRICS, durationBuckets: file.durationBuckets ?? [...DEFAULT_DURATION_BUCKETS] };
}
