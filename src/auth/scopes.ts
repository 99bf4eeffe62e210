/**
 * Scopes are ordered: `admin` includes `write`, which includes `read`. A token granted
 * `write` may therefore GET, and an admin may do everything.
 */
export const SCOPES = ['read', 'write', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

const RANK: Record<Scope, number> = { read: 1, write: 2, admin: 3 };

export function isScope(value: string): value is Scope {
  return value === 'read' || value === 'write' || value === 'admin';
}

/** Scopes from a JWT payload: `scope` (space-separated, RFC 8693) or `scopes` (array or string). */
export function scopesFromClaims(payload: Record<string, unknown>): Scope[] {
  const raw: unknown[] = [];
  if (typeof payload.scope === 'string') raw.push(...payload.scope.split(' '));
  if (Array.isArray(payload.scopes)) raw.push(...payload.scopes);
  else if (typeof payload.scopes === 'string') raw.push(...payload.scopes.split(' '));
  const out = new Set<Scope>();
  for (const s of raw) if (typeof s === 'string' && isScope(s)) out.add(s);
  return [...out];
}

export function grants(granted: readonly Scope[], needed: Scope): boolean {
  const need = RANK[needed];
  for (const s of granted) if (RANK[s] >= need) return true;
  return false;
}

const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Default scope a method needs: reads need `read`, everything else `write`. */
export function scopeForMethod(method: string): Scope {
  return READ_METHODS.has(method) ? 'read' : 'write';
}
