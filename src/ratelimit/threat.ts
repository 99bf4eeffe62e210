import { z } from 'zod';
import type { RateLimitConfig } from '../config/index.js';
import type { GatewayMetrics } from '../metrics/registry.js';
import type { ThreatSignal, ThreatSink } from '../security/threat-signals.js';
import { decayed } from '../state/memory.js';
import { parseStored } from '../state/parse.js';
import type { StoreLogger } from '../state/redis.js';
import type { StateStore, StoreMessage } from '../state/store.js';
import { clientKey } from './client-key.js';

export const THREAT_LEVELS = ['low', 'medium', 'high', 'critical'] as const;
export type ThreatLevel = (typeof THREAT_LEVELS)[number];
export type ThreatConfig = RateLimitConfig['threat'];

/** What is known about a block, stored with it and shown by the admin surfaces. */
const blockInfoSchema = z.object({
  client: z.string().min(1).max(64),
  /** The signal that tipped the client over, or "admin: <reason>" for a manual block. */
  reason: z.string().max(256),
  /** Automatic blocks within strikeMemorySeconds, this one included (0 for a manual block). */
  strikes: z.number().int().min(0),
  /** Epoch milliseconds: also the block's place in the order of blocks and unblocks. */
  blockedAt: z.number().int().min(0),
  durationSeconds: z.number().min(0),
});
export type BlockInfo = Readonly<z.infer<typeof blockInfoSchema>>;

/*
 * What the replicas tell each other (parsed, never cast: it comes through Redis). Blocks and
 * unblocks carry the time they were made, so a block that arrives after a newer unblock of
 * the same client (or the other way round) is ignored: the newest change wins everywhere.
 */
const blockMessageSchema = z.object({ info: blockInfoSchema, ttlMs: z.number().min(0) });
const unblockMessageSchema = z.object({ client: z.string().min(1).max(64), at: z.number().int().min(0) });
const levelMessageSchema = z.object({ client: z.string().min(1).max(64), score: z.number().min(0).finite() });

export interface ActiveBlock {
  readonly info: BlockInfo;
  readonly retryAfterSeconds: number;
}

export interface ThreatDetectorOptions {
  readonly store: StateStore;
  readonly config: ThreatConfig;
  readonly log: StoreLogger;
  readonly metrics?: Pick<GatewayMetrics, 'threatLevelDetections' | 'blockedClients'>;
  /** Monotonic milliseconds (tests pass a fake clock). */
  readonly now?: () => number;
  /** Most clients remembered locally (views and blocks); the oldest are dropped past it. */
  readonly maxClients?: number;
  /** Addresses never scored (the allow-listed CIDRs), whoever reports them. */
  readonly ignore?: (ip: string) => boolean;
  /** Told each block this replica makes (the event bus: /v1/events). */
  readonly onBlocked?: (info: BlockInfo) => void;
}

const BLOCKS = 'blocked-clients';
const TOPIC_BLOCK = 'threat.block';
const TOPIC_UNBLOCK = 'threat.unblock';
const TOPIC_LEVEL = 'threat.level';
const MAX_DISTINCT_PATHS = 256;

const rank = (level: ThreatLevel) => THREAT_LEVELS.indexOf(level);
const scoreKey = (client: string) => `threat:${client}`;
const strikesKey = (client: string) => `strikes:${client}`;

/**
 * The suspicious-client detector: the ThreatSink every stage reports to. Signals add to a
 * per-client score in the state store (atomic, decaying, shared by the replicas); the level
 * the score reaches decides the treatment: low — served normally; medium — tighter quotas;
 * high — tarpit (each request waits first); critical — blocked (403 + Retry-After) for a
 * duration that doubles on each repeat.
 *
 * The request path never waits on the store for this: each replica keeps a local view of
 * the clients above "low" and of the blocks, fed by its own store calls and by the store's
 * broadcasts (a level change or a block on one replica reaches the others within a second),
 * and re-read from the store whenever the store comes back after an outage.
 */
