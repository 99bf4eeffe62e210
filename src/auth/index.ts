import { randomBytes } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import type { GatewayConfig } from '../config/index.js';
import type { StateStore } from '../state/store.js';
import { ApiKeyStore } from './api-keys.js';
import { Authenticator } from './authenticator.js';
import { JwtVerifier } from './jwt.js';
import type { AuthPluginOptions } from './plugin.js';
import { TokenIssuer } from './token-issuer.js';
import { TotpVerifier } from './totp.js';
import { WsTickets } from './ws-tickets.js';

export { default as authPlugin } from './plugin.js';
export type { Principal } from './principal.js';
export { PUBLIC, READ_ONLY } from './policy.js';

/**
 * The auth stage's parts, built once at boot from the config. Without JWT_SECRET_KEY (only
 * allowed outside production) a random secret is made for this process: tokens it issues
 * work until it restarts and only on this replica. Used TOTP codes and TOTP failures live
 * in `state` (shared by the replicas with Redis).
 */
export function createAuth(config: GatewayConfig, log: FastifyBaseLogger, state: Pick<StateStore, 'increment' | 'deleteCounter' | 'claim' | 'release'>): AuthPluginOptions {
  let secret = config.secrets.jwtSecretKey;
  if (secret === undefined) {
    secret = randomBytes(32).toString('base64url');
    log.warn('JWT_SECRET_KEY is not set: using a random secret for this process (tokens do not survive a restart or cross replicas)');
  }
  const { jwt, tokens } = config.auth;
  const apiKeys = new ApiKeyStore(config.auth.apiKeys);
  const verifier = new JwtVerifier({
    secret,
    ...(jwt.jwksUrl !== undefined ? { jwksUrl: jwt.jwksUrl } : {}),
    asymmetricAlgorithms: jwt.algorithms,
    // JWKS tokens come from the configured issuer; HS256 ones may also be the gateway's own.
    ...(jwt.issuer !== undefined ? { issuer: jwt.issuer, hsIssuers: [jwt.issuer, tokens.issuer] } : {}),
    ...(jwt.audience !== undefined ? { audience: jwt.audience } : {}),
    clockToleranceSeconds: jwt.clockToleranceSeconds,
    jwksCacheMaxAgeMs: jwt.jwksCacheMaxAgeMs,
    jwksCooldownMs: jwt.jwksCooldownMs,
    maxLifetimeSeconds: jwt.maxLifetimeSeconds,
  });
  return {
    config: config.auth,
    apiKeys,
    authenticator: new Authenticator(verifier, apiKeys),
    issuer: new TokenIssuer({
      secret,
      issuer: tokens.issuer,
      ...(issuedAudience(config) !== undefined ? { audience: issuedAudience(config)! } : {}),
      ttlSeconds: tokens.ttlSeconds,
      maxTtlSeconds: jwt.maxLifetimeSeconds,
    }),
    totp: new TotpVerifier({ store: state, toleranceSeconds: tokens.totpToleranceSeconds, ...config.auth.totp }),
    ...(config.websocketsEnabled ? { wsTickets: new WsTickets({ secret, ttlSeconds: config.websockets.ticketTtlSeconds, store: state }) } : {}),
  };
}

/** Audience of gateway-issued tokens: the configured one, else one the verifier accepts. */
function issuedAudience(config: GatewayConfig): string | undefined {
  const { tokens, jwt } = config.auth;
  return tokens.audience ?? (typeof jwt.audience === 'string' ? jwt.audience : jwt.audience?.[0]);
}
