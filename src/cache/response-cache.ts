import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Keyv } from 'keyv';
import '../auth/principal.js';
import type { ResponseCacheConfig, RouteCacheConfig, RouteConfig } from '../config/index.js';
import { GatewayError } from '../errors.js';
import type { GatewayMetrics } from '../metrics/registry.js';
import type { StateStore } from '../state/index.js';
import { baseKey, entryKey, notModified, requestBypasses, storeDecision } from './policy.js';

/*
 * The response cache of the proxied GET/HEAD routes (docs/architecture.md, "Response cache"): entries in a
 * Keyv from the state store (memory, or Redis with REDIS_URL), concurrent misses of one key
 * coalesced into one upstream call, 304 for matching conditional requests.
 *
 * The request path (src/proxy/request-path.ts) drives it in steps, never through a callback:
 * lookup() before the upstream (a fresh entry is sent with answer()), storeAndSend() with the
 * upstream's answer, release() when the request is done, stale() for the stale-cache fallback.
 */

type Maybe<T> = T | Promise<T>;

/** `next(value)` at once when the value is at hand, once it resolves otherwise. */
function then<T, R>(value: Maybe<T>, next: (value: T) => Maybe<R>): Maybe<R> {
  return value instanceof Promise ? value.then(next) : next(value);
}

/** In the hot map: this key has no entry in the Keyv (a caller's own entry, while a shared one serves). */
const ABSENT = Symbol('absent');

/** A stored answer. The body is base64 so that it survives Redis' JSON serialisation. */
export interface CachedEntry {
  readonly status: number;
  readonly headers: Record<string, string | string[]>;
  readonly body: string;
  /** Epoch ms when stored. */
  readonly storedAt: number;
  /** Epoch ms until which it answers as fresh; after it, only the `stale-cache` fallback uses it. */
  readonly freshUntil: number;
  readonly vary: readonly string[];
  /** Cache-Control: public: may answer authenticated requests of any principal. */
  readonly public: boolean;
}

/** Under the key without varied headers when the answer has a Vary: which headers it names. */
interface VaryIndex {
  readonly varyIndex: readonly string[];
}

/** What the cache keeps in its Keyv. */
export type CacheStored = CachedEntry | VaryIndex;
type Stored = CacheStored;

/** Published once per route and replica: the route has had a cacheable answer (look it up from now on). */
const CACHEABLE_ROUTE_TOPIC = 'cache:cacheable-route';

/** Headers of a stored answer also sent with a 304. */
const NOT_MODIFIED_HEADERS = ['cache-control', 'content-location', 'date', 'etag', 'expires', 'last-modified', 'vary'];

/** Answers in the gateway's name: never taken over from a stored answer. */
const NOT_STORED_HEADERS = new Set(['age', 'x-cache', 'x-request-id', 'x-gateway-fallback', 'content-length']);

/** The request carries credentials the gateway did not resolve to a principal: never cached. */
function unresolvedCredentials(request: FastifyRequest): boolean {
  const h = request.headers;
  return request.principal == null && (h.authorization !== undefined || h['x-api-key'] !== undefined || h.cookie !== undefined);
}

function variantKey(base: string, variant: string | undefined): string {
  return variant === undefined ? base : `${base} ~${variant}`;
}

/** The cache's view of one request, from lookup() to release(). */
export class CacheLookup {
  /** The coalescing flight this request leads: concurrent misses of its key wait for its answer. */
  settle: ((entry: CachedEntry | undefined) => void) | undefined = undefined;
  flightKey: string | undefined = undefined;

  constructor(
    readonly routeId: string,
    readonly routeCache: RouteCacheConfig | undefined,
    /** The key without principal and varied headers (origin, path and sorted query, variant). */
    readonly base: string,
    readonly subject: string | undefined,
    /** The upstream's answer may be stored (a GET). */
    readonly store: boolean,
    /** A stored answer to send instead of asking the upstream. */
    readonly entry?: CachedEntry,
    readonly result: 'hit' | 'coalesced' = 'hit',
  ) {}
}

export interface ResponseCacheOptions {
  /** The clock (epoch ms) of lifetimes and Age; tests pass their own. */
  readonly now?: () => number;
}

