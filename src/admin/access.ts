import type { Principal } from '../auth/principal.js';
import { grants } from '../auth/scopes.js';
import type { RouteAuthPolicy } from '../config/index.js';
import { GatewayError } from '../errors.js';

/*
 * Who may use the admin services, on every face: the REST endpoints under /admin (the auth
 * stage enforces this policy on their routes) and the MCP tools that change the gateway or
 * show its blocked clients (gateway-server checks it for each request's own principal).
 * One rule: the `admin` scope, plus a second factor when auth.requireMfaForAdmin.
 */

/** The admin services' access policy. */
export function adminAccessPolicy(requireMfaForAdmin: boolean): RouteAuthPolicy {
  return Object.freeze({ required: true, scope: 'admin' as const, mfa: requireMfaForAdmin });
}

/**
 * Why `principal` may not use a service under `policy`: the same catalogue error REST
 * answers with (GW_AUTH_MISSING_CREDENTIALS, GW_AUTH_INSUFFICIENT_SCOPE, GW_AUTH_MFA_REQUIRED),
 * or null when it may.
 */
export function accessRefusal(principal: Principal | null, policy: RouteAuthPolicy): GatewayError | null {
  if (!policy.required) return null;
  if (principal === null) return new GatewayError('GW_AUTH_MISSING_CREDENTIALS');
  const needed = policy.scope ?? 'admin';
  if (!grants(principal.scopes, needed)) return new GatewayError('GW_AUTH_INSUFFICIENT_SCOPE', `This request needs the "${needed}" scope`);
  if (policy.mfa === true && !principal.mfa) return new GatewayError('GW_AUTH_MFA_REQUIRED', 'This request needs a token obtained with a second factor (amr mfa or otp)');
  return null;
}
