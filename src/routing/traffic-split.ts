import type { Keyv } from 'keyv';
import { z } from 'zod';
import { splitWeightsSchema, type RouteConfig, type RouteSplitConfig, type SplitWeights } from '../config/index.js';
import type { StateStore } from '../state/index.js';
import { isNewer, isoTime } from '../state/order.js';

/*
 * Stable/canary traffic splits (docs/architecture.md, "Traffic split"). The weights of each split route
 * live in the state store and are broadcast, so every replica applies a shift within a
 * second; a client sticks to its side because the side comes from a hash of who it is.
 */

export type Side = 'stable' | 'canary';

/** One change of a split's weights. */
const splitChangeSchema = z.object({
  weights: splitWeightsSchema,
  /** Principal that made it ("config" for the configured start). */
  by: z.string(),
  reason: z.string(),
  at: isoTime,
});
export type SplitChange = Readonly<z.infer<typeof splitChangeSchema>>;

/**
 * A split route's live state: what the state store holds under `traffic:<route>` and what a
 * shift broadcasts. Parsed with this schema whenever it comes from the store or pub/sub.
 */
export const splitStateSchema = z.object({
  route: z.string(),
  weights: splitWeightsSchema,
  /** Bumped by every shift; with the time and author it orders shifts (src/state/order.ts). */
  version: z.number().int().min(0),
  updatedBy: z.string(),
  reason: z.string(),
  updatedAt: isoTime,
  /** The latest changes, newest first (at most HISTORY_LENGTH). */
  history: z.array(splitChangeSchema).readonly(),
});
export type SplitState = Readonly<z.infer<typeof splitStateSchema>>;

/** Two shifts made on two replicas from the same version get the same number: time and author break the tie. */
const stampOf = (state: SplitState) => ({ version: state.version, at: state.updatedAt, tie: `${state.updatedBy}\u0000${state.weights.canary}` });

const TOPIC = 'traffic:shift';
const HISTORY_LENGTH = 20;

export type SplitListener = (state: SplitState) => void;

type SplitStore = Pick<StateStore, 'publish' | 'subscribe' | 'onStatusChange' | 'up'> & { cache<T>(namespace: string): Keyv<T> };

/**
 * FNV-1a then murmur3's finaliser, to a bucket 0-99. Written here because it is four lines
 * and has to be fast and stable across replicas and releases (a client must not change side
 * when the gateway restarts); a cryptographic hash would be ten times the cost for nothing.
 */
export function bucketOf(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) % 100;
}

export class TrafficSplits {
  readonly #splits = new Map<string, { route: RouteConfig; split: RouteSplitConfig; state: SplitState }>();
  readonly #keyv: Keyv<SplitState>;
  readonly #listeners = new Set<SplitListener>();
  readonly #unsubscribe: Array<() => void> = [];

