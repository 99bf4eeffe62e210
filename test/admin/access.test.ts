import { describe, expect, it } from 'vitest';
import { accessRefusal, adminAccessPolicy } from '../../src/admin/access.js';
import { ApiKeyStore } from '../../src/auth/api-keys.js';
import { Authenticator } from '../../src/auth/authenticator.js';
import type { Principal } from '../../src/auth/principal.js';
import type { Scope } from '../../src/auth/scopes.js';
import { GatewayError } from '../../src/errors.js';

/*
 * The admin services' access rule is one rule on both faces: the REST endpoints under /admin
 * (the auth stage's Authenticator.authorize with adminAccessPolicy) and the MCP admin tools
 * (accessRefusal for each request's principal) refuse the same principals with the same code.
 */

const principal = (scopes: Scope[], mfa: boolean): Principal => ({ kind: 'jwt', subject: 'someone', scopes, mfa });

/** What the REST face answers: the auth stage's check of the route's policy. */
function restCode(authenticator: Authenticator, p: Principal, requireMfa: boolean): string | null {
  try {
    authenticator.authorize(p, adminAccessPolicy(requireMfa), 'GET');
    return null;
  } catch (err) {
    if (err instanceof GatewayError) return err.code;
    throw err;
  }
}

describe('admin access rule', () => {
  const authenticator = new Authenticator(undefined as never, new ApiKeyStore([]));
  const cases: Array<[Scope[], boolean]> = [
    [['read'], false],
    [['read'], true],
    [['write'], true],
    [['admin'], false],
    [['admin'], true],
    [['read', 'admin'], false],
    [[], true],
  ];

  it.each([false, true])('REST and MCP refuse the same principals with the same code (requireMfaForAdmin %s)', (requireMfa) => {
    for (const [scopes, mfa] of cases) {
      const p = principal(scopes, mfa);
      const mcp = accessRefusal(p, adminAccessPolicy(requireMfa));
      expect([scopes, mfa, mcp?.code ?? null]).toEqual([scopes, mfa, restCode(authenticator, p, requireMfa)]);
    }
    expect(accessRefusal(principal(['admin'], false), adminAccessPolicy(requireMfa))?.code ?? null).toBe(requireMfa ? 'GW_AUTH_MFA_REQUIRED' : null);
    expect(accessRefusal(principal(['read'], true), adminAccessPolicy(requireMfa))?.code).toBe('GW_AUTH_INSUFFICIENT_SCOPE');
  });

  it('refuses a request without credentials', () => {
    expect(accessRefusal(null, adminAccessPolicy(false))?.code).toBe('GW_AUTH_MISSING_CREDENTIALS');
  });
});
