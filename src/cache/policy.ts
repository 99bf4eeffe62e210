import type { IncomingHttpHeaders } from 'node:http';
import CachePolicy from 'http-cache-semantics';
import type { RouteCacheConfig } from '../config/index.js';

/*
 * What may be stored and under which key (docs/architecture.md, "Response cache"). Pure functions: the
 * store and the request flow are in response-cache.ts.
 */

export interface CacheControl {
  readonly noStore: boolean;
  readonly noCache: boolean;
  readonly private: boolean;
  readonly public: boolean;
  readonly maxAge?: number;
  readonly sMaxAge?: number;
}

const EMPTY: CacheControl = { noStore: false, noCache: false, private: false, public: false };

function headerText(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value.join(',') : value;
}

function seconds(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value.replace(/^"|"$/g, ''));
  return Number.isInteger(n) && n >= 0 ? n : undefined;
}

/**
 * The directives of a request's Cache-Control that matter to the gateway (requestBypasses,
 * on every cached request: a few string operations; http-cache-semantics has no public
 * parser, and its request evaluation needs a policy object per entry).
 */
export function parseCacheControl(value: string | string[] | undefined): CacheControl {
  const text = headerText(value);
  if (text === undefined || text === '') return EMPTY;
  let noStore = false;
  let noCache = false;
  let priv = false;
  let pub = false;
  let maxAge: number | undefined;
  let sMaxAge: number | undefined;
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    const name = (eq === -1 ? part : part.slice(0, eq)).trim().toLowerCase();
    const arg = eq === -1 ? undefined : part.slice(eq + 1).trim();
    if (name === 'no-store') noStore = true;
    else if (name === 'no-cache') noCache = true;
    else if (name === 'private') priv = true;
    else if (name === 'public') pub = true;
    else if (name === 'max-age') maxAge = seconds(arg);
    else if (name === 's-maxage') sMaxAge = seconds(arg);
  }
  return {
    noStore,
    noCache,
    private: priv,
    public: pub,
    ...(maxAge !== undefined ? { maxAge } : {}),
    ...(sMaxAge !== undefined ? { sMaxAge } : {}),
  };
}

/** How a response may be stored: its lifetime, and whether it may be shared between principals. */
export interface StoreDecision {
  readonly ttlSeconds: number;
  /** Stored under the principal's subject (never served to another principal). */
  readonly perUser: boolean;
  /** Request headers named by Vary (lowercase, sorted); part of the key. */
  readonly vary: readonly string[];
  /**
   * May answer authenticated requests of any principal: what a shared cache may keep of an
   * authenticated request's answer (RFC 9111 §3.5: public, s-maxage or must-revalidate).
   */
  readonly public: boolean;
  /** A shared cache may not store it (private): never stored without a principal to store it under. */
  readonly private: boolean;
}

const CACHEABLE_STATUS = new Set([200, 203, 204, 300, 301, 404, 410]);

/*
 * Storability and lifetime come from http-cache-semantics (RFC 9111), asked as a shared
 * cache, or as a private one on per-user routes; the gateway adds its own rules around it.
 * The requests it is shown carry no header but, for "may this be shared between
 * principals", an Authorization: the client's own Cache-Control only decides whether the
 * lookup is skipped (requestBypasses), and the gateway never revalidates, so it uses the
 * lifetime only (no heuristic freshness, no `immutable` minimum).
 */
const ANONYMOUS: CachePolicy.Request = { method: 'GET', headers: {} };
const AUTHENTICATED: CachePolicy.Request = { method: 'GET', headers: { authorization: 'principal' } };
const POLICY_OPTIONS = { cacheHeuristic: 0, immutableMinTimeToLive: 0 } as const;

/**
 * The response headers the policy reads. Cache-Control is lowercased (directive names are
 * case-insensitive, RFC 9111 §5.2; the library compares them as written). A route's
 * ttlSeconds stands in as the Expires of an answer that states no lifetime of its own, so
 * s-maxage, max-age and the upstream's Expires all win over it.
 */
function policyHeaders(headers: Record<string, string | string[] | undefined>, cacheControl: string | undefined, route: RouteCacheConfig | undefined): CachePolicy.Headers {
  const out: CachePolicy.Headers = { ...headers };
  if (cacheControl !== undefined) out['cache-control'] = cacheControl.toLowerCase();
  if (route !== undefined && headers.expires === undefined) {
    let date = Date.parse(headerText(headers.date) ?? '');
    if (!Number.isFinite(date)) {
      date = Date.now();
      out.date = new Date(date).toUTCString();
    }
    out.expires = new Date(date + route.ttlSeconds * 1000).toUTCString();
  }
  return out;
}

