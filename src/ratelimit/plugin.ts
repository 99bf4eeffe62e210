import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { presentedCredential } from '../auth/credentials.js';
import type { ApiKeyConfig, RateLimitConfig } from '../config/index.js';
import { GatewayError, type ErrorCode } from '../errors.js';
import type { GatewayMetrics } from '../metrics/registry.js';
import '../auth/policy.js';
import '../auth/principal.js';
import '../routing/route-table.js';
import { CidrSet, clientKey } from './client-key.js';
import { rateLimitHeaders, retryAfterSeconds, type LimitOutcome, type RateLimiter } from './limiter.js';
import type { ThreatDetector } from './threat.js';
import { routeOf } from '../request-route.js';

/** What the stages know about the request's client. */
export interface RequestRateState {
  /** The client key (IP, or IPv6 /64). */
  readonly client: string;
  /** Allow-listed: never limited, slowed or blocked, and not scored. */
  skip: boolean;
  /** Multiplier of the quotas (< 1 for suspicious clients). */
  factor: number;
  /** The per-IP quota is left to the principal stage (one store call for both). */
  ipPending: boolean;
  readonly outcomes: LimitOutcome[];
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the rate-limit stage (null on the probe endpoints it leaves alone). */
    rateLimit: RequestRateState | null;
  }
}

export interface RateLimitStageOptions {
  readonly config: RateLimitConfig;
  /** The configured API keys, to recognise allow-listed ones before authentication. */
  readonly apiKeys: readonly ApiKeyConfig[];
  readonly limiter: RateLimiter;
  readonly threats: ThreatDetector;
  readonly metrics: Pick<GatewayMetrics, 'threatActions'>;
}

/** Liveness and readiness probes: never limited (a kubelet must always reach them). */
const PROBE_URLS = new Set(['/livez', '/readyz']);

/** Auth failures that count as a 401/403 burst (not GW_AUTH_UNAVAILABLE: not the client's doing). */
const AUTH_FAILURES = new Set<ErrorCode>([
  'GW_AUTH_MISSING_CREDENTIALS',
  'GW_AUTH_INVALID_CREDENTIALS',
  'GW_AUTH_INSUFFICIENT_SCOPE',
  'GW_AUTH_MFA_REQUIRED',
  'GW_AUTH_TOTP_REQUIRED',
  'GW_AUTH_TOTP_INVALID',
  'GW_AUTH_TOTP_LOCKED',
]);

