import { validateHostHeader, type AuthInfo } from '@modelcontextprotocol/server';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { decodeJwt } from 'jose';
import type { Authenticator } from '../../src/auth/authenticator.js';
import { presentedCredential } from '../../src/auth/credentials.js';
import type { Principal } from '../../src/auth/principal.js';
import type { GatewayConfig } from '../../src/config/index.js';
import { SCOPE_VALUES } from '../../src/config/index.js';

const LOCALHOST_NAMES = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * Which browser Origins may call /mcp (DNS-rebinding protection, MCP transport security):
 * `mcp.allowedOrigins` when set, else the CORS origins, plus any localhost origin outside
 * production only (a production gateway is not reached from a developer's browser page; a
 * localhost origin there must be listed). A page on evil.example whose name resolves to
 * 127.0.0.1 still sends `Origin: http://evil.example`.
 */
export function mcpOriginPolicy(config: Pick<GatewayConfig, 'mcp' | 'cors' | 'environment'>): (origin: string) => boolean {
  const explicit = config.mcp.allowedOrigins;
  const allowed = new Set((explicit ?? config.cors.origins.filter((o) => o !== '*')).map((o) => o.toLowerCase()));
  const localhost = explicit === undefined && config.environment !== 'production';
  return (origin) => {
    const lower = origin.toLowerCase();
    if (allowed.has(lower)) return true;
    if (!localhost) return false;
    try {
      const url = new URL(lower);
      return (url.protocol === 'http:' || url.protocol === 'https:') && LOCALHOST_NAMES.has(url.hostname);
    } catch {
      return false;
    }
  };
}

/** Listen addresses that are no host name a client would send. */
const WILDCARD_ADDRESSES = new Set(['0.0.0.0', '::', '[::]']);

/**
 * Which Host names /mcp answers to (DNS-rebinding protection, checked with Origin: a page on
 * evil.example whose name resolves to the gateway sends `Host: evil.example`). The list is
 * `mcp.allowedHosts` when set, else the host of `mcp.resourceUrl`, plus outside production
 * localhost, 127.0.0.1, [::1] and the listen address. Null when there is no list (production
 * with neither key set: the gateway cannot know its public names, and says so at start-up).
 */
export function mcpHostPolicy(config: Pick<GatewayConfig, 'mcp' | 'environment' | 'server'>): ((host: string | undefined) => boolean) | null {
  const names = new Set<string>(config.mcp.allowedHosts ?? []);
  if (config.mcp.allowedHosts === undefined) {
    if (config.mcp.resourceUrl !== undefined) names.add(new URL(config.mcp.resourceUrl).hostname.toLowerCase());
    if (config.environment !== 'production') {
      for (const name of LOCALHOST_NAMES) names.add(name);
      const listen = config.server.host.toLowerCase();
      if (!WILDCARD_ADDRESSES.has(listen)) names.add(listen.includes(':') && !listen.startsWith('[') ? `[${listen}]` : listen);
    }
  }
  if (names.size === 0) return null;
  const allowed = [...names];
  return (host) => validateHostHeader(host, allowed).ok;
}

/*
 * Every /mcp request is authorised by its own credential: the auth stage verifies it (expiry
 * included) and sets the request's principal, and that principal builds the server instance
 * that serves the request (one per request, ./gateway-server.ts). It also travels as the
 * SDK's `authInfo` (handlers see it as `ctx.http.authInfo`), without the credential itself.
 */

/** The SDK's AuthInfo for a request's principal (none for an anonymous request). Never holds the credential. */
export function authInfoFor(principal: Principal | null, expiresAt?: number): AuthInfo | undefined {
  if (principal === null) return undefined;
  return {
    token: '',
    clientId: principal.subject,
    scopes: [...principal.scopes],
    ...(expiresAt !== undefined ? { expiresAt: Math.floor(expiresAt / 1000) } : {}),
    extra: { subject: principal.subject, mfa: principal.mfa },
  };
}

/**
 * With MCP_REQUIRE_AUTH=false credentials are optional, not ignored: a request without one is
 * anonymous, a valid one is used (an admin key gets the admin tools), an invalid or expired
 * one is refused as anywhere else (401), as is one without `read` scope (403).
 */
export async function optionalPrincipal(authenticator: Pick<Authenticator, 'authenticate' | 'authorize'>, request: FastifyRequest): Promise<Principal | null> {
  if (presentedCredential(request.headers) === null) return null;
  const principal = await authenticator.authenticate(request.headers);
  authenticator.authorize(principal, { required: true, scope: 'read' }, request.method);
  return principal;
}

/** When the request's bearer token expires (ms since the epoch), if it is a JWT with `exp`; it was verified by the auth stage. */
export function bearerExpiry(request: Pick<FastifyRequest, 'headers'>): number | undefined {
  const credential = presentedCredential(request.headers);
  if (credential?.kind !== 'bearer') return undefined;
  try {
    const exp = decodeJwt(credential.token).exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

const METADATA_PATH = '/.well-known/oauth-protected-resource';

/** A Host header is only echoed when it is a plain host[:port] (it ends up in a response header). */
const PLAIN_HOST = /^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/;

function resourceUrl(config: Pick<GatewayConfig, 'mcp'>, request: FastifyRequest): string {
  if (config.mcp.resourceUrl !== undefined) return config.mcp.resourceUrl;
  const host = request.headers.host;
  return `${request.protocol}://${host !== undefined && PLAIN_HOST.test(host) ? host : 'localhost'}/mcp`;
}

/**
 * RFC 9728 protected-resource metadata for /mcp when a JWT issuer is configured: an MCP
 * client learns which authorization server issues tokens for this gateway. The 401 of /mcp
 * points at it (`WWW-Authenticate: Bearer resource_metadata="…"`).
 */
async function protectedResourceMetadataPlugin(app: FastifyInstance, opts: { config: Pick<GatewayConfig, 'mcp' | 'auth'> }): Promise<void> {
  const { config } = opts;
  const issuer = config.auth.jwt.issuer;
  if (issuer === undefined) return;
  const metadata = (request: FastifyRequest) => ({
    resource: resourceUrl(config, request),
    authorization_servers: [issuer],
    bearer_methods_supported: ['header'],
    scopes_supported: [...SCOPE_VALUES],
    resource_name: 'Unified Gateway MCP server',
  });
  for (const url of [METADATA_PATH, `${METADATA_PATH}/mcp`]) {
    app.get(url, { config: { authPolicy: { required: false } } }, async (request, reply) => reply.header('cache-control', 'public, max-age=300').send(metadata(request)));
  }
  app.addHook('onSend', async (request, reply, payload) => {
    if (reply.statusCode !== 401 || !request.url.startsWith('/mcp')) return payload;
    const challenge = reply.getHeader('www-authenticate');
    if (typeof challenge === 'string' && challenge.startsWith('Bearer')) {
      const base = resourceUrl(config, request).replace(/\/mcp$/, '');
      reply.header('www-authenticate', `${challenge}, resource_metadata="${base}${METADATA_PATH}/mcp"`);
    }
    return payload;
  });
}

export const protectedResourceMetadata = fp(protectedResourceMetadataPlugin, { name: 'mcp-protected-resource-metadata', fastify: '5.x' });
