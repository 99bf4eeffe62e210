import type { IncomingHttpHeaders } from 'node:http';
import type { RouteAuthPolicy } from '../config/index.js';
import { GatewayError } from '../errors.js';
import type { ApiKeyStore } from './api-keys.js';
import { presentedCredential } from './credentials.js';
import { KeySetUnreachable, TokenRejected, type JwtVerifier } from './jwt.js';
import type { Principal } from './principal.js';
import { grants, scopeForMethod } from './scopes.js';

const REALM = 'Bearer realm="unified-gateway"';

/**
 * RFC 6750 §3 challenge for a rejected request. The values are the gateway's own fixed
 * phrases; as a second line of defence anything outside RFC 6750's quoted-value characters
 * (printable ASCII but `"` and `\`) is dropped, so no value can break the header.
 */
function challenge(error?: string, extra: Record<string, string> = {}): Record<string, string> {
  if (error === undefined) return { 'www-authenticate': REALM };
  const params = Object.entries({ error, ...extra })
    .map(([k, v]) => `${k}="${v.replace(/[^\x20\x21\x23-\x5b\x5d-\x7e]/g, '').slice(0, 200)}"`)
    .join(', ');
  return { 'www-authenticate': `${REALM}, ${params}` };
}

/** Who is calling (authentication) and may they (authorization), for one request. */
export class Authenticator {
  constructor(
    private readonly jwt: JwtVerifier,
    private readonly apiKeys: ApiKeyStore,
  ) {}

  /**
   * The principal of a credential known good without waiting: a valid API key, or a token in
   * the verified-token cache. undefined: call authenticate() (which also refuses what is wrong).
   */
  known(headers: IncomingHttpHeaders): Principal | undefined {
    const credential = presentedCredential(headers);
    if (credential === null || credential.kind === 'malformed') return undefined;
    if (credential.kind === 'api-key') return this.apiKeys.principal(credential.key);
    return this.jwt.cached(credential.token)?.principal;
  }

  async authenticate(headers: IncomingHttpHeaders): Promise<Principal> {
    const credential = presentedCredential(headers);
    if (credential === null) throw new GatewayError('GW_AUTH_MISSING_CREDENTIALS', undefined, { headers: challenge() });
    if (credential.kind === 'malformed') {
      throw new GatewayError('GW_AUTH_INVALID_CREDENTIALS', 'The Authorization header must be "Bearer <token>" or "ApiKey <key>"', {
        headers: challenge('invalid_request'),
      });
    }
    if (credential.kind === 'api-key') {
      const principal = this.apiKeys.principal(credential.key);
      if (principal === undefined) throw new GatewayError('GW_AUTH_INVALID_CREDENTIALS', 'The API key is not valid', { headers: challenge('invalid_token') });
      return principal;
    }
    try {
      return (await this.jwt.verify(credential.token)).principal;
    } catch (err) {
      if (err instanceof TokenRejected) {
        throw new GatewayError('GW_AUTH_INVALID_CREDENTIALS', `The token is not valid: ${err.reason}`, {
          headers: challenge('invalid_token', { error_description: err.reason }),
        });
      }
      if (err instanceof KeySetUnreachable) throw new GatewayError('GW_AUTH_UNAVAILABLE', undefined, { cause: err, headers: { 'retry-after': '5' } });
      throw err;
    }
  }

  /**
   * Whether the request carries a valid credential that `policy` admits, without refusing
   * anything (a public endpoint showing more to an admin, e.g. /healthz). No credential,
   * a bad one or an unreachable key set: false.
   */
  async satisfies(headers: IncomingHttpHeaders, policy: RouteAuthPolicy, method = 'GET'): Promise<boolean> {
    if (presentedCredential(headers) === null) return false;
    try {
      this.authorize(await this.authenticate(headers), policy, method);
      return true;
    } catch {
      return false;
    }
  }

  /** Throws when the principal may not make this request under the route's policy. */
  authorize(principal: Principal, policy: RouteAuthPolicy, method: string): void {
    const needed = policy.scope ?? scopeForMethod(method);
    if (!grants(principal.scopes, needed)) {
      throw new GatewayError('GW_AUTH_INSUFFICIENT_SCOPE', `This request needs the "${needed}" scope`, {
        headers: challenge('insufficient_scope', { scope: needed }),
      });
    }
    if (policy.mfa === true && !principal.mfa) {
      // RFC 9470 step-up: the caller must re-authenticate with a second factor.
      throw new GatewayError('GW_AUTH_MFA_REQUIRED', undefined, {
        headers: challenge('insufficient_user_authentication', { error_description: 'a token with amr mfa or otp is required' }),
      });
    }
  }
}