export class ResponseCache {
  private readonly inflight = new Map<string, Promise<CachedEntry | undefined>>();
  /** Bytes of what this replica stored, oldest first: the in-memory bound. */
  private readonly sizes = new Map<string, number>();
  private totalBytes = 0;
  /** Routes without a `cache` block that have had a cacheable answer: only these are looked up. */
  private readonly seenCacheable = new Set<string>();
  /**
   * Fresh entries as objects, in front of the Keyv (whose memory and Redis stores hold JSON):
   * a hit then costs no JSON parse and no base64 decode. Only used while an entry is fresh,
   * so an entry another replica stored later is seen once this one's lifetime ends; bounded
   * by maxTotalBytes, oldest dropped first.
   */
  private readonly hot = new Map<string, { readonly stored: Stored | typeof ABSENT; readonly until: number; readonly bytes: number }>();
  private hotBytes = 0;
  /** Each entry's body decoded once (entries are immutable). */
  private readonly bodies = new WeakMap<CachedEntry, Buffer>();
  /** Writes to the Keyv still under way (they never delay an answer). */
  private readonly writes = new Set<Promise<void>>();
  private readonly now: () => number;

  private readonly unsubscribe: (() => void) | undefined;

  /** `bus`: the state store, to tell the other replicas which routes have cacheable answers. */
  constructor(
    private readonly config: ResponseCacheConfig,
    private readonly store: Keyv<Stored>,
    private readonly metrics: Pick<GatewayMetrics, 'cacheRequests'>,
    private readonly bus?: Pick<StateStore, 'publish' | 'subscribe'>,
    options: ResponseCacheOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.unsubscribe = bus?.subscribe(CACHEABLE_ROUTE_TOPIC, (message) => {
      if (typeof message.data === 'string') this.seenCacheable.add(message.data);
    });
  }

  close(): void {
    this.unsubscribe?.();
  }

  /** Whether GET/HEAD requests of `route` go through the cache at all. */
  handles(route: RouteConfig): boolean {
    return this.config.enabled && route.cache !== false;
  }

  /**
   * Step one, before the upstream: what the cache has for this request. undefined: the cache
   * takes no part (not GET/HEAD, or credentials the gateway did not resolve); a lookup with an
   * `entry`: send it with answer(); otherwise go upstream and give the answer to storeAndSend().
   * Synchronous when no store needs reading (a route not looked up yet, a request bypassing
   * the lookup). `origin` is the scheme and host as the gateway forwards them, so an answer
   * that reflects them is never shared across them; `variant` keeps apart answers that differ
   * for the same URL (the canary side of a split).
   */
  lookup(request: FastifyRequest, route: RouteConfig, origin: string, variant?: string): CacheLookup | Promise<CacheLookup> | undefined {
    const method = request.method;
    if ((method !== 'GET' && method !== 'HEAD') || unresolvedCredentials(request)) return undefined;
    const routeCache = route.cache === false ? undefined : route.cache;
    const subject = request.principal?.subject;
    const base = variantKey(baseKey('GET', origin, request.url), variant);
    const store = method === 'GET';
    if (routeCache === undefined && !this.seenCacheable.has(route.id)) return new CacheLookup(route.id, routeCache, base, subject, store);
    if (requestBypasses(request.headers)) {
      this.metrics.cacheRequests.inc({ result: 'bypass' });
      return new CacheLookup(route.id, routeCache, base, subject, store);
    }
    return this.consult(request.headers, route.id, routeCache, base, subject, store);
  }

  /** A fresh entry answers; otherwise the miss path. Synchronous when the hot map had what it needed. */
  private consult(headers: IncomingHttpHeaders, routeId: string, routeCache: RouteCacheConfig | undefined, base: string, subject: string | undefined, store: boolean): Maybe<CacheLookup> {
    return then(this.find(base, routeCache, subject, headers), (found) =>
      found !== undefined && found.freshUntil > this.now()
        ? new CacheLookup(routeId, routeCache, base, subject, false, found, 'hit')
        : this.missed(routeId, routeCache, base, subject, store),
    );
  }

