import { randomBytes } from 'node:crypto';
import { createClient } from '@redis/client';
import KeyvRedis from '@keyv/redis';
import { Keyv } from 'keyv';
import { MemoryStore } from './memory.js';
import { SCRIPTS } from './scripts.js';
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

/** The logger calls the store makes (pino's signature). */
export interface StoreLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

export interface RedisStoreOptions {
  readonly url: string;
  /** Prefix of every key and of the pub/sub channel. */
  readonly keyPrefix: string;
  /** Longest a call waits for Redis before the replica decides alone. */
  readonly commandTimeoutMs: number;
  readonly log: StoreLogger;
  /** How long to stop asking Redis after a timeout before probing it again. */
  readonly suspendMs?: number;
  /** TCP connect timeout of each (re)connection attempt. */
  readonly connectTimeoutMs?: number;
  /** Longest pause between reconnection attempts (they back off exponentially up to it). */
  readonly maxReconnectDelayMs?: number;
  /** Called for each decision this replica made alone (gateway_state_store_fallbacks_total). */
  readonly onFallback?: () => void;
}

function createRedisClient(options: RedisStoreOptions) {
  const maxDelay = options.maxReconnectDelayMs ?? 2000;
  return createClient({
    url: options.url,
    scripts: SCRIPTS,
    // No unbounded queue while Redis is away: a command on a disconnected client fails at
    // once and the caller decides with the replica's memory.
    disableOfflineQueue: true,
    // And a bound on commands waiting for their reply (a hung Redis answers none of them).
    commandsQueueMaxLength: 10_000,
    socket: {
      connectTimeout: options.connectTimeoutMs ?? 1000,
      // Exponential backoff with jitter, forever: the gateway reconnects by itself.
      reconnectStrategy: (retries: number) => Math.min(50 * 2 ** Math.min(retries, 10), maxDelay) + Math.floor(Math.random() * 100),
    },
  });
}

type Client = ReturnType<typeof createRedisClient>;

/** A call that took longer than the command timeout. */
class StoreTimeoutError extends Error {
  override readonly name = 'StoreTimeoutError';
}
/** A command timer that fires this much past its time means the event loop was busy, not Redis slow. */
const LATE_TIMER_MS = 5;
const TIMED_OUT = new StoreTimeoutError('state store call timed out');
/** A cache call while Redis is known to be away (it is not tried). */
const UNAVAILABLE = new StoreTimeoutError('state store away: cache call not tried');
/** The Keyv store adapter's calls that reach Redis (src/state/redis.ts, timedAdapter). */
const CACHE_CALLS = new Set(['get', 'getMany', 'set', 'setMany', 'delete', 'deleteMany', 'has', 'hasMany', 'clear']);

/**
 * The shared store on Redis (node-redis / @redis/client, the client @keyv/redis also uses).
 *
 * Degradation: while Redis is unreachable — disconnected, or a call took longer than
 * `commandTimeoutMs` — every call is answered by `local` (a MemoryStore), so rate limits
 * become per-replica and nothing waits. One log line and one `onStatusChange` call per
 * change of state, never per request. Reconnection is node-redis's, with backoff; after a
 * timeout the store stops asking Redis for `suspendMs`, then probes it with PING.
 */
export class RedisStore implements StateStore {
  readonly backend = 'redis' as const;
  /** Answers while Redis cannot (and delivers pub/sub messages inside this process). */
  readonly local: MemoryStore;
  private readonly client: Client;
  private readonly subscriber: Client;
  private readonly channel: string;
  private readonly id = randomBytes(6).toString('base64url');
  private seq = 0;
  private suspended = false;
  private probeTimer: NodeJS.Timeout | undefined;
  private lastUp = false;
  private closed = false;
  private lastUnexpectedLog = 0;
  private readonly listeners = new Set<StoreStatusListener>();

  constructor(private readonly options: RedisStoreOptions) {
    this.local = new MemoryStore();
    this.channel = `${options.keyPrefix}events`;
    this.client = createRedisClient(options);
    // Pub/sub needs its own connection. It subscribes once connected (see `subscribe`);
    // node-redis subscribes again by itself after a reconnection.
    this.subscriber = this.client.duplicate();
    for (const c of [this.client, this.subscriber]) {
      c.on('error', (err: Error) => {
        this.options.log.debug({ err: err.message }, 'redis connection error');
        this.refresh();
      });
      c.on('ready', () => {
        if (c === this.subscriber) this.listen();
        this.refresh();
      });
      c.on('end', () => this.refresh());
      c.on('reconnecting', () => this.refresh());
    }
  }

