import { Keyv } from 'keyv';
import type {
  ClaimResult,
  ExpiringEntry,
  ScoreChange,
  ScoreOptions,
  StateStore,
  StoreMessage,
  StoreStatusListener,
  WindowCheck,
  WindowDecision,
} from './store.js';

export interface MemoryStoreOptions {
  /** Monotonic milliseconds (tests pass a fake clock). */
  readonly now?: () => number;
  /** Most keys of each kind kept; past it the oldest are dropped (bounded memory whatever clients send). */
  readonly maxKeys?: number;
  /** How often expired keys are swept (0: never, tests). */
  readonly sweepIntervalMs?: number;
}

/** The accepted hits of one key, oldest first: a sliding-window log. */
interface Window {
  stamps: number[];
  head: number;
  windowMs: number;
}

interface Score {
  value: number;
  at: number;
  halfLifeMs: number;
  distinct?: Set<string>;
}

interface Expiring<T> {
  value: T;
  until: number;
}

/** A Map that drops its oldest entry past `max` entries: a bounded store for Keyv. */
class BoundedMap<K, V> extends Map<K, V> {
  constructor(private readonly max: number) {
    super();
  }

  override set(key: K, value: V): this {
    if (!this.has(key) && this.size >= this.max) {
      const oldest = this.keys().next();
      if (!oldest.done) this.delete(oldest.value);
    }
    return super.set(key, value);
  }
}

export const DEFAULT_MAX_KEYS = 200_000;
/** Most entries `listEntries` returns by default. */
export const DEFAULT_MAX_LISTED = 10_000;

export function decayed(value: number, elapsedMs: number, halfLifeMs: number): number {
  return elapsedMs <= 0 ? value : value * 2 ** (-elapsedMs / halfLifeMs);
}

/**
 * The in-process store: the default with one replica, and the fallback of the Redis store.
 * Same semantics as the Redis scripts (src/state/scripts.ts), on a monotonic clock. Every
 * map is bounded (maxKeys) and swept, so memory stays flat whatever keys clients cause.
 */
export class MemoryStore implements StateStore {
  readonly backend = 'memory' as const;
  readonly up = true;
  private readonly now: () => number;
  private readonly maxKeys: number;
  private readonly windows = new Map<string, Window>();
  private readonly scores = new Map<string, Score>();
  private readonly counters = new Map<string, Expiring<number>>();
  private readonly claims = new Map<string, number>();
  private readonly sets = new Map<string, Map<string, Expiring<string>>>();
  private readonly handlers = new Map<string, Set<(m: StoreMessage) => void>>();
  private readonly sweeper: NodeJS.Timeout | undefined;

  constructor(options: MemoryStoreOptions = {}) {
    this.now = options.now ?? (() => performance.now());
    this.maxKeys = options.maxKeys ?? DEFAULT_MAX_KEYS;
    const every = options.sweepIntervalMs ?? 10_000;
    if (every > 0) {
      this.sweeper = setInterval(() => this.sweep(), every);
      this.sweeper.unref();
    }
  }

  /** Synchronous form of `hit`, for the hot path (no promise when nothing is shared). */
  hitSync(key: string, limit: number, windowMs: number): WindowDecision {
    const now = this.now();
    let w = this.windows.get(key);
    if (w === undefined) {
      if (this.windows.size >= this.maxKeys) this.evict(this.windows);
      w = { stamps: [], head: 0, windowMs };
      this.windows.set(key, w);
    }
    w.windowMs = windowMs;
    const { stamps } = w;
    const edge = now - windowMs;
    while (w.head < stamps.length && stamps[w.head]! <= edge) w.head += 1;
    if (w.head > 32 && w.head * 2 > stamps.length) {
      stamps.splice(0, w.head);
      w.head = 0;
    }
    let count = stamps.length - w.head;
    const allowed = count < limit;
    if (allowed) {
      stamps.push(now);
      count += 1;
    }
    const oldest = count > 0 ? stamps[w.head]! : now;
    return {
      allowed,
      limit,
      remaining: Math.max(0, limit - count),
      // windowMs minus the oldest hit's age: `oldest + windowMs - now` rounds (now + 60000 - now
      // can be 60000.0000001, which ceil makes 60001); the reset is never past a whole window.
      resetMs: Math.min(windowMs, Math.max(0, Math.ceil(windowMs - (now - oldest)))),
      shared: false,
    };
  }

