import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { z } from 'zod';
import type { AuthConfig } from '../config/index.js';
import { GatewayError } from '../errors.js';
import type { ApiKeyStore } from './api-keys.js';
import type { Authenticator } from './authenticator.js';
import { bearerFromProtocols, isWebSocketUpgrade, presentedCredential } from './credentials.js';
import { PUBLIC, READ_ONLY } from './policy.js';
import type { Principal } from './principal.js';
import type { TokenIssuer } from './token-issuer.js';
import type { TotpVerifier } from './totp.js';
import type { WsTickets } from './ws-tickets.js';
import { routeOf } from '../request-route.js';

export interface AuthPluginOptions {
  readonly config: AuthConfig;
  readonly authenticator: Authenticator;
  readonly apiKeys: ApiKeyStore;
  readonly issuer: TokenIssuer;
  readonly totp: TotpVerifier;
  /** Browser tickets for WebSocket upgrades (POST /auth/ws-ticket); absent: WebSockets are off. */
  readonly wsTickets?: WsTickets;
}

const tokenRequestSchema = z.strictObject({ totp: z.string().max(16).optional() });

/**
 * The authentication stage: for every route whose config carries an auth policy, find the
 * principal and check scope and MFA before the body is read or anything reaches an
 * upstream. Also serves POST /auth/token, which trades an API key (plus a TOTP code for
 * enrolled principals) for a short-lived JWT.
 */
async function authPlugin(app: FastifyInstance, opts: AuthPluginOptions): Promise<void> {
  const { authenticator, apiKeys, issuer, totp, config, wsTickets } = opts;
  const totpSecrets = new Map(config.apiKeys.filter((k) => k.totpSecret !== undefined).map((k) => [k.name, k.totpSecret!]));

  app.decorateRequest('principal', null);
  // A callback hook: a known credential (an API key, a token verified before) is checked
  // synchronously; only a token not seen yet waits for its verification.
  app.addHook('onRequest', (request, _reply, done) => {
    const policy = routeOf(request).config.authPolicy;
    if (policy === undefined || !policy.required) return done();
    // WebSocket upgrades, and routes browsers reach without headers (EventSource: /v1/events), may use a ticket.
    const browserCredentials = wsTickets !== undefined && (isWebSocketUpgrade(request.headers) || routeOf(request).config.acceptsTicket === true);
    const known = browserCredentials ? undefined : authenticator.known(request.headers);
    if (known !== undefined) {
      request.principal = known;
      authenticator.authorize(known, policy, request.method);
      return done();
    }
    (browserCredentials ? upgradePrincipal(request.headers, request.query) : authenticator.authenticate(request.headers)).then((principal) => {
      let error: Error | undefined;
      try {
        request.principal = principal;
        authenticator.authorize(principal, policy, request.method);
      } catch (err) {
        error = err as Error;
      }
      done(error);
    }, done);
  });

  /**
   * A WebSocket upgrade, before anything reaches an upstream: the Authorization header or API
   * key as for HTTP; else (browsers) a single-use `?ticket=` or a `bearer.<token>` subprotocol.
   */
  async function upgradePrincipal(headers: Parameters<Authenticator['authenticate']>[0], query: unknown): Promise<Principal> {
    if (presentedCredential(headers) !== null) return authenticator.authenticate(headers);
    const ticket = (query as Record<string, unknown> | undefined)?.ticket;
    if (typeof ticket === 'string' && ticket !== '') return wsTickets!.redeem(ticket);
    if (ticket !== undefined) throw new GatewayError('GW_AUTH_TICKET_INVALID', 'The WebSocket ticket is not valid: malformed');
    const bearer = bearerFromProtocols(headers['sec-websocket-protocol']);
    return authenticator.authenticate(bearer !== undefined ? { authorization: `Bearer ${bearer}` } : {});
  }

  if (wsTickets !== undefined) {
    // A ticket for one WebSocket upgrade, as the caller: same principal, same scopes.
    app.post('/auth/ws-ticket', { config: { authPolicy: READ_ONLY }, bodyLimit: 1024 }, async (request, reply) => {
      const ticket = wsTickets.issue(request.principal!);
      return reply.header('cache-control', 'no-store').send({ ticket, expires_in: wsTickets.ttlSeconds });
    });
  }

  app.post('/auth/token', { config: { authPolicy: PUBLIC }, bodyLimit: 4096 }, async (request, reply) => {
    const credential = presentedCredential(request.headers);
    if (credential?.kind !== 'api-key') {
      throw new GatewayError('GW_AUTH_MISSING_CREDENTIALS', 'Send the API key in X-API-Key or "Authorization: ApiKey <key>"', {
        headers: { 'www-authenticate': 'ApiKey realm="unified-gateway"' },
      });
    }
    const entry = apiKeys.find(credential.key);
    if (entry === undefined) throw new GatewayError('GW_AUTH_INVALID_CREDENTIALS', 'The API key is not valid');
    const parsed = tokenRequestSchema.safeParse(request.body ?? {});
    if (!parsed.success) throw new GatewayError('GW_REQUEST_INVALID', 'The body may only hold {"totp": "<6 digits>"}');

    const amr = ['pwd'];
    const secret = totpSecrets.get(entry.name);
    if (secret !== undefined) {
      if (parsed.data.totp === undefined) throw new GatewayError('GW_AUTH_TOTP_REQUIRED');
      const check = await totp.check(entry.name, secret, parsed.data.totp);
      if (!check.ok) {
        request.log.warn({ key: entry.name, reason: check.reason, retryAfterSeconds: check.retryAfterSeconds }, 'TOTP refused');
        const retry = check.retryAfterSeconds !== undefined ? { 'retry-after': String(check.retryAfterSeconds) } : undefined;
        if (check.reason === 'locked') {
          throw new GatewayError('GW_AUTH_TOTP_LOCKED', `Too many wrong TOTP codes for this key; retry in ${check.retryAfterSeconds} s`, { headers: retry ?? {} });
        }
        const message = check.reason === 'replayed' ? 'This TOTP code was already used; wait for the next one' : 'The TOTP code is wrong';
        throw new GatewayError(
          'GW_AUTH_TOTP_INVALID',
          retry ? `${message}; too many wrong codes: this key is locked for ${check.retryAfterSeconds} s` : message,
          retry ? { headers: retry } : undefined,
        );
      }
      amr.push('otp', 'mfa');
    }
    const issued = await issuer.issue(`key:${entry.name}`, entry.scopes, amr);
    request.log.info({ key: entry.name, amr }, 'token issued');
    return reply.header('cache-control', 'no-store').send({
      access_token: issued.token,
      token_type: 'Bearer',
      expires_in: issued.expiresIn,
      scope: issued.scope,
    });
  });
}

export default fp(authPlugin, { name: 'gateway-auth', fastify: '5.x' });
