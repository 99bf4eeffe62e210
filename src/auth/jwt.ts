import { createRemoteJWKSet, decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyOptions } from 'jose';
import { webcrypto } from 'node:crypto';
import type { Principal } from './principal.js';
import { VerifiedTokenCache } from './token-cache.js';
import { scopesFromClaims } from './scopes.js';

export interface JwtVerifierOptions {
  /** HS256 secret (JWT_SECRET_KEY); HS256 tokens are refused without it. */
  readonly secret?: string;
  /** JWKS endpoint for RS256/ES256 tokens; keys are cached and refetched on an unknown `kid`. */
  readonly jwksUrl?: string;
  readonly asymmetricAlgorithms: readonly string[];
  readonly issuer?: string;
  /** Issuers accepted on HS256 tokens (the gateway's own tokens and shared-secret issuers). */
  readonly hsIssuers?: readonly string[];
  readonly audience?: string | readonly string[];
  readonly clockToleranceSeconds: number;
  /** How long fetched JWKS keys are trusted before a refetch (jose `cacheMaxAge`). */
  readonly jwksCacheMaxAgeMs?: number;
  /** Minimum time between two JWKS fetches triggered by unknown keys (jose `cooldownDuration`). */
  readonly jwksCooldownMs?: number;
  /**
   * Longest lifetime accepted: a token must carry `exp`, and neither `exp - iat` nor
   * `exp - now` may exceed this (a leaked token cannot be valid for ever). Default 24 h.
   */
  readonly maxLifetimeSeconds?: number;
  /** Epoch milliseconds (tests). */
  readonly now?: () => number;
}

/**
 * Why a token was refused: a fixed phrase, never anything read from the token (the reason
 * goes into the 401 body and the WWW-Authenticate header; a token's `alg` with CR/LF in it
 * once made the response headers invalid).
 */
export type RejectionReason =
  | 'malformed token'
  | 'algorithm not accepted'
  | 'HS256 tokens are not accepted here'
  | 'token has no subject'
  | 'token has no expiry (exp)'
  | 'token lifetime exceeds the maximum'
  | 'token expired'
  | 'signature invalid'
  | 'no matching key'
  | 'token invalid'
  | `claim "${ClaimName}" invalid`;

const CLAIM_NAMES = ['iss', 'aud', 'exp', 'nbf', 'iat', 'sub', 'jti', 'typ'] as const;
type ClaimName = (typeof CLAIM_NAMES)[number];
const isClaimName = (v: unknown): v is ClaimName => typeof v === 'string' && (CLAIM_NAMES as readonly string[]).includes(v);

export const DEFAULT_MAX_LIFETIME_SECONDS = 86_400;

export class TokenRejected extends Error {
  constructor(readonly reason: RejectionReason) {
    super(reason);
    this.name = 'TokenRejected';
  }
}

/** Second factors in `amr` (RFC 8176) that satisfy an MFA requirement. */
const MFA_METHODS = new Set(['mfa', 'otp']);

export function hasMfa(payload: JWTPayload): boolean {
  const amr = (payload as { amr?: unknown }).amr;
  return Array.isArray(amr) && amr.some((m) => typeof m === 'string' && MFA_METHODS.has(m));
}

/**
 * Verifies bearer JWTs with jose. The key is chosen by the token's `alg` family and each
 * family only accepts its own algorithms, so an HS256 token can never be checked against a
 * public RSA/EC key (algorithm confusion) and `alg: none` is never accepted.
 */
export class JwtVerifier {
  /** The HS256 key imported once (jose would import a raw secret on every call). */
  readonly #secret: Promise<webcrypto.CryptoKey> | undefined;
  readonly #cache = new VerifiedTokenCache<{ principal: Principal; payload: JWTPayload }>({ maxEntries: 10_000, maxAgeMs: 60_000 });
  readonly #jwks: ReturnType<typeof createRemoteJWKSet> | undefined;
  readonly #base: JWTVerifyOptions;
  readonly #hs: JWTVerifyOptions;
  readonly #asymmetric: Set<string>;

  readonly #maxLifetime: number;
  readonly #now: () => number;

  constructor(readonly options: JwtVerifierOptions) {
    this.#maxLifetime = options.maxLifetimeSeconds ?? DEFAULT_MAX_LIFETIME_SECONDS;
    this.#now = options.now ?? Date.now;
    this.#secret =
      options.secret !== undefined
        ? webcrypto.subtle.importKey('raw', new TextEncoder().encode(options.secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify'])
        : undefined;
    this.#jwks =
      options.jwksUrl !== undefined
        ? createRemoteJWKSet(new URL(options.jwksUrl), {
            ...(options.jwksCacheMaxAgeMs !== undefined ? { cacheMaxAge: options.jwksCacheMaxAgeMs } : {}),
            ...(options.jwksCooldownMs !== undefined ? { cooldownDuration: options.jwksCooldownMs } : {}),
          })
        : undefined;
    this.#asymmetric = new Set(options.asymmetricAlgorithms);
    this.#base = {
      clockTolerance: options.clockToleranceSeconds,
      ...(options.issuer !== undefined ? { issuer: options.issuer } : {}),
      ...(options.audience !== undefined ? { audience: [...(typeof options.audience === 'string' ? [options.audience] : options.audience)] } : {}),
    };
    const { issuer: _asymmetricIssuer, ...withoutIssuer } = this.#base;
    this.#hs = {
      ...withoutIssuer,
      ...(options.hsIssuers !== undefined
        ? { issuer: [...options.hsIssuers] }
        : options.issuer !== undefined
          ? { issuer: options.issuer }
          : {}),
      algorithms: ['HS256'],
    };
  }