export class ThreatDetector implements ThreatSink {
  private readonly store: StateStore;
  private readonly config: ThreatConfig;
  private readonly log: StoreLogger;
  private readonly metrics: ThreatDetectorOptions['metrics'];
  private readonly now: () => number;
  private readonly onBlocked: ThreatDetectorOptions['onBlocked'];
  private readonly maxClients: number;
  private readonly halfLifeMs: number;
  private readonly ignore: (ip: string) => boolean;
  /** Clients above "low": last known score and when (local monotonic ms). */
  private readonly views = new Map<string, { score: number; at: number }>();
  private readonly blocks = new Map<string, { until: number; info: BlockInfo }>();
  /** Recent unblocks (epoch ms), so an older block arriving late does not come back. */
  private readonly unblocked = new Map<string, number>();
  private readonly unsubscribe: Array<() => void> = [];
  private readonly pending = new Set<Promise<void>>();
  private sweeper: NodeJS.Timeout | undefined;

  constructor(options: ThreatDetectorOptions) {
    this.store = options.store;
    this.config = options.config;
    this.log = options.log;
    this.metrics = options.metrics;
    this.now = options.now ?? (() => performance.now());
    this.maxClients = options.maxClients ?? 100_000;
    this.halfLifeMs = options.config.halfLifeSeconds * 1000;
    this.ignore = options.ignore ?? (() => false);
    this.onBlocked = options.onBlocked;
  }

  /** Listen to the other replicas and load the current blocks. */
  async start(): Promise<void> {
    // Expired blocks and decayed views go (and the blocked-clients gauge follows) even for
    // clients that never come back.
    this.sweeper = setInterval(() => this.sweep(), 5000);
    this.sweeper.unref();
    this.unsubscribe.push(
      this.store.subscribe(TOPIC_BLOCK, (m) => this.onBlockMessage(m)),
      this.store.subscribe(TOPIC_UNBLOCK, (m) => this.onUnblockMessage(m)),
      this.store.subscribe(TOPIC_LEVEL, (m) => this.onLevelMessage(m)),
      this.store.onStatusChange((up) => {
        if (up) this.track(this.resynchronise());
      }),
    );
    await this.resynchronise();
  }

  levelFor(score: number): ThreatLevel {
    const { levels } = this.config;
    if (score >= levels.critical) return 'critical';
    if (score >= levels.high) return 'high';
    if (score >= levels.medium) return 'medium';
    return 'low';
  }

  private weight(signal: ThreatSignal): number {
    const w = this.config.weights;
    switch (signal) {
      case 'input_rejected':
        return w.inputRejected;
      case 'auth_failed':
        return w.authFailed;
      case 'not_found':
        return w.notFound;
      case 'rate_limited':
        return w.rateLimited;
    }
  }

  /** ThreatSink: never throws, never makes the caller wait. `client` may be a raw address. */
  record(client: string, signal: ThreatSignal, detail?: string): void {
    if (!this.config.enabled || this.ignore(client)) return;
    this.track(this.apply(clientKey(client), signal, detail));
  }

