import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { StateStore, StoreMessage } from '../state/store.js';

/*
 * The gateway's one event bus (DESIGN.md: `events/`): what happened somewhere in the gateway,
 * delivered to every replica's listeners. Events travel through the state store's pub/sub
 * (Redis when REDIS_URL is set, else this process only), so a publisher never talks to a
 * listener directly and a listener hears every replica's events, its own included, exactly
 * once, in the order Redis delivered them (the same order on every replica).
 *
 * A bus has named channels, each with the zod schema of its events: a message that does not
 * parse (another release, a stray publisher on the Redis channel) is dropped and counted,
 * never cast. Each channel keeps its last `replay` deliveries so a listener that reconnects
 * can ask for what it missed (`since`). An event published with a `key` is delivered once
 * per key within `dedupeMs`: several replicas that each observe the same change (a traffic
 * split reaches every replica) may all publish it, and listeners still hear it once.
 *
 * Consumers: MCP notifications (`subscriptions/listen`, 2025 GET streams, mcp/server), the
 * operational memory (mcp/integrations/memory: health transitions, traffic shifts), and later
 * `/v1/events`.
 */

/** One delivered event: its id (unique across replicas), when it was published, and the event. */
export interface Delivered<T> {
  readonly id: string;
  /** Publish time (ms since the epoch, the publisher's clock). */
  readonly at: number;
  readonly event: T;
  /** Published by this replica. */
  readonly local: boolean;
}

export interface EventChannel<T> {
  /** Deliver `event` to every replica's listeners of this channel (this one included). */
  publish(event: T, options?: { readonly key?: string }): Promise<void>;
  /** Returns a function that unsubscribes. A listener's exception is its own. */
  subscribe(listener: (delivered: Delivered<T>) => void): () => void;
  /**
   * The deliveries after the one with `id`, oldest first; undefined when `id` is not among
   * the last `replay` this replica received (too old, or delivered elsewhere while this
   * replica could not hear it): the caller then assumes it missed something.
   */
  since(id: string): Array<Delivered<T>> | undefined;
  /** Id of the newest delivery this replica received on this channel (undefined: none yet). */
  readonly lastId: string | undefined;
}

export interface EventBusOptions {
  readonly log?: { warn(obj: object, msg: string): void };
  /** Called for each message that did not parse (a metric). */
  readonly onDropped?: (channel: string) => void;
  /** How long a keyed event is remembered, to deliver it once (default 60 s). */
  readonly dedupeMs?: number;
  readonly clock?: () => number;
}

/** What travels on the store topic of a channel. */
const envelopeSchema = z.strictObject({
  id: z.string().min(1).max(64),
  at: z.number().int().nonnegative(),
  key: z.string().min(1).max(256).optional(),
  event: z.unknown(),
});

const DEFAULT_DEDUPE_MS = 60_000;
/** Keys remembered at most per channel (oldest forgotten first). */
const MAX_KEYS = 4096;
/** Longest interval between two "dropped a malformed event" log lines of a channel. */
const DROP_LOG_INTERVAL_MS = 60_000;

export class EventBus {
  readonly #store: Pick<StateStore, 'publish' | 'subscribe'>;
  readonly #options: EventBusOptions;
  readonly #channels = new Map<string, Channel<unknown>>();
  /** This replica's part of every event id. */
  readonly #origin = randomBytes(6).toString('base64url');
  #seq = 0;

  constructor(store: Pick<StateStore, 'publish' | 'subscribe'>, options: EventBusOptions = {}) {
    this.#store = store;
    this.#options = options;
  }

  /** The channel `name` (one per name: asking again returns the same one). */
  channel<S extends z.ZodType>(name: string, schema: S, options: { readonly replay?: number } = {}): EventChannel<z.infer<S>> {
    const existing = this.#channels.get(name);
    if (existing !== undefined) return existing as unknown as EventChannel<z.infer<S>>;
    const channel = new Channel<z.infer<S>>(name, schema as z.ZodType<z.infer<S>>, options.replay ?? 0, this.#store, this.#options, () => `${this.#origin}.${(this.#seq++).toString(36)}`);
    this.#channels.set(name, channel as Channel<unknown>);
    return channel;
  }

  /** Stop listening to the store (the channels deliver nothing after this). */
  close(): void {
    for (const channel of this.#channels.values()) channel.close();
    this.#channels.clear();
  }
}

class Channel<T> implements EventChannel<T> {
  readonly #listeners = new Set<(delivered: Delivered<T>) => void>();
  readonly #recent: Array<Delivered<T>> = [];
  readonly #keys = new Map<string, number>();
  readonly #unsubscribe: () => void;
  #lastDropLog = -Infinity;

  constructor(
    readonly name: string,
    private readonly schema: z.ZodType<T>,
    private readonly replay: number,
    private readonly store: Pick<StateStore, 'publish' | 'subscribe'>,
    private readonly options: EventBusOptions,
    private readonly nextId: () => string,
  ) {
    this.#unsubscribe = store.subscribe(this.#topic, (message) => this.#receive(message));
  }

  get #topic(): string {
    return `events:${this.name}`;
  }

  get lastId(): string | undefined {
    return this.#recent.at(-1)?.id;
  }

  async publish(event: T, options: { readonly key?: string } = {}): Promise<void> {
    // Parsed on the way out too: what a listener would drop is a bug of the publisher.
    const parsed = this.schema.parse(event);
    const clock = this.options.clock ?? Date.now;
    await this.store.publish(this.#topic, { id: this.nextId(), at: clock(), ...(options.key !== undefined ? { key: options.key } : {}), event: parsed });
  }

  subscribe(listener: (delivered: Delivered<T>) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  since(id: string): Array<Delivered<T>> | undefined {
    const index = this.#recent.findIndex((d) => d.id === id);
    return index < 0 ? undefined : this.#recent.slice(index + 1);
  }

  close(): void {
    this.#unsubscribe();
    this.#listeners.clear();
  }

  #receive(message: StoreMessage): void {
    const envelope = envelopeSchema.safeParse(message.data);
    const event = envelope.success ? this.schema.safeParse(envelope.data.event) : undefined;
    if (!envelope.success || event === undefined || !event.success) {
      this.options.onDropped?.(this.name);
      const now = performance.now();
      if (now - this.#lastDropLog > DROP_LOG_INTERVAL_MS) {
        this.#lastDropLog = now;
        this.options.log?.warn({ channel: this.name }, 'event bus: dropped a malformed event');
      }
      return;
    }
    const { id, at, key } = envelope.data;
    if (key !== undefined && this.#seen(key)) return;
    const delivered: Delivered<T> = { id, at, event: event.data, local: message.self };
    if (this.replay > 0) {
      this.#recent.push(delivered);
      if (this.#recent.length > this.replay) this.#recent.shift();
    }
    for (const listener of this.#listeners) {
      try {
        listener(delivered);
      } catch {
        // a listener's failure is its own
      }
    }
  }

  /** Whether `key` was delivered within dedupeMs (and remember it now). */
  #seen(key: string): boolean {
    const now = (this.options.clock ?? Date.now)();
    const dedupeMs = this.options.dedupeMs ?? DEFAULT_DEDUPE_MS;
    const previous = this.#keys.get(key);
    if (previous !== undefined && now - previous < dedupeMs) return true;
    this.#keys.delete(key);
    this.#keys.set(key, now);
    // Oldest first (insertion order): forget the expired ones and anything past MAX_KEYS.
    for (const [k, t] of this.#keys) {
      if (this.#keys.size <= MAX_KEYS && now - t < dedupeMs) break;
      this.#keys.delete(k);
    }
    return false;
  }
}
