import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import type { Scope } from './scopes.js';

export interface IssuedToken {
  readonly token: string;
  readonly expiresIn: number;
  readonly scope: string;
  readonly amr: readonly string[];
}

export interface TokenIssuerOptions {
  readonly secret: string;
  readonly issuer: string;
  readonly audience?: string;
  readonly ttlSeconds: number;
  /** The verifier's maximum lifetime (auth.jwt.maxLifetimeSeconds): no token is issued for longer. */
  readonly maxTtlSeconds?: number;
  /** Epoch milliseconds (tests). */
  readonly now?: () => number;
}

/** Short-lived HS256 tokens the gateway issues itself (POST /auth/token, the demo's token). */
export class TokenIssuer {
  readonly #key: Uint8Array;

  constructor(private readonly options: TokenIssuerOptions) {
    this.#key = new TextEncoder().encode(options.secret);
  }

  /** `ttlSeconds` is capped at the maximum lifetime; `expiresIn` tells the lifetime given. */
  async issue(subject: string, scopes: readonly Scope[], amr: readonly string[], ttlSeconds = this.options.ttlSeconds): Promise<IssuedToken> {
    const scope = scopes.join(' ');
    const lifetime = Math.max(1, Math.min(Math.floor(ttlSeconds), this.options.maxTtlSeconds ?? Infinity));
    // iat and exp from one clock reading: exp - iat is exactly the lifetime, never a second more.
    const iat = Math.floor((this.options.now?.() ?? Date.now()) / 1000);
    let jwt = new SignJWT({ scope, amr: [...amr] })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(subject)
      .setIssuer(this.options.issuer)
      .setIssuedAt(iat)
      .setJti(randomUUID())
      .setExpirationTime(iat + lifetime);
    if (this.options.audience !== undefined) jwt = jwt.setAudience(this.options.audience);
    return { token: await jwt.sign(this.#key), expiresIn: lifetime, scope, amr };
  }
}