  private async missed(routeId: string, routeCache: RouteCacheConfig | undefined, base: string, subject: string | undefined, store: boolean): Promise<CacheLookup> {
    // Concurrent misses of one key: the first asks upstream, the others wait for its answer.
    const flightKey = `${base} @${subject ?? ''}`;
    const pending = this.inflight.get(flightKey);
    if (pending !== undefined) {
      const entry = await pending;
      // The flight key holds the subject, so the entry is shared or this principal's own; when
      // it varies, the waiters' varied headers may differ: those go upstream themselves.
      if (entry !== undefined && entry.vary.length === 0) return new CacheLookup(routeId, routeCache, base, subject, false, entry, 'coalesced');
    }
    this.metrics.cacheRequests.inc({ result: 'miss' });
    const lookup = new CacheLookup(routeId, routeCache, base, subject, store);
    if (store && pending === undefined) {
      lookup.flightKey = flightKey;
      this.inflight.set(flightKey, new Promise((resolve) => (lookup.settle = resolve)));
    }
    return lookup;
  }

  /** Send the entry a lookup found (a hit, or a concurrent miss's answer); 304 when the client's validators match. */
  answer(request: FastifyRequest, reply: FastifyReply, lookup: CacheLookup): FastifyReply {
    return this.serve(request, reply, lookup.entry!, lookup.result);
  }

  /**
   * Step two, with the upstream's answer (`headers`: those that may go to the client): store
   * it when it may be (docs/architecture.md, "Response cache") and send it, `x-cache: MISS`. Bodies within
   * maxEntryBytes are buffered to be stored; larger ones stream through.
   */
  storeAndSend(request: FastifyRequest, reply: FastifyReply, lookup: CacheLookup, status: number, headers: Record<string, string | string[]>, body: Readable | Buffer): FastifyReply | Promise<FastifyReply> {
    const decision = lookup.store ? storeDecision(status, headers, lookup.routeCache, lookup.subject !== undefined) : undefined;
    const length = Number(headers['content-length'] ?? 0);
    if (decision === undefined || (decision.perUser && lookup.subject === undefined && decision.private) || length > this.config.maxEntryBytes) {
      lookup.settle?.(undefined);
      return reply.code(status).headers(headers).header('x-cache', 'MISS').send(body);
    }
    return this.bufferAndStore(request, reply, lookup, decision, status, headers, body);
  }

