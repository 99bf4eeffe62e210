import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import type { Scope } from './scopes.js';

export interface IssuedToken {
  readonly token: string;
  readonly expiresIn: number;
  readonly scope: string;
  readonly amr: readonly string[];
}

/** Short-lived HS256 tokens the gateway issues itself (POST /auth/token). */
export class TokenIssuer {
  readonly #key: Uint8Array;

  constructor(private readonly options: { secret: string; issuer: string; audience?: string; ttlSeconds: number }) {
    this.#key = new TextEncoder().encode(options.secret);
  }

  async issue(subject: string, scopes: readonly Scope[], amr: readonly string[], ttlSeconds = this.options.ttlSeconds): Promise<IssuedToken> {
    const scope = scopes.join(' ');
    let jwt = new SignJWT({ scope, amr: [...amr] })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(subject)
      .setIssuer(this.options.issuer)
      .setIssuedAt()
      .setJti(randomUUID())
      .setExpirationTime(`${ttlSeconds}s`);
    if (this.options.audience !== undefined) jwt = jwt.setAudience(this.options.audience);
    return { token: await jwt.sign(this.#key), expiresIn: ttlSeconds, scope, amr };
  }
}