  async hit(key: string, limit: number, windowMs: number): Promise<WindowDecision> {
    return this.hitSync(key, limit, windowMs);
  }

  hitAllSync(checks: readonly WindowCheck[]): WindowDecision[] {
    const out: WindowDecision[] = [];
    for (const c of checks) {
      const decision = this.hitSync(c.key, c.limit, c.windowMs);
      out.push(decision);
      if (!decision.allowed) break;
    }
    return out;
  }

  async hitAll(checks: readonly WindowCheck[]): Promise<WindowDecision[]> {
    return this.hitAllSync(checks);
  }

  addScoreSync(key: string, amount: number, options: ScoreOptions): ScoreChange {
    const now = this.now();
    let s = this.scores.get(key);
    if (s === undefined) {
      if (this.scores.size >= this.maxKeys) this.evict(this.scores);
      s = { value: 0, at: now, halfLifeMs: options.halfLifeMs };
      this.scores.set(key, s);
    }
    let add = amount;
    if (options.distinct !== undefined) {
      s.distinct ??= new Set();
      if (s.distinct.size < (options.maxDistinct ?? 256)) {
        if (s.distinct.has(options.distinct)) add = 0;
        else s.distinct.add(options.distinct);
      }
    }
    const before = decayed(s.value, now - s.at, options.halfLifeMs);
    s.value = before + add;
    s.at = now;
    s.halfLifeMs = options.halfLifeMs;
    return { before, after: s.value, shared: false };
  }

  async addScore(key: string, amount: number, options: ScoreOptions): Promise<ScoreChange> {
    return this.addScoreSync(key, amount, options);
  }

  async setScore(key: string, value: number, halfLifeMs: number): Promise<void> {
    const existing = this.scores.get(key);
    if (value <= 0) this.scores.delete(key);
    else this.scores.set(key, { value, at: this.now(), halfLifeMs, ...(existing?.distinct ? { distinct: existing.distinct } : {}) });
  }

  async increment(key: string, ttlMs: number): Promise<number> {
    const now = this.now();
    const c = this.counters.get(key);
    const value = c !== undefined && c.until > now ? c.value + 1 : 1;
    if (c === undefined && this.counters.size >= this.maxKeys) this.evict(this.counters);
    this.counters.set(key, { value, until: now + ttlMs });
    return value;
  }

  async deleteCounter(key: string): Promise<void> {
    this.counters.delete(key);
  }

  claimSync(key: string, ttlMs: number): ClaimResult {
    const now = this.now();
    const until = this.claims.get(key);
    if (until !== undefined && until > now) return { claimed: false, ttlMs: Math.ceil(until - now), shared: false };
    if (until === undefined && this.claims.size >= this.maxKeys) this.evict(this.claims);
    this.claims.set(key, now + ttlMs);
    return { claimed: true, ttlMs, shared: false };
  }

  async claim(key: string, ttlMs: number): Promise<ClaimResult> {
    return this.claimSync(key, ttlMs);
  }

  async release(key: string): Promise<void> {
    this.claims.delete(key);
  }

  private entries(set: string): Map<string, Expiring<string>> {
    let m = this.sets.get(set);
    if (m === undefined) this.sets.set(set, (m = new Map()));
    return m;
  }

  async putEntry(set: string, id: string, value: string, ttlMs: number): Promise<void> {
    const m = this.entries(set);
    if (!m.has(id) && m.size >= this.maxKeys) this.evict(m);
    m.set(id, { value, until: this.now() + ttlMs });
  }

