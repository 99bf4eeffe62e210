import { hkdfSync } from 'node:crypto';
import { SignJWT } from 'jose';
import type { Principal } from '../auth/principal.js';

/*
 * The verified identity the gateway passes upstream instead of the client's credentials
 * (docs/security.md, "Upstream requests"). Plain headers for upstreams that only the gateway can reach,
 * and, when SECRET_KEY is set, a short-lived signed assertion (x-gateway-identity: an HS256
 * JWT, audience = the service, signed with a key derived per service from SECRET_KEY) for
 * upstreams that verify. A per-service key means one service cannot mint assertions another
 * service accepts. Client-sent x-gateway-* headers are always removed (headers.ts).
 */

export const IDENTITY_HEADER = 'x-gateway-identity';
/** Lifetime of a signed assertion. */
export const ASSERTION_LIFETIME_SECONDS = 60;
/** An assertion is reused for requests of the same principal to the same service while this much of its lifetime is left. */
const REUSE_MIN_REMAINING_SECONDS = 30;
const MAX_CACHED = 10_000;
/** HKDF `info` of a service's key: this prefix, a space, the service name. */
export const IDENTITY_KEY_INFO = 'unified-gateway identity assertion v1';

/** The key a service verifies x-gateway-identity with: HKDF-SHA256(SECRET_KEY, salt "", info "<IDENTITY_KEY_INFO> <service>", 32 bytes). */
export function identityKey(secretKey: string, service: string): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', secretKey, '', `${IDENTITY_KEY_INFO} ${service}`, 32));
}

/**
 * A subject as a header value: `%` and everything outside printable ASCII percent-encoded
 * (decodeURIComponent gives the subject back exactly).
 */
function headerSafe(value: string): string {
  if (/^[\x20-\x24\x26-\x7e]*$/.test(value)) return value;
  let out = '';
  for (const ch of value) {
    const c = ch.codePointAt(0)!;
    if (c >= 0x20 && c <= 0x7e && c !== 0x25) out += ch;
    else if (c >= 0xd800 && c <= 0xdfff) out += '%EF%BF%BD'; // a lone surrogate: U+FFFD
    else out += encodeURIComponent(ch);
  }
  return out;
}

/** The plain identity headers of a principal. */
export function identityHeaders(principal: Principal): Record<string, string> {
  return {
    'x-gateway-principal': headerSafe(principal.subject),
    'x-gateway-scopes': principal.scopes.join(' '),
    'x-gateway-auth-method': principal.kind,
    'x-gateway-mfa': principal.mfa ? 'true' : 'false',
  };
}

export interface IdentityOptions {
  /** SECRET_KEY; without it no signed assertion is sent (the plain headers still are). */
  readonly secretKey: string | undefined;
  /** `iss` of the assertions. */
  readonly issuer: string;
  /** Clock (ms), for tests. */
  readonly now?: () => number;
}

/** Builds the identity headers of each upstream request; signed assertions are cached per principal and service. */
export class IdentityAssertions {
  readonly #keys = new Map<string, Uint8Array>();
  readonly #cache = new Map<string, { readonly token: string; readonly reuseUntil: number }>();
  readonly #secret: string | undefined;
  readonly #issuer: string;
  readonly #now: () => number;

  constructor(options: IdentityOptions) {
    this.#secret = options.secretKey;
    this.#issuer = options.issuer;
    this.#now = options.now ?? Date.now;
  }

  /**
   * The identity headers for a request of `principal` to `service` (none for anonymous requests).
   * Synchronous while the principal's assertion is cached (nearly every request): a promise
   * only when one must be signed.
   */
  headers(principal: Principal | null, service: string): Record<string, string> | undefined | Promise<Record<string, string> | undefined> {
    if (principal == null) return undefined;
    const headers = identityHeaders(principal);
    if (this.#secret === undefined) return headers;
    const now = this.#now();
    const cacheKey = `${service}\n${principal.kind}\n${principal.subject}\n${principal.scopes.join(' ')}\n${principal.mfa}`;
    const cached = this.#cache.get(cacheKey);
    if (cached !== undefined && cached.reuseUntil > now) {
      headers[IDENTITY_HEADER] = cached.token;
      return headers;
    }
    return this.#assertion(principal, service, now, cacheKey).then((token) => {
      headers[IDENTITY_HEADER] = token;
      return headers;
    });
  }

  async #assertion(principal: Principal, service: string, now: number, cacheKey: string): Promise<string> {
    let key = this.#keys.get(service);
    if (key === undefined) {
      key = identityKey(this.#secret!, service);
      this.#keys.set(service, key);
    }
    const iat = Math.floor(now / 1000);
    const token = await new SignJWT({
      scope: principal.scopes.join(' '),
      auth_method: principal.kind,
      mfa: principal.mfa,
    })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer(this.#issuer)
      .setAudience(service)
      .setSubject(principal.subject)
      .setIssuedAt(iat)
      .setExpirationTime(iat + ASSERTION_LIFETIME_SECONDS)
      .sign(key);
    if (this.#cache.size >= MAX_CACHED) this.#cache.clear();
    this.#cache.set(cacheKey, { token, reuseUntil: now + (ASSERTION_LIFETIME_SECONDS - REUSE_MIN_REMAINING_SECONDS) * 1000 });
    return token;
  }
}
