import type { IncomingHttpHeaders } from 'node:http';

export type PresentedCredential = { kind: 'bearer'; token: string } | { kind: 'api-key'; key: string } | { kind: 'malformed' } | null;

/**
 * The credential a request carries: `Authorization: Bearer <jwt>`, `Authorization: ApiKey
 * <key>` or `X-API-Key: <key>` (the last two kept for the older gateways' clients).
 */
export function presentedCredential(headers: IncomingHttpHeaders): PresentedCredential {
  const authorization = headers.authorization;
  if (authorization !== undefined) {
    const space = authorization.indexOf(' ');
    if (space <= 0) return { kind: 'malformed' };
    const scheme = authorization.slice(0, space).toLowerCase();
    const value = authorization.slice(space + 1).trim();
    if (value === '') return { kind: 'malformed' };
    if (scheme === 'bearer') return { kind: 'bearer', token: value };
    if (scheme === 'apikey') return { kind: 'api-key', key: value };
    return { kind: 'malformed' };
  }
  const apiKey = headers['x-api-key'];
  if (typeof apiKey === 'string' && apiKey !== '') return { kind: 'api-key', key: apiKey };
  if (Array.isArray(apiKey)) return { kind: 'malformed' };
  return null;
}

/**
 * Browsers cannot set headers on a WebSocket: they may offer the bearer token as a
 * subprotocol `bearer.<token>`, with the marker `bearer` next to it (`new WebSocket(url,
 * ['bearer', 'bearer.' + t])`, plus their own protocols if any). A browser fails the
 * connection unless the server selects one of the offered protocols, and the gateway never
 * echoes the token: it selects the upstream's choice, else the marker. Neither goes upstream.
 */
export const WS_BEARER_PROTOCOL_PREFIX = 'bearer.';
export const WS_BEARER_PROTOCOL_MARKER = 'bearer';

/** A protocol that only carries the gateway's credential (never forwarded, never a token echoed). */
export function isCredentialProtocol(protocol: string): boolean {
  return protocol === WS_BEARER_PROTOCOL_MARKER || protocol.startsWith(WS_BEARER_PROTOCOL_PREFIX);
}

/** The subprotocols a client offered (Sec-WebSocket-Protocol), in order. */
export function offeredProtocols(header: string | string[] | undefined): string[] {
  if (header === undefined) return [];
  return (Array.isArray(header) ? header.join(',') : header)
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
}

/** The bearer token offered as a `bearer.<token>` subprotocol, if any. */
export function bearerFromProtocols(header: string | string[] | undefined): string | undefined {
  const offered = offeredProtocols(header).find((p) => p.startsWith(WS_BEARER_PROTOCOL_PREFIX));
  const token = offered?.slice(WS_BEARER_PROTOCOL_PREFIX.length);
  return token === undefined || token === '' ? undefined : token;
}

/** A WebSocket upgrade request (`Upgrade: websocket`). */
export function isWebSocketUpgrade(headers: IncomingHttpHeaders): boolean {
  const upgrade = headers.upgrade;
  return typeof upgrade === 'string' && upgrade.toLowerCase() === 'websocket';
}
