import type { Scope } from './scopes.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the auth stage (src/auth/plugin.ts) for routes that need credentials; null otherwise. */
    principal: Principal | null;
  }
}

/** Who made a request, as later stages (rate limiting, audit, logs) see it. Never holds the credential. */
export interface Principal {
  readonly kind: 'jwt' | 'api-key';
  /** JWT `sub`, or `key:<name>` for an API key. Stable per caller: rate limits key on it. */
  readonly subject: string;
  /** The API key's configured name (kind "api-key"). */
  readonly keyName?: string;
  readonly scopes: readonly Scope[];
  /** The credential proves a second factor (`amr` contains `mfa` or `otp`). */
  readonly mfa: boolean;
}

/** The form of a principal that goes into logs. */
export function principalLog(p: Principal): { kind: string; sub: string; scopes: string } {
  return { kind: p.kind, sub: p.subject, scopes: p.scopes.join(' ') };
}