function tooMany(refused: LimitOutcome, outcomes: readonly LimitOutcome[]): GatewayError {
  const retryAfter = retryAfterSeconds(refused);
  return new GatewayError('GW_RATE_LIMITED', `Rate limit "${refused.policy}" reached: ${refused.decision.limit} requests per ${refused.windowSeconds} s; retry in ${retryAfter} s`, {
    headers: { ...rateLimitHeaders(outcomes), 'retry-after': String(retryAfter) },
  });
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The fulfilment handler of a callback hook's store call: runs `work`, then calls `done` once,
 * with what `work` threw if it threw (so nothing escapes as an unhandled rejection).
 */
function settle<T>(done: (err?: Error) => void, work: (value: T) => void): (value: T) => void {
  return (value) => {
    let error: Error | undefined;
    try {
      work(value);
    } catch (err) {
      error = err as Error;
    }
    done(error);
  };
}

/**
 * The client stage, before input validation and authentication: refuses blocked clients,
 * slows (tarpit) or tightens the quotas of suspicious ones, then applies the per-IP quota —
 * here for requests that need no credentials; for the others the principal stage checks it
 * first, in the same store call as the principal's quota. It also turns what later stages
 * answer into threat signals — auth failures (onError), 404s on paths nothing serves
 * (onResponse) — and writes the RateLimit headers on every response (onSend).
 */
async function clientStage(app: FastifyInstance, opts: RateLimitStageOptions): Promise<void> {
  const { config, limiter, threats, metrics } = opts;
  const threat = config.threat;
  const cidrs = new CidrSet(config.allowList.cidrs);
  const allowedKeys = new Set(config.allowList.keys);
  const allowedDigests = new Set(opts.apiKeys.filter((k) => allowedKeys.has(k.name)).map((k) => k.sha256));
  let tarpitted = 0;

  const presentsAllowedKey = (request: FastifyRequest): boolean => {
    if (allowedDigests.size === 0) return false;
    const credential = presentedCredential(request.headers);
    return credential?.kind === 'api-key' && allowedDigests.has(createHash('sha256').update(credential.key, 'utf8').digest('hex'));
  };

  app.decorateRequest('rateLimit', null);

  /** The per-IP quota of a request that needs no credentials (the principal stage checks the others'). */
  const ipQuota = (request: FastifyRequest, state: RequestRateState, done: (err?: Error) => void): void => {
    const route = routeOf(request).config.gatewayRoute;
    if (!config.enabled || route?.rateLimit === false) return done();
    // When the principal stage will check a quota anyway (the route needs credentials, or has
    // its own quota), it checks the per-IP quota first in the same call: one Redis round
    // trip per request instead of two. Blocked and suspicious clients were dealt with above.
    if (routeOf(request).config.authPolicy?.required === true || route?.rateLimit !== undefined) {
      state.ipPending = true;
      return done();
    }
    limiter.checkIp(state.client, state.factor).then(
      settle(done, (outcome) => {
        state.outcomes.push(outcome);
        if (!outcome.decision.allowed) {
          threats.record(state.client, 'rate_limited');
          throw tooMany(outcome, state.outcomes);
        }
      }),
      done,
    );
  };

  // A callback hook: what most requests go through (probes, allow-listed clients, routes whose
  // quota the principal stage checks) is synchronous, and pays no promise for it.
  app.addHook('onRequest', (request, _reply, done) => {
    const url = routeOf(request).url;
    if (url !== undefined && PROBE_URLS.has(url)) return done();
    const state: RequestRateState = { client: clientKey(request.ip), skip: false, factor: 1, ipPending: false, outcomes: [] };
    request.rateLimit = state;
    if (cidrs.has(request.ip) || presentsAllowedKey(request)) {
      state.skip = true;
      return done();
    }

    if (threat.enabled) {
      const block = threats.blocked(state.client);
      if (block !== undefined) {
        metrics.threatActions.inc({ action: 'blocked' });
        throw new GatewayError('GW_SECURITY_CLIENT_BLOCKED', `This client is blocked for ${block.retryAfterSeconds} s after suspicious activity`, {
          headers: { 'retry-after': String(block.retryAfterSeconds) },
        });
      }
      const level = threats.levelOf(state.client);
      if (level !== 'low') {
        state.factor = threat.mediumLimitFactor;
        if (level === 'medium') metrics.threatActions.inc({ action: 'tightened' });
        else if (threat.tarpitMs > 0) {
          if (tarpitted >= threat.maxTarpitted) {
            // The tarpit is full: refuse rather than hold more sockets.
            throw new GatewayError('GW_RATE_LIMITED', 'Too many requests from this client; slow down', {
              headers: { 'retry-after': String(Math.max(1, Math.ceil(threat.tarpitMs / 1000))) },
            });
          }
          metrics.threatActions.inc({ action: 'tarpitted' });
          tarpitted += 1;
          void sleep(threat.tarpitMs).then(() => {
            tarpitted -= 1;
            try {
              ipQuota(request, state, done);
            } catch (err) {
              done(err as Error);
            }
          });
          return;
        }
      }
    }
    ipQuota(request, state, done);
  });

  app.addHook('onError', (request, _reply, error, done) => {
    const state = request.rateLimit;
    if (state !== null && !state.skip && error instanceof GatewayError && AUTH_FAILURES.has(error.code)) threats.record(state.client, 'auth_failed', error.code);
    done();
  });

  app.addHook('onResponse', (request, reply, done) => {
    const state = request.rateLimit;
    if (state === null || state.skip) return done();
    // A path nothing serves: scanning looks like many of these, each a different path.
    const notFound = () => {
      if (reply.statusCode === 404 && request.is404) threats.record(state.client, 'not_found', request.url.split('?', 1)[0]);
    };
    if (!state.ipPending) {
      notFound();
      return done();
    }
    // Refused before the principal stage (credentials, input): the request still counts
    // against the client's per-IP quota, after the fact.
    state.ipPending = false;
    limiter.checkIp(state.client, state.factor).then(
      settle(done, (outcome) => {
        if (!outcome.decision.allowed) threats.record(state.client, 'rate_limited');
        notFound();
      }),
      done,
    );
  });

  app.addHook('onSend', (request: FastifyRequest, reply: FastifyReply, payload: unknown, done: (err: null, payload: unknown) => void) => {
    const state = request.rateLimit;
    if (state !== null && state.outcomes.length > 0) reply.headers(rateLimitHeaders(state.outcomes));
    done(null, payload);
  });
}

/**
 * The principal stage, after authentication: the per-IP quota when the client stage left it
 * here, then the per-principal quota or the route's own — one atomic store call.
 */
async function principalStage(app: FastifyInstance, opts: Pick<RateLimitStageOptions, 'config' | 'limiter' | 'threats'>): Promise<void> {
  const { config, limiter, threats } = opts;
  const allowedKeys = new Set(config.allowList.keys);

  // A callback hook: skipped and allow-listed requests pay no promise.
  app.addHook('onRequest', (request, _reply, done) => {
    const state = request.rateLimit;
    if (!config.enabled || state === null || state.skip) return done();
    const route = routeOf(request).config.gatewayRoute;
    if (route?.rateLimit === false) return done();
    const principal = request.principal;
    if (principal?.keyName !== undefined && allowedKeys.has(principal.keyName)) {
      state.skip = true;
      state.ipPending = false;
      return done();
    }
    const withIp = state.ipPending;
    state.ipPending = false;
    limiter
      .checkIdentity({
        client: state.client,
        ...(principal?.subject !== undefined ? { subject: principal.subject } : {}),
        ...(route !== undefined ? { route } : {}),
        factor: state.factor,
        withIp,
      })
      .then(
        settle(done, (outcomes) => {
          state.outcomes.push(...outcomes);
          const last = outcomes[outcomes.length - 1];
          if (last !== undefined && !last.decision.allowed) {
            threats.record(state.client, 'rate_limited');
            throw tooMany(last, state.outcomes);
          }
        }),
        done,
      );
  });
}

export const rateLimitClientStage = fp(clientStage, { name: 'gateway-rate-limit-client', fastify: '5.x' });
export const rateLimitPrincipalStage = fp(principalStage, {
  name: 'gateway-rate-limit-principal',
  fastify: '5.x',
  dependencies: ['gateway-rate-limit-client', 'gateway-auth'],
});
