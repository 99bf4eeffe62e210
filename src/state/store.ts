import type { Keyv } from 'keyv';

/**
 * The shared state of the gateway's replicas (DESIGN.md, "State"): in-process memory by
 * default, Redis when REDIS_URL is set. Every operation that decides something (a counter,
 * a score) is atomic in the store itself — a Lua script in Redis — never a read then a write.
 *
 * When Redis cannot answer (down, or slower than the command timeout) each call is answered
 * by the replica's own memory instead, so requests never wait on a dead Redis: `shared` says
 * which one answered. `up` is false while that is the case.
 */

/** One sliding-window decision: at most `limit` hits in any `windowMs`. */
export interface WindowDecision {
  readonly allowed: boolean;
  /** The limit the decision was made against. */
  readonly limit: number;
  /** Hits left in the window after this one (0 when refused). */
  readonly remaining: number;
  /** Milliseconds until the oldest hit leaves the window (one more hit is possible then). */
  readonly resetMs: number;
  /** True when the shared store decided; false when this replica decided alone. */
  readonly shared: boolean;
}

/** A decaying score before and after adding to it. */
/** One window to check in `hitAll`. */
export interface WindowCheck {
  readonly key: string;
  readonly limit: number;
  readonly windowMs: number;
}

export interface ScoreChange {
  readonly before: number;
  readonly after: number;
  readonly shared: boolean;
}

export interface ScoreOptions {
  /** The score halves every `halfLifeMs`. */
  readonly halfLifeMs: number;
  /** Add only when `distinct` is new among the members seen for this key (e.g. distinct missing paths). */
  readonly distinct?: string;
  /** How many distinct members are remembered; past it, every member counts as new. */
  readonly maxDistinct?: number;
}

/** An entry of an expiring set (e.g. the blocked clients). */
export interface ExpiringEntry {
  readonly id: string;
  readonly value: string;
  /** Milliseconds the entry has left. */
  readonly ttlMs: number;
}

/** The outcome of `claim`. */
export interface ClaimResult {
  readonly claimed: boolean;
  /** Milliseconds the key stays held: `ttlMs` when claimed now, else the holder's remainder. */
  readonly ttlMs: number;
  /** True when the shared store decided; false when this replica decided alone. */
  readonly shared: boolean;
}

export interface StoreMessage {
  readonly topic: string;
  readonly data: unknown;
  /** True when this replica published it. */
  readonly self: boolean;
}

export type StoreStatusListener = (up: boolean) => void;

export interface StateStore {
  readonly backend: 'memory' | 'redis';
  /** The shared backend answers (always true for memory). */
  readonly up: boolean;
  /** Count one hit under `key` when fewer than `limit` hits happened in the last `windowMs`. */
  hit(key: string, limit: number, windowMs: number): Promise<WindowDecision>;
  /**
   * Several windows in one atomic step (one Redis round trip), in order: each counts the hit
   * only when every window before it allowed it; the first refusal stops. Returns the
   * decisions made — all allowed, or ending with the refusal.
   */
  hitAll(checks: readonly WindowCheck[]): Promise<WindowDecision[]>;
  /** Add `amount` to the decaying score under `key`. */
  addScore(key: string, amount: number, options: ScoreOptions): Promise<ScoreChange>;
  /** Set the score under `key` (0 deletes it and its distinct members). */
  setScore(key: string, value: number, halfLifeMs: number): Promise<void>;
  /** Increment a counter that expires `ttlMs` after its last increment; returns the new value. */
  increment(key: string, ttlMs: number): Promise<number>;
  /** Delete a counter. */
  deleteCounter(key: string): Promise<void>;
  /**
   * Take `key` for `ttlMs` when nobody holds it (Redis SET NX PX): `claimed` is true for
   * exactly one caller across replicas. When it is held, `ttlMs` is what the holder has left.
   */
  claim(key: string, ttlMs: number): Promise<ClaimResult>;
  /** Let go of a claimed key (nothing when it is not held). */
  release(key: string): Promise<void>;
  /** Put (or replace) an entry of the expiring set `set`. */
  putEntry(set: string, id: string, value: string, ttlMs: number): Promise<void>;
  /**
   * Replace an entry only when it holds `expected` now (null: only when there is none), in one
   * atomic step (a Lua script in Redis): the compare-and-set of records several replicas
   * change (migrations). True when replaced.
   */
  replaceEntry(set: string, id: string, expected: string | null, value: string, ttlMs: number): Promise<boolean>;
  /** Remove an entry; true when it was there. */
  deleteEntry(set: string, id: string): Promise<boolean>;
  /** The entries that have not expired, soonest to expire first (at most `max`, default 10,000). */
  listEntries(set: string, max?: number): Promise<ExpiringEntry[]>;
  /** Deliver `data` (JSON-serialisable) to every replica's subscribers of `topic`, this one included. */
  publish(topic: string, data: unknown): Promise<void>;
  /** Returns a function that unsubscribes. */
  subscribe(topic: string, handler: (message: StoreMessage) => void): () => void;
  /** Called on every change of `up` (memory never changes). */
  onStatusChange(listener: StoreStatusListener): () => void;
  /** A plain cache (Keyv): in memory, or in Redis under the key prefix and `namespace`. */
  cache<T = unknown>(namespace: string, options?: { maxEntries?: number }): Keyv<T>;
  close(): Promise<void>;
}