  get up(): boolean {
    return this.lastUp;
  }

  /** Connect (in the background) and wait until Redis answers or `timeoutMs` passes; never throws. */
  async start(timeoutMs = 2000): Promise<boolean> {
    this.client.connect().catch(() => {});
    this.subscriber.connect().catch(() => {});
    const deadline = performance.now() + timeoutMs;
    while (!this.lastUp && performance.now() < deadline && !this.closed) await new Promise((r) => setTimeout(r, 10));
    if (!this.lastUp) this.logChange(false);
    return this.lastUp;
  }

  private subscribing: 'no' | 'pending' | 'yes' = 'no';

  /** Subscribe to the channel once the connection is ready (a SUBSCRIBE sent while Redis was away would be lost). */
  private listen(): void {
    if (this.subscribing !== 'no' || this.closed) return;
    this.subscribing = 'pending';
    this.subscriber.subscribe(this.channel, (message: string) => this.onMessage(message)).then(
      () => {
        this.subscribing = 'yes';
        this.refresh();
      },
      (err: unknown) => {
        this.subscribing = 'no';
        this.options.log.warn({ err: String(err) }, 'redis subscription failed; retried on the next connection');
      },
    );
  }

  private refresh(): void {
    const up = !this.closed && !this.suspended && this.subscribing === 'yes' && this.client.isReady && this.subscriber.isReady;
    if (up === this.lastUp) return;
    this.lastUp = up;
    this.logChange(up);
    for (const listener of this.listeners) {
      try {
        listener(up);
      } catch {
        // a listener's failure is its own
      }
    }
  }

  private loggedState: boolean | undefined;
  private logChange(up: boolean): void {
    if (this.closed || this.loggedState === up) return;
    this.loggedState = up;
    const url = this.options.url.replace(/\/\/[^@/]*@/, '//***@');
    if (up) this.options.log.info({ redis: url }, 'state store reachable: rate limits and blocks are shared across replicas');
    else {
      const reason = this.suspended ? `no answer within ${this.options.commandTimeoutMs} ms` : 'not connected';
      this.options.log.warn({ redis: url, reason }, 'state store unreachable: falling back to per-replica limits until it is back');
    }
  }

  /** A call failed: fall back for this call, and stop asking Redis for a while when it timed out. */
  private failed(err: unknown): void {
    const name = (err as Error)?.name;
    if (err === TIMED_OUT) {
      this.suspend();
      return;
    }
    if (name === 'ClientOfflineError' || name === 'ClientClosedError' || name === 'SocketClosedUnexpectedlyError') {
      this.refresh();
      return;
    }
    // Anything else (a script error, a full queue) is a bug or a misconfigured Redis: say so, rarely.
    const now = performance.now();
    if (now - this.lastUnexpectedLog > 60_000) {
      this.lastUnexpectedLog = now;
      this.options.log.warn({ err: String(err) }, 'state store call failed; this replica decided alone');
    }
  }

  private suspend(): void {
    if (this.suspended || this.closed) return;
    this.suspended = true;
    this.refresh();
    const probe = () => {
      this.probeTimer = undefined;
      if (this.closed) return;
      this.timed(this.client.ping()).then(
        () => {
          this.suspended = false;
          this.refresh();
        },
        () => {
          this.probeTimer = setTimeout(probe, this.options.suspendMs ?? 1000);
          this.probeTimer.unref();
        },
      );
    };
    this.probeTimer = setTimeout(probe, this.options.suspendMs ?? 1000);
    this.probeTimer.unref();
  }