  private async bufferAndStore(
    request: FastifyRequest,
    reply: FastifyReply,
    lookup: CacheLookup,
    decision: NonNullable<ReturnType<typeof storeDecision>>,
    status: number,
    headers: Record<string, string | string[]>,
    body: Readable | Buffer,
  ): Promise<FastifyReply> {
    // Already read whole by the request path (a small answer; its Content-Length was checked against maxEntryBytes).
    const buffered = Buffer.isBuffer(body) ? body : await this.buffer(body);
    reply.code(status).headers(headers).header('x-cache', 'MISS');
    if (!Buffer.isBuffer(buffered)) {
      lookup.settle?.(undefined);
      return reply.send(buffered);
    }
    const now = this.now();
    const stored: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(headers)) {
      if (!NOT_STORED_HEADERS.has(name)) stored[name] = value;
    }
    const entry: CachedEntry = { status, headers: stored, body: buffered.toString('base64'), storedAt: now, freshUntil: now + decision.ttlSeconds * 1000, vary: decision.vary, public: decision.public };
    this.bodies.set(entry, buffered);
    if (!this.seenCacheable.has(lookup.routeId)) {
      this.seenCacheable.add(lookup.routeId);
      void this.bus?.publish(CACHEABLE_ROUTE_TOPIC, lookup.routeId).catch(() => {});
    }
    lookup.settle?.(entry);
    const scope = decision.perUser ? lookup.subject : undefined;
    const write = this.put(lookup.base, scope, entry, (decision.ttlSeconds + this.config.staleSeconds) * 1000, request.headers, buffered.length).catch((err: unknown) => {
      request.log.warn({ err: (err as Error).message }, 'response cache: store failed');
    });
    this.writes.add(write);
    void write.finally(() => this.writes.delete(write));
    return reply.send(buffered);
  }

  /** Last step, whatever happened: a flight this request led ends (its waiters go upstream themselves when it stored nothing). */
  release(lookup: CacheLookup): void {
    if (lookup.flightKey === undefined) return;
    lookup.settle?.(undefined); // no-op when the answer already settled it
    this.inflight.delete(lookup.flightKey);
  }

  /** Resolves once the writes to the store started so far are done (tests, shutdown). */
  async writesSettled(): Promise<void> {
    while (this.writes.size > 0) await Promise.allSettled([...this.writes]);
  }

  /**
   * The `stale-cache` fallback: the request's entry, fresh or kept past its lifetime, with
   * `x-cache: STALE`, Age and Warning; undefined when there is none.
   */
  async stale(request: FastifyRequest, reply: FastifyReply, route: RouteConfig, origin: string, variant?: string): Promise<FastifyReply | undefined> {
    if ((request.method !== 'GET' && request.method !== 'HEAD') || unresolvedCredentials(request) || !this.handles(route)) return undefined;
    const routeCache = route.cache === false ? undefined : route.cache;
    const entry = await this.find(variantKey(baseKey('GET', origin, request.url), variant), routeCache, request.principal?.subject, request.headers);
    if (entry === undefined) return undefined;
    reply.header('warning', '110 - "Response is Stale"').header('x-gateway-fallback', 'stale-cache');
    return this.serve(request, reply, entry, 'stale');
  }

  /**
   * The stored answer for this request: per-user entries first where they may exist, shared
   * ones when allowed. Each step is synchronous when its key is in the hot map (a hit then
   * costs no promise and no microtask turn), and waits for the Keyv otherwise.
   */
  private find(base: string, route: RouteCacheConfig | undefined, subject: string | undefined, headers: IncomingHttpHeaders): Maybe<CachedEntry | undefined> {
    if (subject === undefined) return this.findIn(base, undefined, headers);
    return then(this.findIn(base, subject, headers), (own) => {
      if (own !== undefined || route?.perUser === true) return own;
      // An authenticated request takes a shared entry only when the upstream called it public.
      return then(this.findIn(base, undefined, headers), (shared) => {
        if (shared?.public !== true) return undefined;
        // While the shared entry is served from the hot map, so is the caller's missing own one:
        // otherwise every hit of an authenticated client read the Keyv (a Redis round trip with
        // REDIS_URL) for an entry that is not there. Same horizon as a hot entry: an own entry
        // another replica stores meanwhile is seen once the shared one's freshness ends.
        if (shared.freshUntil > this.now()) this.keepAbsent(entryKey(base, subject, [], headers), shared.freshUntil);
        return shared;
      });
    });
  }

  private findIn(base: string, scope: string | undefined, headers: IncomingHttpHeaders): Maybe<CachedEntry | undefined> {
    return then(this.get(entryKey(base, scope, [], headers)), (first) => {
      if (first === undefined) return undefined;
      if (!('varyIndex' in first)) return first;
      return then(this.get(entryKey(base, scope, first.varyIndex, headers)), (entry) => (entry !== undefined && !('varyIndex' in entry) ? entry : undefined));
    });
  }

  /** One key: from the hot map while fresh (synchronously), else from the Keyv (a fresh entry found there turns hot). */
  private get(key: string): Maybe<Stored | undefined> {
    const hot = this.hot.get(key);
    if (hot !== undefined) {
      if (hot.until > this.now()) return hot.stored === ABSENT ? undefined : hot.stored;
      this.dropHot(key);
    }
    return this.store.get(key).then((stored) => {
      if (stored !== undefined && !('varyIndex' in stored) && stored.freshUntil > this.now()) this.keepHot(key, stored, stored.freshUntil, stored.body.length);
      return stored;
    });
  }

  /** Remember in the hot map that `key` has no entry until `until` (unless it already says so). */
  private keepAbsent(key: string, until: number): void {
    const hot = this.hot.get(key);
    if (hot?.stored === ABSENT && hot.until === until) return;
    this.keepHot(key, ABSENT, until, 0);
  }

  /**
   * `bytes`: the stored entry's (base64) body length, the same measure wherever the entry came
   * from; the key's own length is counted too, so entries without a body (vary indexes, absent
   * own entries) are bounded as well.
   */
  private keepHot(key: string, stored: Stored | typeof ABSENT, until: number, bytes: number): void {
    this.dropHot(key);
    const size = bytes + key.length;
    this.hot.set(key, { stored, until, bytes: size });
    this.hotBytes += size;
    for (const oldest of this.hot.keys()) {
      if (this.hotBytes <= this.config.maxTotalBytes) break;
      this.dropHot(oldest);
    }
  }

  private dropHot(key: string): void {
    const hot = this.hot.get(key);
    if (hot === undefined) return;
    this.hot.delete(key);
    this.hotBytes -= hot.bytes;
  }

  private bodyOf(entry: CachedEntry): Buffer {
    let body = this.bodies.get(entry);
    if (body === undefined) {
      body = Buffer.from(entry.body, 'base64');
      this.bodies.set(entry, body);
    }
    return body;
  }

  private serve(request: FastifyRequest, reply: FastifyReply, entry: CachedEntry, result: 'hit' | 'coalesced' | 'stale'): FastifyReply {
    const label = result === 'stale' ? 'STALE' : 'HIT';
    const age = String(Math.max(0, Math.floor((this.now() - entry.storedAt) / 1000)));
    const etag = entry.headers.etag;
    const lastModified = entry.headers['last-modified'];
    if (entry.status === 200 && notModified(request.headers, typeof etag === 'string' ? etag : undefined, typeof lastModified === 'string' ? lastModified : undefined)) {
      this.metrics.cacheRequests.inc({ result: 'not_modified' });
      for (const name of NOT_MODIFIED_HEADERS) {
        const value = entry.headers[name];
        if (value !== undefined) reply.header(name, value);
      }
      return reply.code(304).header('age', age).header('x-cache', label).send();
    }
    this.metrics.cacheRequests.inc({ result });
    return reply.code(entry.status).headers(entry.headers).header('age', age).header('x-cache', label).send(this.bodyOf(entry));
  }

  /** The whole body when it stays within maxEntryBytes; otherwise a stream of what was read and the rest. */
  private async buffer(body: Readable): Promise<Buffer | Readable> {
    const chunks: Buffer[] = [];
    let size = 0;
    const it = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    try {
      for (;;) {
        const next = await it.next();
        if (next.done === true) return Buffer.concat(chunks, size);
        chunks.push(next.value);
        size += next.value.length;
        if (size > this.config.maxEntryBytes) break;
      }
    } catch (err) {
      throw new GatewayError('GW_UPSTREAM_BAD_RESPONSE', undefined, { cause: err });
    }
    return Readable.from(
      (async function* () {
        yield* chunks;
        for (;;) {
          const next = await it.next();
          if (next.done === true) return;
          yield next.value;
        }
      })(),
    );
  }

  private async put(base: string, scope: string | undefined, entry: CachedEntry, ttlMs: number, headers: IncomingHttpHeaders, bytes: number): Promise<void> {
    const key = entryKey(base, scope, entry.vary, headers);
    if (entry.vary.length > 0) {
      const indexKey = entryKey(base, scope, [], headers);
      await this.store.set(indexKey, { varyIndex: entry.vary }, ttlMs);
      this.keepHot(indexKey, { varyIndex: entry.vary }, entry.freshUntil, 0);
    }
    await this.store.set(key, entry, ttlMs);
    this.keepHot(key, entry, entry.freshUntil, entry.body.length);
    this.account(key, bytes);
  }

  /** Keep what this replica stored within maxTotalBytes, evicting the oldest first. */
  private account(key: string, bytes: number): void {
    const before = this.sizes.get(key);
    if (before !== undefined) {
      this.totalBytes -= before;
      this.sizes.delete(key);
    }
    this.sizes.set(key, bytes);
    this.totalBytes += bytes;
    for (const [oldest, size] of this.sizes) {
      if (this.totalBytes <= this.config.maxTotalBytes) break;
      this.sizes.delete(oldest);
      this.totalBytes -= size;
      this.dropHot(oldest);
      void this.store.delete(oldest).catch(() => {});
    }
  }

  /** Bytes stored by this replica (tests, metrics). */
  get storedBytes(): number {
    return this.totalBytes;
  }
}