  replaceEntrySync(set: string, id: string, expected: string | null, value: string, ttlMs: number): boolean {
    const m = this.entries(set);
    const e = m.get(id);
    const current = e !== undefined && e.until > this.now() ? e.value : null;
    if (current !== expected) return false;
    if (e === undefined && m.size >= this.maxKeys) this.evict(m);
    m.set(id, { value, until: this.now() + ttlMs });
    return true;
  }

  async replaceEntry(set: string, id: string, expected: string | null, value: string, ttlMs: number): Promise<boolean> {
    return this.replaceEntrySync(set, id, expected, value, ttlMs);
  }

  async deleteEntry(set: string, id: string): Promise<boolean> {
    const m = this.sets.get(set);
    const e = m?.get(id);
    m?.delete(id);
    return e !== undefined && e.until > this.now();
  }

  async listEntries(set: string, max = DEFAULT_MAX_LISTED): Promise<ExpiringEntry[]> {
    const now = this.now();
    const out: ExpiringEntry[] = [];
    for (const [id, e] of this.sets.get(set) ?? []) {
      if (e.until > now) out.push({ id, value: e.value, ttlMs: Math.ceil(e.until - now) });
    }
    // Soonest to expire first, as Redis lists them.
    return out.sort((a, b) => a.ttlMs - b.ttlMs).slice(0, max);
  }

  /** Deliver a message to this process's subscribers (the Redis store uses it as its local bus). */
  deliver(topic: string, data: unknown, self: boolean): void {
    for (const handler of this.handlers.get(topic) ?? []) {
      try {
        handler({ topic, data, self });
      } catch {
        // one faulty subscriber must not stop the others
      }
    }
  }

  async publish(topic: string, data: unknown): Promise<void> {
    // Same shape as a message that went through Redis (JSON round trip), delivered asynchronously.
    const copy: unknown = JSON.parse(JSON.stringify(data ?? null));
    queueMicrotask(() => this.deliver(topic, copy, true));
  }

  subscribe(topic: string, handler: (message: StoreMessage) => void): () => void {
    let set = this.handlers.get(topic);
    if (set === undefined) this.handlers.set(topic, (set = new Set()));
    set.add(handler);
    return () => set.delete(handler);
  }

  onStatusChange(_listener: StoreStatusListener): () => void {
    return () => {};
  }

  cache<T = unknown>(namespace: string, options: { maxEntries?: number } = {}): Keyv<T> {
    const keyv = new Keyv<T>({ store: new BoundedMap(options.maxEntries ?? 10_000), namespace });
    keyv.on('error', () => {});
    return keyv;
  }

  /** Drop what has expired; keeps memory proportional to active clients. */
  sweep(): void {
    const now = this.now();
    for (const [key, w] of this.windows) {
      const newest = w.stamps[w.stamps.length - 1];
      if (newest === undefined || newest <= now - w.windowMs) this.windows.delete(key);
    }
    for (const [key, s] of this.scores) {
      // Below 1% of a point: forgotten.
      if (decayed(s.value, now - s.at, s.halfLifeMs) < 0.01) this.scores.delete(key);
    }
    for (const [key, c] of this.counters) if (c.until <= now) this.counters.delete(key);
    for (const [key, until] of this.claims) if (until <= now) this.claims.delete(key);
    for (const m of this.sets.values()) for (const [id, e] of m) if (e.until <= now) m.delete(id);
  }

  /** Make room in a full map: sweep, then drop the oldest tenth if still full. */
  private evict(map: Map<string, unknown>): void {
    this.sweep();
    if (map.size < this.maxKeys) return;
    let drop = Math.max(1, Math.floor(this.maxKeys / 10));
    for (const key of map.keys()) {
      if (drop-- <= 0) break;
      map.delete(key);
    }
  }

  async close(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    this.handlers.clear();
  }
}