  /**
   * The call, or a rejection after `commandTimeoutMs`. Our own timer: node-redis's command
   * timeout stops counting once the command is written, so a hung Redis (accepting bytes,
   * answering nothing) would make a request wait forever.
   */
  private timed<T>(call: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      // When the event loop itself was late (a GC pause, a busy CPU, a long synchronous stretch
      // such as start-up), the command may not even have been written when the timer fires:
      // a timer that fired late (by more than LATE_TIMER_MS) gives the command its window
      // again, counted from now (at most twice), so a busy replica does not take Redis for
      // gone; a hung Redis is still found within three windows. Then
      // setImmediate: a reply already waiting in the socket is read first, so only a Redis
      // that really did not answer in time counts as a timeout.
      const timeout = this.options.commandTimeoutMs;
      let due = performance.now() + timeout;
      let rearms = 0;
      const expire = () => {
        const now = performance.now();
        if (now - due > LATE_TIMER_MS && rearms < 2) {
          rearms += 1;
          due = now + timeout;
          timer = setTimeout(expire, timeout);
          return;
        }
        setImmediate(() => reject(TIMED_OUT));
      };
      let timer = setTimeout(expire, timeout);
      call.then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err);
        },
      );
    });
  }

  private key(kind: string, key: string): string {
    return `${this.options.keyPrefix}${kind}:${key}`;
  }

  async hit(key: string, limit: number, windowMs: number): Promise<WindowDecision> {
    return (await this.hitAll([{ key, limit, windowMs }]))[0]!;
  }

  /**
   * Ask Redis while it answers; when it is away (or fails now) this replica decides alone from
   * its own memory, and the fallback is counted (gateway_state_store_fallbacks_total).
   */
  private async sharedOrLocal<T>(shared: () => Promise<T>, local: () => T | Promise<T>, counted = true): Promise<T> {
    if (this.lastUp) {
      try {
        return await this.timed(shared());
      } catch (err) {
        this.failed(err);
      }
    }
    if (counted) this.options.onFallback?.();
    return local();
  }

  /** After a local write: the same write in Redis while it answers (a failure only marks Redis away). */
  private async alsoShared(shared: () => Promise<unknown>): Promise<void> {
    if (!this.lastUp) return;
    try {
      await this.timed(shared());
    } catch (err) {
      this.failed(err);
    }
  }

  async hitAll(checks: readonly WindowCheck[]): Promise<WindowDecision[]> {
    return this.sharedOrLocal(
      async () => {
        const member = `${this.id}.${(this.seq++).toString(36)}`;
        const args: number[] = [];
        for (const c of checks) args.push(c.limit, c.windowMs);
        const replies = await this.client.gwSlidingWindow(checks.map((c) => this.key('rl', c.key)), args, member);
        return replies.map((r, i) => {
          const limit = checks[i]!.limit;
          return { allowed: r.allowed, limit, remaining: Math.max(0, limit - r.count), resetMs: Math.max(0, r.resetMs), shared: true };
        });
      },
      () => this.local.hitAllSync(checks),
    );
  }

  async addScore(key: string, amount: number, options: ScoreOptions): Promise<ScoreChange> {
    return this.sharedOrLocal(
      async () => {
        const { before, after } = await this.client.gwAddScore(
          this.key('score', key),
          this.key('distinct', key),
          amount,
          options.halfLifeMs,
          options.distinct ?? '',
          options.maxDistinct ?? 256,
          scoreTtl(options.halfLifeMs),
        );
        return { before, after, shared: true };
      },
      () => this.local.addScoreSync(key, amount, options),
    );
  }

  async setScore(key: string, value: number, halfLifeMs: number): Promise<void> {
    await this.local.setScore(key, value, halfLifeMs);
    await this.alsoShared(() => this.client.gwSetScore(this.key('score', key), this.key('distinct', key), value, scoreTtl(halfLifeMs)));
  }

  async increment(key: string, ttlMs: number): Promise<number> {
    return this.sharedOrLocal(
      () => this.client.gwIncrement(this.key('count', key), ttlMs),
      () => this.local.increment(key, ttlMs),
    );
  }

  async deleteCounter(key: string): Promise<void> {
    await this.local.deleteCounter(key);
    await this.alsoShared(() => this.client.del(this.key('count', key)));
  }

  async claim(key: string, ttlMs: number): Promise<ClaimResult> {
    return this.sharedOrLocal(
      async () => ({ ...(await this.client.gwClaim(this.key('claim', key), ttlMs)), shared: true }),
      () => this.local.claimSync(key, ttlMs),
    );
  }

  async release(key: string): Promise<void> {
    await this.local.release(key);
    await this.alsoShared(() => this.client.del(this.key('claim', key)));
  }

  // Expiring sets are written to both: local memory keeps what this replica knows for when
  // Redis is away (and lets a replica put its entries back after Redis lost them).
  async putEntry(set: string, id: string, value: string, ttlMs: number): Promise<void> {
    await this.local.putEntry(set, id, value, ttlMs);
    await this.alsoShared(() => this.client.gwPutEntry(this.key('set', set), this.key('setv', set), id, value, ttlMs));
  }

  // Decided by Redis while it answers (this replica's copy follows); by this replica alone otherwise.
  async replaceEntry(set: string, id: string, expected: string | null, value: string, ttlMs: number): Promise<boolean> {
    return this.sharedOrLocal(
      async () => {
        const replaced = await this.client.gwReplaceEntry(this.key('set', set), this.key('setv', set), id, expected, value, ttlMs);
        if (replaced) await this.local.putEntry(set, id, value, ttlMs);
        return replaced;
      },
      () => this.local.replaceEntrySync(set, id, expected, value, ttlMs),
      false,
    );
  }

  async deleteEntry(set: string, id: string): Promise<boolean> {
    const here = await this.local.deleteEntry(set, id);
    return this.sharedOrLocal(
      async () => (await this.client.gwDeleteEntry(this.key('set', set), this.key('setv', set), id)) || here,
      () => here,
      false,
    );
  }

  async listEntries(set: string, max = 10_000): Promise<ExpiringEntry[]> {
    return this.sharedOrLocal(
      () => this.client.gwListEntries(this.key('set', set), this.key('setv', set), max),
      () => this.local.listEntries(set, max),
      false,
    );
  }

  async publish(topic: string, data: unknown): Promise<void> {
    // Redis away: only this replica hears it (the others catch up when they resynchronise).
    await this.sharedOrLocal(
      async () => void (await this.client.publish(this.channel, JSON.stringify({ o: this.id, t: topic, d: data ?? null }))),
      () => this.local.publish(topic, data),
      false,
    );
  }

  private onMessage(raw: string): void {
    let parsed: { o?: unknown; t?: unknown; d?: unknown };
    try {
      parsed = JSON.parse(raw) as typeof parsed;
    } catch {
      return;
    }
    if (typeof parsed.t !== 'string') return;
    this.local.deliver(parsed.t, parsed.d, parsed.o === this.id);
  }

  subscribe(topic: string, handler: (message: StoreMessage) => void): () => void {
    return this.local.subscribe(topic, handler);
  }

  onStatusChange(listener: StoreStatusListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  cache<T = unknown>(namespace: string): Keyv<T> {
    const ns = `${this.options.keyPrefix}cache:${namespace}`;
    const adapter = this.timedAdapter(new KeyvRedis(this.client as never, { namespace: ns, throwOnConnectError: false, throwOnErrors: false }));
    const keyv = new Keyv<T>(adapter, { namespace: ns, useKeyPrefix: false });
    // A cache that cannot reach Redis misses; it never fails the request.
    keyv.on('error', (err: unknown) => this.options.log.debug({ err: String(err) }, 'cache call failed'));
    return keyv;
  }

  /**
   * The cache's Redis calls under the same rules as the store's own: a Redis known to be away
   * answers at once (a miss, a write not shared), one that does not answer within
   * `commandTimeoutMs` (hung, not dead: node-redis would wait forever) fails the call and marks
   * Redis away until the probe finds it again. Keyv turns a failed call into a miss or `false`.
   */
  private timedAdapter<A extends object>(adapter: A): A {
    // One wrapper per call name, made on first use (the response cache reads on every request).
    const wrapped = new Map<string, (...args: unknown[]) => Promise<unknown>>();
    return new Proxy(adapter, {
      get: (target, prop, receiver) => {
        const value: unknown = Reflect.get(target, prop, receiver);
        if (typeof prop !== 'string' || !CACHE_CALLS.has(prop) || typeof value !== 'function') return value;
        let call = wrapped.get(prop);
        if (call === undefined) {
          call = (...args: unknown[]): Promise<unknown> => {
            if (!this.lastUp || this.closed) return Promise.reject(UNAVAILABLE);
            return this.timed(Promise.resolve(value.apply(target, args) as unknown)).catch((err: unknown) => {
              this.failed(err);
              throw err;
            });
          };
          wrapped.set(prop, call);
        }
        return call;
      },
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.probeTimer) clearTimeout(this.probeTimer);
    this.lastUp = false;
    await Promise.allSettled([this.client, this.subscriber].map(async (c) => c.destroy()));
    await this.local.close();
  }
}

/** A score is forgotten once it has decayed below 0.1% (ten half-lives). */
function scoreTtl(halfLifeMs: number): number {
  return Math.ceil(halfLifeMs * 10);
}