  /** A token verified before and still valid (the verified-token cache), synchronously; undefined: verify() it. */
  cached(token: string): { principal: Principal; payload: JWTPayload } | undefined {
    return this.#cache.get(token);
  }

  async verify(token: string): Promise<{ principal: Principal; payload: JWTPayload }> {
    const cached = this.#cache.get(token);
    if (cached !== undefined) return cached;
    const result = await this.#verifyNow(token);
    const exp = result.payload.exp;
    this.#cache.set(token, result, exp === undefined ? undefined : (exp + this.options.clockToleranceSeconds) * 1000);
    return result;
  }

  /**
   * Every token must expire, and within the maximum lifetime: `exp - iat` (as issued) and
   * `exp - now` (a missing or future `iat` gains nothing) are both bounded.
   */
  #checkLifetime(payload: JWTPayload): void {
    const { exp, iat } = payload;
    if (typeof exp !== 'number' || !Number.isFinite(exp)) throw new TokenRejected('token has no expiry (exp)');
    const now = this.#now() / 1000;
    const tolerance = this.options.clockToleranceSeconds;
    if ((typeof iat === 'number' && exp - iat > this.#maxLifetime) || exp - now > this.#maxLifetime + tolerance) {
      throw new TokenRejected('token lifetime exceeds the maximum');
    }
  }

  async #verifyNow(token: string): Promise<{ principal: Principal; payload: JWTPayload }> {
    // jose decodes base64url leniently (`=` padding, other characters skipped, the unused low
    // bits of the last character ignored), so one signed token could be sent in many spellings:
    // each would pass, and each would be a key of its own in the verified-token cache and in
    // whatever an upstream keys on the token string. Only the canonical spelling is taken.
    if (!isCanonicalCompact(token)) throw new TokenRejected('malformed token');
    let alg: unknown;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      throw new TokenRejected('malformed token');
    }
    let payload: JWTPayload;
    try {
      if (alg === 'HS256') {
        if (this.#secret === undefined) throw new TokenRejected('HS256 tokens are not accepted here');
        ({ payload } = await jwtVerify(token, await this.#secret, this.#hs));
      } else if (typeof alg === 'string' && this.#asymmetric.has(alg) && this.#jwks !== undefined) {
        try {
          ({ payload } = await jwtVerify(token, this.#jwks, { ...this.#base, algorithms: [...this.#asymmetric] }));
        } catch (err) {
          // The key set could not be fetched: not the token's fault (the authenticator answers 503).
          if (isKeySetUnreachable(err)) throw new KeySetUnreachable(err);
          throw err;
        }
      } else {
        // Never name the algorithm: it is whatever the sender wrote.
        throw new TokenRejected('algorithm not accepted');
      }
    } catch (err) {
      if (err instanceof TokenRejected || err instanceof KeySetUnreachable) throw err;
      throw new TokenRejected(describeJoseError(err));
    }
    if (typeof payload.sub !== 'string' || payload.sub === '') throw new TokenRejected('token has no subject');
    this.#checkLifetime(payload);
    return {
      payload,
      principal: { kind: 'jwt', subject: payload.sub, scopes: scopesFromClaims(payload as Record<string, unknown>), mfa: hasMfa(payload) },
    };
  }
}

/** A compact JWS: three unpadded base64url parts, the last empty when unsigned (RFC 7515, section 7.1). */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** A compact JWS whose every part is the one base64url spelling of its bytes. */
function isCanonicalCompact(token: string): boolean {
  if (!COMPACT_JWS.test(token)) return false;
  for (const part of token.split('.')) if (Buffer.from(part, 'base64url').toString('base64url') !== part) return false;
  return true;
}

/** A short fixed reason for logs and the 401 body; never anything from the token. */
function describeJoseError(err: unknown): RejectionReason {
  if (err instanceof joseErrors.JWTExpired) return 'token expired';
  if (err instanceof joseErrors.JWTClaimValidationFailed) return isClaimName(err.claim) ? `claim "${err.claim}" invalid` : 'token invalid';
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'signature invalid';
  if (err instanceof joseErrors.JWKSNoMatchingKey) return 'no matching key';
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return 'algorithm not accepted';
  return 'token invalid';
}

/** The JWKS could not be fetched (timeout, network error, non-200 answer). */
export class KeySetUnreachable extends Error {
  constructor(cause: unknown) {
    super('JWKS unreachable', { cause });
    this.name = 'KeySetUnreachable';
  }
}

function isKeySetUnreachable(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return err instanceof joseErrors.JWKSTimeout || (err instanceof TypeError && /fetch/i.test(err.message)) || code === 'ERR_JOSE_GENERIC';
}