/**
 * Whether the answer to a GET may be stored (undefined: not). The rules:
 *  - never: no-store, no-cache (the gateway does not revalidate), Set-Cookie, Vary: *,
 *    a status outside 200/203/204/300/301/404/410;
 *  - lifetime: s-maxage, else max-age, else Expires, less the upstream's Age; capped by the
 *    route's ttlSeconds when it has a `cache` block, which is also the lifetime of answers
 *    that state none; without any, not stored;
 *  - `private`: stored only on a per-user route (in that user's entries);
 *  - per user when the route says so, or the request was authenticated and the answer may
 *    not be shared between principals (no `public`, `s-maxage` or `must-revalidate`).
 */
export function storeDecision(
  status: number,
  headers: Record<string, string | string[] | undefined>,
  route: RouteCacheConfig | undefined,
  authenticated: boolean,
): StoreDecision | undefined {
  if (!CACHEABLE_STATUS.has(status)) return undefined;
  if (headers['set-cookie'] !== undefined) return undefined;
  const cacheControl = headerText(headers['cache-control']);
  // No lifetime from the upstream nor from the route: nothing to ask (most answers of most routes).
  if (route === undefined && cacheControl === undefined && headers.expires === undefined) return undefined;
  const vary = varyHeaders(headers.vary);
  if (vary === undefined) return undefined;
  const response: CachePolicy.Response = { status, headers: policyHeaders(headers, cacheControl, route) };
  const perUserRoute = route?.perUser === true;
  const policy = new CachePolicy(ANONYMOUS, response, { shared: !perUserRoute, ...POLICY_OPTIONS });
  if (!policy.storable()) return undefined;
  const lifetime = Math.floor(policy.maxAge()) - Math.floor(policy.age());
  const ttlSeconds = route !== undefined ? Math.min(lifetime, route.ttlSeconds) : lifetime;
  if (ttlSeconds <= 0) return undefined;
  const shared = perUserRoute ? new CachePolicy(ANONYMOUS, response, { shared: true, ...POLICY_OPTIONS }).storable() : true;
  const sharable = new CachePolicy(AUTHENTICATED, response, { shared: true, ...POLICY_OPTIONS }).storable();
  return { ttlSeconds, perUser: perUserRoute || (authenticated && !sharable), vary, public: sharable, private: !shared };
}

/** Vary as a sorted list of lowercase header names; undefined for `Vary: *` (never cached). */
export function varyHeaders(value: string | string[] | undefined): string[] | undefined {
  const text = headerText(value);
  if (text === undefined) return [];
  const names = new Set<string>();
  for (const part of text.split(',')) {
    const name = part.trim().toLowerCase();
    if (name === '*') return undefined;
    if (name !== '') names.add(name);
  }
  return [...names].sort();
}

/** The request part of the key: method, host, path and the query with its parameters sorted. */
export function baseKey(method: string, host: string | undefined, url: string): string {
  const q = url.indexOf('?');
  if (q === -1) return `${method} ${host ?? ''} ${url}`;
  const path = url.slice(0, q);
  const params = url
    .slice(q + 1)
    .split('&')
    .filter((p) => p !== '')
    .sort();
  return `${method} ${host ?? ''} ${path}?${params.join('&')}`;
}

/** The key with the principal (per-user entries) and the varied request headers. */
export function entryKey(base: string, subject: string | undefined, vary: readonly string[], headers: IncomingHttpHeaders): string {
  let key = subject === undefined ? `${base} @` : `${base} @${subject}`;
  for (const name of vary) key += `\n${name}:${headerText(headers[name]) ?? ''}`;
  return key;
}

/** The request asks not to be answered from the cache (Cache-Control: no-cache / no-store, Pragma: no-cache). */
export function requestBypasses(headers: IncomingHttpHeaders): boolean {
  const cc = headers['cache-control'];
  if (cc !== undefined) {
    const parsed = parseCacheControl(cc);
    if (parsed.noCache || parsed.noStore || parsed.maxAge === 0) return true;
  }
  return cc === undefined && headerText(headers.pragma)?.toLowerCase().includes('no-cache') === true;
}

function etagMatches(ifNoneMatch: string, etag: string): boolean {
  const weak = (t: string) => t.trim().replace(/^W\//, '');
  const target = weak(etag);
  return ifNoneMatch.split(',').some((t) => t.trim() === '*' || weak(t) === target);
}

/** The client's conditional headers match the stored validators (If-None-Match wins over If-Modified-Since). */
export function notModified(request: IncomingHttpHeaders, etag: string | undefined, lastModified: string | undefined): boolean {
  const inm = headerText(request['if-none-match']);
  if (inm !== undefined) return etag !== undefined && etagMatches(inm, etag);
  const ims = headerText(request['if-modified-since']);
  if (ims === undefined || lastModified === undefined) return false;
  const since = Date.parse(ims);
  const modified = Date.parse(lastModified);
  return !Number.isNaN(since) && !Number.isNaN(modified) && modified <= since;
}
