import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Principal } from '../../src/auth/principal.js';
import { isScope } from '../../src/auth/scopes.js';
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

/*
 * Every /mcp request is authorised by its own credential: the auth stage verifies it (expiry
 * included) and sets the request's principal; that principal travels with each JSON-RPC
 * message of the request as the SDK's `authInfo` (StreamableHTTPServerTransport.handleRequest
 * reads `req.auth`; handlers get it as `extra.authInfo`), so tools and the session's observer
 * decide scope and MFA per request, never from the session's initialize.
 */

/** The SDK's AuthInfo for a request's principal (none for an anonymous request). Never holds the credential. */
export function authInfoFor(principal: Principal | null): AuthInfo | undefined {
  if (principal === null) return undefined;
  return { token: '', clientId: principal.subject, scopes: [...principal.scopes], extra: { principal } };
}

/** The principal of the request a message came with (see authInfoFor); null: anonymous. */
export function requestPrincipal(extra: { readonly authInfo?: AuthInfo | undefined } | undefined): Principal | null {
  const candidate = extra?.authInfo?.extra?.principal as Partial<Principal> | undefined;
  if (candidate === undefined || candidate === null || typeof candidate !== 'object') return null;
  if (typeof candidate.subject !== 'string' || typeof candidate.mfa !== 'boolean' || !Array.isArray(candidate.scopes)) return null;
  if (!candidate.scopes.every((s) => typeof s === 'string' && isScope(s))) return null;
  return candidate as Principal;
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
