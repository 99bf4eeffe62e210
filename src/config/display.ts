import ipaddr from 'ipaddr.js';
import type { GatewayConfig } from './schema.js';

/* What the gateway shows of its config: a view safe to log, and warnings at start-up. */

/** A view of the config that is safe to log or show: secrets replaced, credentials in URLs hidden. */
export function redactConfig(config: GatewayConfig): unknown {
  const hideUrlCredentials = (u: string) => u.replace(/\/\/[^@/]*@/, '//***@');
  return {
    ...config,
    secrets: Object.fromEntries(Object.keys(config.secrets).map((k) => [k, '***'])),
    auth: {
      ...config.auth,
      apiKeys: config.auth.apiKeys.map((k) => ({ ...k, sha256: `${k.sha256.slice(0, 8)}…`, ...(k.totpSecret ? { totpSecret: '***' } : {}) })),
    },
    ...(config.redisUrl ? { redisUrl: hideUrlCredentials(config.redisUrl) } : {}),
    services: Object.fromEntries(
      Object.entries(config.services).map(([k, s]) => [k, { ...s, urls: s.urls.map(hideUrlCredentials) }]),
    ),
    // Upstream MCP servers: env and header values may hold `${VAR}` secrets: names only.
    mcp: {
      ...config.mcp,
      servers: Object.fromEntries(
        Object.entries(config.mcp.servers).map(([k, s]) => {
          const t = s.transport;
          const hide = (m: Readonly<Record<string, string>>) => Object.fromEntries(Object.keys(m).map((n) => [n, '***']));
          const transport = t.kind === 'stdio' ? { ...t, env: hide(t.env) } : { ...t, url: hideUrlCredentials(t.url), headers: hide(t.headers) };
          return [k, { ...s, transport }];
        }),
      ),
    },
  };
}

/** True when `host` (GATEWAY_HOST) is a loopback address or `localhost`; 0.0.0.0 and :: are not. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (!ipaddr.isValid(h)) return false;
  return ipaddr.process(h).range() === 'loopback';
}

/**
 * Start-up warnings about settings that are fine on a laptop and dangerous on a network: a
 * development (or test) gateway listening on a non-loopback address (0.0.0.0 counts), and
 * the loopback exemption on such a gateway (behind a sidecar every client is loopback).
 */
export function exposureWarnings(config: Pick<GatewayConfig, 'environment' | 'server' | 'rateLimit'>): string[] {
  if (isLoopbackHost(config.server.host)) return [];
  const out: string[] = [];
  if (config.environment === 'development' || config.environment === 'test') {
    out.push(
      `ENVIRONMENT=${config.environment} and listening on ${config.server.host}, not loopback: other machines can reach this gateway; set ENVIRONMENT=production for a deployment (production secrets, MFA for admin, HSTS, no MCP_REQUIRE_AUTH=false)`,
    );
  }
  if (config.rateLimit.exemptLoopback) {
    out.push(`rateLimit.exemptLoopback is on and listening on ${config.server.host}: loopback clients (and every client behind a local sidecar proxy) are never rate limited or blocked`);
  }
  return out;
}