  private track(work: Promise<void>): void {
    const p = work.catch((err: unknown) => this.log.warn({ err: String(err) }, 'threat signal not recorded'));
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  /** Wait until every signal recorded so far has been applied (tests, shutdown). */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  /** Apply one signal: add its weight, and act when the client's level went up. */
  async apply(client: string, signal: ThreatSignal, detail?: string): Promise<void> {
    const weight = this.weight(signal);
    if (weight <= 0) return;
    const distinct = signal === 'not_found' ? (detail ?? '').slice(0, 256) : undefined;
    const change = await this.store.addScore(scoreKey(client), weight, {
      halfLifeMs: this.halfLifeMs,
      ...(distinct !== undefined ? { distinct, maxDistinct: MAX_DISTINCT_PATHS } : {}),
    });
    if (change.after === change.before) return;
    this.setView(client, change.after);
    const from = this.levelFor(change.before);
    const to = this.levelFor(change.after);
    if (rank(to) <= rank(from)) return;
    // Exactly one replica sees each crossing (the score is added atomically): it counts it.
    this.metrics?.threatLevelDetections.inc({ level: to });
    this.log.warn({ client, level: to, score: Math.round(change.after * 10) / 10, signal }, 'client threat level raised');
    if (to === 'critical') await this.autoBlock(client, signal);
    else await this.store.publish(TOPIC_LEVEL, { client, score: change.after });
  }

  private setView(client: string, score: number): void {
    if (score < this.config.levels.medium) {
      this.views.delete(client);
      return;
    }
    if (!this.views.has(client) && this.views.size >= this.maxClients) this.dropOldest(this.views);
    this.views.delete(client); // re-insert: the map's order is the order of last change
    this.views.set(client, { score, at: this.now() });
  }

  private dropOldest(map: Map<string, unknown>): void {
    const oldest = map.keys().next();
    if (!oldest.done) map.delete(oldest.value);
  }

  /** The client's level as this replica knows it now (decayed since last heard). */
  levelOf(client: string): ThreatLevel {
    const view = this.views.get(client);
    if (view === undefined) return 'low';
    const score = decayed(view.score, this.now() - view.at, this.halfLifeMs);
    const level = this.levelFor(score);
    if (level === 'low') this.views.delete(client);
    return level;
  }

  /** The client's block, if it is blocked now. */
  blocked(client: string): ActiveBlock | undefined {
    const block = this.blocks.get(client);
    if (block === undefined) return undefined;
    const left = block.until - this.now();
    if (left <= 0) {
      this.blocks.delete(client);
      this.updateGauge();
      return undefined;
    }
    return { info: block.info, retryAfterSeconds: Math.max(1, Math.ceil(left / 1000)) };
  }

  private applyBlock(info: BlockInfo, ttlMs: number): void {
    if (ttlMs <= 0) return;
    const unblockedAt = this.unblocked.get(info.client);
    if (unblockedAt !== undefined && unblockedAt >= info.blockedAt) return; // lifted after it was made
    const current = this.blocks.get(info.client);
    if (current !== undefined && current.info.blockedAt > info.blockedAt) return; // a newer block is in force
    if (!this.blocks.has(info.client) && this.blocks.size >= this.maxClients) this.dropOldest(this.blocks);
    this.blocks.set(info.client, { until: this.now() + ttlMs, info });
    // As in the store: the score restarts at the "high" threshold and decays from there.
    if (info.strikes > 0) this.setView(info.client, this.config.levels.high);
    this.updateGauge();
  }

  private updateGauge(): void {
    this.metrics?.blockedClients.set(this.blocks.size);
  }

  private async autoBlock(client: string, signal: ThreatSignal): Promise<void> {
    const strikeMemoryMs = this.config.strikeMemorySeconds * 1000;
    const strikes = await this.store.increment(strikesKey(client), strikeMemoryMs);
    const durationSeconds = Math.min(this.config.blockSeconds * 2 ** Math.min(strikes - 1, 30), this.config.maxBlockSeconds);
    // The score restarts at the "high" threshold and decays from there: a client that comes
    // back soon is tarpitted, and a few more bad requests block it again, for twice as long.
    await this.store.setScore(scoreKey(client), this.config.levels.high, this.halfLifeMs);
    await this.putBlock({ client, reason: signal, strikes, blockedAt: Date.now(), durationSeconds });
  }

  private async putBlock(info: BlockInfo): Promise<void> {
    const ttlMs = info.durationSeconds * 1000;
    this.unblocked.delete(info.client); // a block made here now is newer than any unblock seen
    this.applyBlock(info, ttlMs);
    this.log.warn({ client: info.client, reason: info.reason, strikes: info.strikes, seconds: info.durationSeconds }, 'client blocked');
    this.onBlocked?.(info);
    await this.store.putEntry(BLOCKS, info.client, JSON.stringify(info), ttlMs);
    await this.store.publish(TOPIC_BLOCK, { info, ttlMs });
  }

  /** Block a client by hand (admin surfaces). */
  async block(client: string, seconds: number, reason: string): Promise<BlockInfo> {
    const info: BlockInfo = { client: clientKey(client), reason: `admin: ${reason}`.slice(0, 200), strikes: 0, blockedAt: Date.now(), durationSeconds: seconds };
    await this.putBlock(info);
    return info;
  }

  /** Lift a block and forget the client's score and strikes (a false positive, by an admin). */
  async unblock(client: string): Promise<boolean> {
    const key = clientKey(client);
    const at = Date.now();
    const wasLocal = this.blocks.delete(key);
    this.views.delete(key);
    this.rememberUnblock(key, at);
    this.updateGauge();
    const [wasShared] = await Promise.all([
      this.store.deleteEntry(BLOCKS, key),
      this.store.setScore(scoreKey(key), 0, this.halfLifeMs),
      this.store.deleteCounter(strikesKey(key)),
    ]);
    await this.store.publish(TOPIC_UNBLOCK, { client: key, at });
    if (wasLocal || wasShared) this.log.info({ client: key }, 'client unblocked');
    return wasLocal || wasShared;
  }

  /** The blocks in force: from the shared store when it answers, else as this replica knows them. */
  async listBlocked(): Promise<ActiveBlock[]> {
    const entries = await this.store.listEntries(BLOCKS);
    const out: ActiveBlock[] = [];
    for (const e of entries) {
      const info = parseInfo(e.value);
      if (info !== undefined) out.push({ info, retryAfterSeconds: Math.max(1, Math.ceil(e.ttlMs / 1000)) });
    }
    return out;
  }

  /** Make local blocks and the store agree: learn the store's, put back the ones it lost. */
  private async resynchronise(): Promise<void> {
    const entries = await this.store.listEntries(BLOCKS);
    const known = new Set<string>();
    for (const e of entries) {
      const info = parseInfo(e.value);
      if (info === undefined) continue;
      known.add(info.client);
      this.applyBlock(info, e.ttlMs);
    }
    // Blocks made while Redis was away (or lost in a Redis restart) go back into the store.
    for (const [client, block] of this.blocks) {
      const left = block.until - this.now();
      if (!known.has(client) && left > 0) await this.store.putEntry(BLOCKS, client, JSON.stringify(block.info), Math.ceil(left));
    }
  }

  /** A message of another replica, or undefined (logged) when it does not have the expected shape. */
  private parseMessage<T>(schema: z.ZodType<T>, m: StoreMessage): T | undefined {
    if (m.self) return undefined;
    const parsed = schema.safeParse(m.data);
    if (!parsed.success) this.log.warn({ topic: m.topic }, 'threat detector: ignored a malformed message from the state store');
    return parsed.success ? parsed.data : undefined;
  }

  private onBlockMessage(m: StoreMessage): void {
    const message = this.parseMessage(blockMessageSchema, m);
    if (message !== undefined) this.applyBlock(message.info, message.ttlMs);
  }

  private onUnblockMessage(m: StoreMessage): void {
    const message = this.parseMessage(unblockMessageSchema, m);
    if (message === undefined) return;
    const block = this.blocks.get(message.client);
    if (block !== undefined && block.info.blockedAt > message.at) return; // blocked again since
    this.blocks.delete(message.client);
    this.views.delete(message.client);
    this.rememberUnblock(message.client, message.at);
    this.updateGauge();
  }

  private rememberUnblock(client: string, at: number): void {
    if ((this.unblocked.get(client) ?? -1) >= at) return;
    this.unblocked.delete(client);
    if (this.unblocked.size >= this.maxClients) this.dropOldest(this.unblocked);
    this.unblocked.set(client, at);
  }

  private onLevelMessage(m: StoreMessage): void {
    const message = this.parseMessage(levelMessageSchema, m);
    if (message !== undefined) this.setView(message.client, message.score);
  }

  /** Drop expired blocks and views decayed below "medium". */
  sweep(): void {
    const now = this.now();
    for (const [client, block] of this.blocks) if (block.until <= now) this.blocks.delete(client);
    // An unblock only needs remembering while a block made before it could still be in flight.
    const forgetBefore = Date.now() - this.config.maxBlockSeconds * 1000;
    for (const [client, at] of this.unblocked) if (at < forgetBefore) this.unblocked.delete(client);
    for (const [client, view] of this.views) {
      if (decayed(view.score, now - view.at, this.halfLifeMs) < this.config.levels.medium) this.views.delete(client);
    }
    this.updateGauge();
  }

  async close(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    for (const off of this.unsubscribe.splice(0)) off();
    await this.settled();
  }
}

/** A block as stored (JSON text), or undefined when it is not one. */
function parseInfo(value: unknown): BlockInfo | undefined {
  if (typeof value === 'string') return parseStored(blockInfoSchema, value);
  const parsed = blockInfoSchema.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}
