import { createHash } from 'node:crypto';
import { z } from 'zod';
import { comparing, crossCheck, type Checker } from './check.js';
import { httpUrl, scopeSchema } from './fields.js';

/* Authentication (src/auth): JWTs, API keys, the gateway's own tokens, TOTP, MFA for admin. */

const base32Secret = z
  .string()
  .regex(/^[A-Z2-7]+=*$/, 'a base32 secret (A-Z, 2-7)')
  .refine((s) => s.replace(/=+$/, '').length >= 26, 'at least 16 bytes (26 base32 characters)');

export const apiKeySchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/i, 'letters, digits, "_", "." and "-"'),
  /** Hex SHA-256 of the key: `printf %s "$KEY" | sha256sum`. */
  sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, '64 hex characters (SHA-256 of the key)').transform((h) => h.toLowerCase()),
  scopes: z.array(scopeSchema).min(1),
  /** Enrols the key's principal in TOTP: POST /auth/token then needs a current code. */
  totpSecret: base32Secret.optional(),
});

export const authSchema = z
  .strictObject({
    jwt: z
      .strictObject({
        issuer: z.string().min(1).optional(),
        audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
        /** RS/ES/PS/EdDSA tokens are verified against this JWKS (cached, rotation picked up). */
        jwksUrl: httpUrl.optional(),
        algorithms: z.array(z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'EdDSA'])).min(1).default(['RS256', 'ES256']),
        clockToleranceSeconds: z.number().int().min(0).max(300).default(30),
        jwksCacheMaxAgeMs: z.number().int().min(1000).default(600_000),
        jwksCooldownMs: z.number().int().min(0).default(30_000),
        /** Every token needs `exp`; refused when exp - iat (or exp - now) exceeds this. Default 24 h. */
        maxLifetimeSeconds: z.number().int().min(60).max(30 * 86_400).default(86_400),
      })
      .prefault({}),
    apiKeys: z.array(apiKeySchema).default([]),
    tokens: z
      .strictObject({
        issuer: z.string().min(1).default('unified-gateway'),
        audience: z.string().min(1).optional(),
        ttlSeconds: z.number().int().min(30).max(86_400).default(900),
        totpToleranceSeconds: z.number().int().min(0).max(120).default(30),
      })
      .prefault({}),
    /**
     * TOTP guessing (POST /auth/token), per enrolled key and shared by the replicas through the
     * state store: after maxFailures wrong codes in a row the key is locked for lockoutSeconds,
     * doubled on each further attempt up to maxLockoutSeconds; the count is forgotten after
     * failureMemorySeconds without an attempt, or at the first right code.
     */
    totp: z
      .strictObject({
        maxFailures: z.number().int().min(1).max(100).default(5),
        lockoutSeconds: z.number().int().min(1).max(86_400).default(60),
        maxLockoutSeconds: z.number().int().min(1).max(30 * 86_400).default(3600),
        failureMemorySeconds: z.number().int().min(60).max(30 * 86_400).default(86_400),
      })
      .prefault({})
      .refine((t) => t.lockoutSeconds <= t.maxLockoutSeconds, comparing(['lockoutSeconds', 'maxLockoutSeconds'], [], 'lockoutSeconds must not exceed maxLockoutSeconds'))
      .refine(
        (t) => t.failureMemorySeconds >= t.maxLockoutSeconds,
        comparing(['failureMemorySeconds', 'maxLockoutSeconds'], [], 'failureMemorySeconds must be at least maxLockoutSeconds'),
      ),
    /** Admin surface needs MFA; default: true when ENVIRONMENT=production. */
    requireMfaForAdmin: z.boolean().optional(),
    /** Serve /metrics without credentials (scrapers); false requires read scope. */
    publicMetrics: z.boolean().default(true),
  })
  .check(
    crossCheck((auth, c) => {
      // The gateway's own tokens must pass its own lifetime check.
      if (!c.valid('tokens', 'ttlSeconds') || !c.valid('jwt', 'maxLifetimeSeconds')) return;
      if (auth.tokens.ttlSeconds > auth.jwt.maxLifetimeSeconds) {
        c.problem(
          ['tokens', 'ttlSeconds'],
          `${auth.tokens.ttlSeconds} exceeds auth.jwt.maxLifetimeSeconds (${auth.jwt.maxLifetimeSeconds}): the gateway's own tokens would be refused`,
        );
      }
    }),
  )
  .prefault({});
type AuthFile = z.output<typeof authSchema>;

/** The name of the admin key made from the API_KEY variable (its principal is `key:env-api-key`). */
export const ENV_API_KEY_NAME = 'env-api-key';

/**
 * API key names are unique. `c` is rooted at the file's `auth.apiKeys`; returns every key's
 * name (API_KEY's included), undefined when some did not parse.
 */
export function checkApiKeys(c: Checker, apiKeys: AuthFile['apiKeys'], envApiKey: boolean): Set<string> | undefined {
  if (!c.readable()) return undefined;
  const names = new Set<string>();
  let complete = true;
  apiKeys.forEach((k, i) => {
    if (!c.valid(i, 'name')) {
      complete = false;
      return;
    }
    if (names.has(k.name)) c.problem([i, 'name'], `"${k.name}" is used twice`);
    names.add(k.name);
  });
  if (envApiKey) names.add(ENV_API_KEY_NAME);
  return complete ? names : undefined;
}

/** API_KEY from the environment is one admin key, hashed here like the configured ones; MFA for admin defaults on in production. */
export function resolveAuth(env: { API_KEY?: string | undefined; ENVIRONMENT: string }, file: AuthFile) {
  const envKey: z.output<typeof apiKeySchema> | undefined =
    env.API_KEY !== undefined ? { name: ENV_API_KEY_NAME, sha256: createHash('sha256').update(env.API_KEY, 'utf8').digest('hex'), scopes: ['admin'] } : undefined;
  return {
    ...file,
    apiKeys: [...file.apiKeys, ...(envKey !== undefined ? [envKey] : [])],
    requireMfaForAdmin: file.requireMfaForAdmin ?? env.ENVIRONMENT === 'production',
  };
}