  constructor(
    routes: readonly RouteConfig[],
    private readonly store: SplitStore,
    private readonly log: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void },
  ) {
    this.#keyv = store.cache<SplitState>('traffic');
    for (const route of routes) {
      if (route.split === undefined) continue;
      const { weights } = route.split;
      this.#splits.set(route.id, {
        route,
        split: route.split,
        state: { route: route.id, weights, version: 0, updatedBy: 'config', reason: 'configured weights', updatedAt: new Date(0).toISOString(), history: [] },
      });
    }
  }

  /** Load the stored weights and follow the other replicas' shifts. */
  async start(): Promise<void> {
    if (this.#splits.size === 0) return;
    this.#unsubscribe.push(
      this.store.subscribe(TOPIC, (message) => {
        const state = this.#parse(message.data, 'broadcast');
        if (state !== undefined) this.#apply(state);
      }),
      // Messages sent while Redis was away are lost: read the stored weights again on
      // reconnect, and share a shift this replica made meanwhile (it told its caller
      // `shared: false`; the other replicas must still converge on it).
      this.store.onStatusChange((up) => {
        if (up) void this.#reload(true);
      }),
    );
    await this.#reload();
  }

  close(): void {
    for (const unsubscribe of this.#unsubscribe.splice(0)) unsubscribe();
    this.#listeners.clear();
  }

  async #reload(shareNewer = false): Promise<void> {
    await Promise.all(
      [...this.#splits.entries()].map(async ([id, entry]) => {
        try {
          const stored = this.#parse(await this.#keyv.get(id), 'store');
          if (stored !== undefined) this.#apply(stored);
          const mine = entry.state;
          if (!shareNewer || mine.version === 0 || (stored !== undefined && !isNewer(stampOf(mine), stampOf(stored)))) return;
          if ((await this.#keyv.set(id, mine).catch(() => false)) === false) return;
          await this.store.publish(TOPIC, mine);
          this.log.info({ route: id, weights: mine.weights, version: mine.version }, 'traffic split: a shift made while the state store was away is now shared');
        } catch (err) {
          this.log.warn({ route: id, err: (err as Error).message }, 'traffic split: reading the stored weights failed; keeping the current ones');
        }
      }),
    );
  }

  /** A split state from outside this process (store or pub/sub), or undefined when absent or malformed. */
  #parse(value: unknown, from: 'store' | 'broadcast'): SplitState | undefined {
    if (value === undefined || value === null) return undefined;
    const parsed = splitStateSchema.safeParse(value);
    if (!parsed.success) {
      this.log.warn({ from, issues: parsed.error.issues.length }, 'traffic split: ignored malformed weights from the state store');
      return undefined;
    }
    return parsed.data;
  }

  /** Keep `state` when it is newer than what this replica has (the same order on every replica). */
  #apply(state: SplitState): void {
    const entry = this.#splits.get(state.route);
    if (entry === undefined || !isNewer(stampOf(state), stampOf(entry.state))) return;
    entry.state = state;
    for (const listener of this.#listeners) listener(state);
  }

  /** Called on every change of a split's weights (from this replica or another). */
  onChange(listener: SplitListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  has(routeId: string): boolean {
    return this.#splits.has(routeId);
  }

  config(routeId: string): RouteSplitConfig | undefined {
    return this.#splits.get(routeId)?.split;
  }

  state(routeId: string): SplitState | undefined {
    return this.#splits.get(routeId)?.state;
  }

  all(): Array<{ route: RouteConfig; split: RouteSplitConfig; state: SplitState }> {
    return [...this.#splits.values()];
  }

  /** The side of a client with this sticky key: the same key always lands on the same side for given weights. */
  side(routeId: string, stickyKey: string): Side {
    const entry = this.#splits.get(routeId);
    if (entry === undefined) return 'stable';
    const canary = entry.state.weights.canary;
    if (canary <= 0) return 'stable';
    if (canary >= 100) return 'canary';
    return bucketOf(`${routeId}\u0000${stickyKey}`) < canary ? 'canary' : 'stable';
  }

  /**
   * Set a split's weights: stored, then broadcast to every replica (this one included).
   * The caller has validated the input (src/admin/traffic-service.ts).
   */
  async shift(routeId: string, weights: SplitWeights, by: string, reason: string): Promise<{ before: SplitState; after: SplitState; shared: boolean }> {
    const entry = this.#splits.get(routeId);
    if (entry === undefined) throw new Error(`route ${routeId} has no traffic split`);
    // Start from the newest stored state, so a shift on one replica never undoes another's.
    const newest = this.#parse(await this.#keyv.get(routeId).catch(() => undefined), 'store');
    if (newest !== undefined) this.#apply(newest);
    const before = entry.state;
    const at = new Date().toISOString();
    const after: SplitState = {
      route: routeId,
      weights: { stable: weights.stable, canary: weights.canary },
      version: before.version + 1,
      updatedBy: by,
      reason,
      updatedAt: at,
      history: [{ weights, by, reason, at }, ...before.history].slice(0, HISTORY_LENGTH),
    };
    const stored = (await this.#keyv.set(routeId, after).catch(() => false)) !== false;
    this.#apply(after);
    const broadcast = await this.store.publish(TOPIC, after).then(
      () => true,
      (err: unknown) => {
        this.log.warn({ route: routeId, err: (err as Error).message }, 'traffic split: broadcast failed; other replicas pick the change up when they reconnect');
        return false;
      },
    );
    // With Redis down the change holds on this replica only, and the caller is told so.
    const shared = stored && broadcast && this.store.up;
    this.log.info({ route: routeId, weights, by, reason, version: after.version, shared }, 'traffic split changed');
    return { before, after, shared };
  }
}
