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
