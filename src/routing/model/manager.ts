import { mkdtempSync, rmSync, unwatchFile, watchFile, writeFileSync, type Stats } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { RoutingConfig } from '../../config/index.js';
import type { RoutingInput } from './features.js';
import { checkLabels, entryPath, listModels, loadModelFile, modelPathForId, POINTER_FILE, promoteModel, readPointer } from './files.js';
import { ModelFileError, RoutingModel } from './model.js';
import { z } from 'zod';
import { isNewer, isoTime } from '../../state/order.js';

/*
 * The routing models a gateway replica uses: the active one (every /v1/query and /v1/upload
 * decision) and optionally a shadow candidate that sees the same requests off the hot path,
 * counting how often it agrees. Models are swapped at runtime without a restart:
 *  - by the admin API (activate a model id, promote the shadow, set or clear the shadow);
 *  - by `model promote` / `model rollback`, which rewrite active.json, watched here.
 * A swap on one replica is broadcast through the state store (Redis pub/sub with REDIS_URL) so
 * every replica converges; the model file itself is also put in the store, so a replica that
 * does not have it on disk still loads it, and a replica that starts later picks up the
 * fleet's current choice.
 */

export interface ModelLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** What the manager needs of the state store; `stateBroadcast` adapts a StateStore. */
export interface ModelBroadcast {
  publish(topic: string, data: unknown): Promise<void>;
  subscribe(topic: string, handler: (message: { readonly data: unknown; readonly self: boolean }) => void): () => void;
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string): Promise<void>;
  /** Called when the shared backend comes back (Redis reconnected): replicas resynchronise. */
  onStatusChange?(listener: (up: boolean) => void): () => void;
}

export interface ShadowCounter {
  inc(labels: { result: 'agree' | 'disagree' | 'dropped' }): void;
}

export const MODEL_TOPIC = 'routing.model';

interface Slot {
  readonly model: RoutingModel;
  /** Where it came from: a file path, "store" (another replica), ... */
  readonly source: string;
  readonly since: string;
}

/** What `pointer:active` / `pointer:shadow` hold in the store: the fleet's newest choice. */
const sharedPointerSchema = z.object({ id: z.string().min(1).nullable(), at: isoTime });
type SharedPointer = z.infer<typeof sharedPointerSchema>;
/** A swap broadcast by another replica (parsed, never cast: it came through Redis). */
const swapMessageSchema = sharedPointerSchema.extend({ kind: z.enum(['active', 'shadow']) });
type SwapMessage = z.infer<typeof swapMessageSchema>;

export interface ModelInfo {
  readonly id: string;
  readonly createdAt: string;
  readonly labels: readonly string[];
  readonly source: string;
  readonly since: string;
  readonly evaluation: { readonly data: string; readonly examples: number; readonly accuracy: number; readonly macroF1: number } | null;
}

export interface RoutingStatus {
  readonly active: ModelInfo;
  readonly shadow: ModelInfo | null;
  /** Counted on this replica since the shadow was set (gateway_routing_shadow_agreement_total has every replica). */
  readonly shadowAgreement: {
    readonly agree: number;
    readonly disagree: number;
    readonly dropped: number;
    readonly rate: number | null;
    readonly since: string | null;
  };
  readonly settings: {
    readonly services: readonly string[];
    readonly confidenceThreshold: number;
    readonly defaultService: string;
    readonly ambiguous: 'default' | '300';
  };
  readonly modelsDir: string;
  readonly pointer: { readonly id: string; readonly promotedAt: string } | null;
  readonly available: readonly string[];
}

export type ActivateRef = { readonly id: string } | 'shadow' | 'pointer';

export interface ManagerOptions {
  readonly config: RoutingConfig;
  /** The operators' folder (resolved). */
  readonly dir: string;
  readonly log: ModelLog;
  readonly broadcast?: ModelBroadcast;
  readonly shadowCounter?: ShadowCounter;
  /** Told when this replica activates another model (the event bus: /v1/events). */
  readonly onActivated?: (model: string, previous: string) => void;
  /** How often active.json is checked for changes (fs.watchFile interval). */
  readonly pointerPollMs?: number;
  /** The clock that stamps this replica's choices (tests inject one). */
  readonly now?: () => Date;
}

const SHADOW_BATCH = 64;

function info(slot: Slot): ModelInfo {
  const e = slot.model.evaluation;
  return {
    id: slot.model.id,
    createdAt: slot.model.createdAt,
    labels: slot.model.labels,
    source: slot.source,
    since: slot.since,
    evaluation: e ? { data: e.data, examples: e.examples, accuracy: e.accuracy, macroF1: e.macroF1 } : null,
  };
}

/** A model that cannot be found or used for a request of the admin API. */
export class ModelNotAvailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelNotAvailableError';
  }
}

export class RoutingModelManager {
  readonly #opts: ManagerOptions;
  readonly #services: readonly string[];
  #active: Slot;
  /** When the active model was chosen (pointer promotedAt, or a runtime swap): the newest choice wins across replicas. */
  #activeAt: string;
  #shadow: Slot | null = null;
  /** When the shadow was last set or cleared ('' for the configured one): the newest choice wins. */
  #shadowAt = '';
  #agree = 0;
  #disagree = 0;
  #dropped = 0;
  #shadowSince: string | null = null;
  #queue: Array<{ input: RoutingInput; label: string; model: RoutingModel }> = [];
  #drainScheduled = false;
  #shadowOut = new Float64Array(0);
  #unsubscribe: Array<() => void> = [];
  #watching: string | null = null;
  #closed = false;
  /** Serialises swaps (pointer watch, broadcast and admin calls may race). */
  #swapping: Promise<unknown> = Promise.resolve();

  private constructor(opts: ManagerOptions, active: Slot, activeAt: string, shadow: Slot | null) {
    this.#opts = opts;
    this.#services = opts.config.services;
    this.#active = active;
    this.#activeAt = activeAt;
    if (shadow) this.#setShadowSlot(shadow);
  }

  /** Load the configured models (throws ModelFileError when one cannot be used). */
  static load(opts: ManagerOptions): RoutingModelManager {
    const { config, dir } = opts;
    const now = new Date().toISOString();
    let active: Slot;
    // An explicit routing.model is older than any runtime choice of the fleet ("" sorts first).
    let activeAt = '';
    if (config.model !== undefined) {
      const path = resolve(config.model);
      active = { model: loadModelFile(path), source: path, since: now };
    } else {
      const pointer = readPointer(dir);
      if (pointer === null) {
        throw new ModelFileError(join(dir, POINTER_FILE), [
          'no active model: promote one (`unified-gateway model promote FILE`), set routing.model, or set routing.enabled: false',
        ]);
      }
      const path = entryPath(dir, pointer);
      active = { model: loadModelFile(path), source: path, since: now };
      activeAt = pointer.promotedAt;
    }
    checkLabels(active.model, config.services, active.source);
    let shadow: Slot | null = null;
    if (config.shadowModel !== undefined) {
      const path = resolve(config.shadowModel);
      shadow = { model: loadModelFile(path), source: path, since: now };
      checkLabels(shadow.model, config.services, path);
    }
    return new RoutingModelManager(opts, active, activeAt, shadow);
  }

  get active(): RoutingModel {
    return this.#active.model;
  }

  get shadow(): RoutingModel | null {
    return this.#shadow?.model ?? null;
  }

  /** Subscribe to swaps of other replicas, adopt the fleet's current choice, watch active.json. */
  async start(): Promise<void> {
    const { broadcast, config, dir } = this.#opts;
    if (broadcast) {
      this.#unsubscribe.push(
        broadcast.subscribe(MODEL_TOPIC, (message) => {
          if (message.self) return;
          const swap = swapMessageSchema.safeParse(message.data);
          if (!swap.success) {
            this.#opts.log.warn({ issues: swap.error.issues.length }, 'routing model: ignored a malformed swap message from the store');
            return;
          }
          void this.#serial(() => this.#follow(swap.data)).catch((err: unknown) =>
            this.#opts.log.error({ err: (err as Error).message }, 'routing model: could not follow another replica'),
          );
        }),
      );
      if (broadcast.onStatusChange) {
        // Back from a Redis outage: swaps made meanwhile were only local; converge again.
        this.#unsubscribe.push(broadcast.onStatusChange((up) => {
          if (up && !this.#closed) void this.#serial(() => this.#adoptShared());
        }));
      }
      await this.#serial(() => this.#adoptShared());
    }
    if (config.watchPointer && config.model === undefined) {
      const path = join(dir, POINTER_FILE);
      this.#watching = path;
      const interval = this.#opts.pointerPollMs ?? 1000;
      watchFile(path, { interval, persistent: false }, this.#onPointerChange);
      // A change between the first load and the watcher's first look is caught by one explicit check.
      setTimeout(() => void this.checkPointer(), interval).unref();
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const unsubscribe of this.#unsubscribe) unsubscribe();
    if (this.#watching) unwatchFile(this.#watching, this.#onPointerChange);
    this.#queue = [];
    await this.#swapping.catch(() => {});
  }

  status(): RoutingStatus {
    const { config, dir } = this.#opts;
    let pointer: RoutingStatus['pointer'] = null;
    try {
      const p = readPointer(dir);
      if (p) pointer = { id: p.id, promotedAt: p.promotedAt };
    } catch {
      // a broken pointer is reported by the pointer watch; the status still answers
    }
    const decided = this.#agree + this.#disagree;
    return {
      active: info(this.#active),
      shadow: this.#shadow ? info(this.#shadow) : null,
      shadowAgreement: {
        agree: this.#agree,
        disagree: this.#disagree,
        dropped: this.#dropped,
        rate: decided > 0 ? Math.round((this.#agree / decided) * 10_000) / 10_000 : null,
        since: this.#shadowSince,
      },
      settings: {
        services: config.services,
        confidenceThreshold: config.confidenceThreshold,
        defaultService: config.defaultService,
        ambiguous: config.ambiguous,
      },
      modelsDir: dir,
      pointer,
      available: listModels(dir),
    };
  }

  /**
   * Make a model active on every replica: a model id of the folder (or of the store), the
   * current shadow, or what active.json points to. With `persist`, active.json is rewritten
   * too (a restart keeps the choice); a read-only folder only loses that part.
   */
  async activate(ref: ActivateRef, options: { persist?: boolean } = {}): Promise<{ status: RoutingStatus; persisted: boolean | string }> {
    return this.#serial(async () => {
      let slot: Slot;
      if (ref === 'shadow') {
        if (!this.#shadow) throw new ModelNotAvailableError('there is no shadow model to promote');
        slot = { ...this.#shadow, since: new Date().toISOString() };
      } else if (ref === 'pointer') {
        const pointer = readPointer(this.#opts.dir);
        if (pointer === null) throw new ModelNotAvailableError(`${join(this.#opts.dir, POINTER_FILE)} does not exist`);
        const path = entryPath(this.#opts.dir, pointer);
        slot = { model: loadModelFile(path), source: path, since: new Date().toISOString() };
      } else {
        slot = await this.#slotForId(ref.id);
      }
      checkLabels(slot.model, this.#services, slot.source);
      const previous = this.#active.model.id;
      this.#active = slot;
      this.#activeAt = this.#stamp();
      if (ref === 'shadow') {
        this.#clearShadow();
        this.#shadowAt = this.#activeAt;
      }
      this.#opts.log.info({ model: slot.model.id, previous, source: slot.source }, 'routing model activated');
      if (slot.model.id !== previous) this.#opts.onActivated?.(slot.model.id, previous);
      let persisted: boolean | string = false;
      if (options.persist && ref !== 'pointer' && this.#opts.config.model === undefined) {
        try {
          const current = readPointer(this.#opts.dir);
          if (current?.id !== slot.model.id) {
            const file = slot.source.endsWith('.json') ? slot.source : this.#writeTemp(slot.model);
            try {
              promoteModel(file, this.#opts.dir);
            } finally {
              if (file !== slot.source) rmSync(dirname(file), { recursive: true, force: true });
            }
          }
          persisted = true;
        } catch (err) {
          persisted = (err as Error).message;
          this.#opts.log.warn({ err: persisted }, 'routing model: active.json not updated');
        }
      }
      await this.#announce('active', slot.model, this.#activeAt);
      if (ref === 'shadow') await this.#announce('shadow', null, this.#shadowAt);
      return { status: this.status(), persisted };
    });
  }

  /** Set (a model id) or clear (null) the shadow model on every replica. */
  async setShadow(id: string | null): Promise<RoutingStatus> {
    return this.#serial(async () => {
      if (id === null) {
        this.#clearShadow();
        this.#shadowAt = this.#stamp();
        this.#opts.log.info({}, 'routing shadow model cleared');
        await this.#announce('shadow', null, this.#shadowAt);
      } else {
        const slot = await this.#slotForId(id);
        checkLabels(slot.model, this.#services, slot.source);
        this.#setShadowSlot(slot);
        this.#shadowAt = this.#stamp();
        this.#opts.log.info({ model: id, source: slot.source }, 'routing shadow model set');
        await this.#announce('shadow', slot.model, this.#shadowAt);
      }
      return this.status();
    });
  }

  /**
   * Hot path: hand a request the active model decided to the shadow model, to be scored later
   * (setImmediate batches). Never blocks; when the queue is full the request is not shadowed.
   */
  shadowCompare(input: RoutingInput, activeLabel: string): void {
    const shadow = this.#shadow;
    if (shadow === null) return;
    if (this.#queue.length >= this.#opts.config.shadowQueueSize) {
      this.#dropped++;
      this.#opts.shadowCounter?.inc({ result: 'dropped' });
      return;
    }
    this.#queue.push({ input, label: activeLabel, model: shadow.model });
    if (!this.#drainScheduled) {
      this.#drainScheduled = true;
      setImmediate(this.#drain);
    }
  }

  readonly #drain = (): void => {
    this.#drainScheduled = false;
    const shadow = this.#shadow?.model;
    const n = Math.min(this.#queue.length, SHADOW_BATCH);
    for (let i = 0; i < n; i++) {
      const item = this.#queue[i]!;
      if (item.model !== shadow || this.#closed) continue; // the shadow changed meanwhile
      if (this.#shadowOut.length !== shadow.labels.length) this.#shadowOut = new Float64Array(shadow.labels.length);
      const best = shadow.predictInto(item.input, this.#shadowOut);
      if (shadow.labels[best] === item.label) {
        this.#agree++;
        this.#opts.shadowCounter?.inc({ result: 'agree' });
      } else {
        this.#disagree++;
        this.#opts.shadowCounter?.inc({ result: 'disagree' });
      }
    }
    this.#queue.splice(0, n);
    if (this.#queue.length > 0 && !this.#closed) {
      this.#drainScheduled = true;
      setImmediate(this.#drain);
    }
  };

  #setShadowSlot(slot: Slot): void {
    this.#shadow = slot;
    this.#agree = 0;
    this.#disagree = 0;
    this.#dropped = 0;
    this.#shadowSince = slot.since;
    this.#queue = [];
  }

  #clearShadow(): void {
    this.#shadow = null;
    this.#shadowSince = null;
    this.#queue = [];
  }

  #stamp(): string {
    return (this.#opts.now?.() ?? new Date()).toISOString();
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#swapping.then(fn, fn);
    this.#swapping = next.catch(() => {});
    return next;
  }

  /** A model by id: the folder first, then the shared store (put there by the replica that activated it). */
  async #slotForId(id: string): Promise<Slot> {
    const since = new Date().toISOString();
    if (this.#active.model.id === id) return { ...this.#active, since };
    if (this.#shadow?.model.id === id) return { ...this.#shadow, since };
    let path: string;
    try {
      path = modelPathForId(this.#opts.dir, id);
    } catch {
      throw new ModelNotAvailableError(`"${id}" is not a model id`);
    }
    try {
      return { model: loadModelFile(path), source: path, since };
    } catch (err) {
      const stored = await this.#opts.broadcast?.get(`model:${id}`).catch(() => undefined);
      if (stored !== undefined) return { model: RoutingModel.fromJson(JSON.parse(stored), `store:${id}`), source: `store:${id}`, since };
      if (err instanceof ModelFileError && /cannot read the file \(ENOENT\)/.test(err.message)) {
        throw new ModelNotAvailableError(`no model "${id}" in ${join(this.#opts.dir, 'models')} (known: ${listModels(this.#opts.dir).join(', ') || 'none'})`);
      }
      throw err;
    }
  }

  /** A model that came through the store, written to a file so `promoteModel` can copy it into the folder. */
  #writeTemp(model: RoutingModel): string {
    const path = join(mkdtempSync(join(tmpdir(), 'ugw-model-')), `${model.id}.json`);
    writeFileSync(path, JSON.stringify(model.file));
    return path;
  }

  /** Tell the other replicas (and later ones, through the shared pointer). */
  async #announce(kind: 'active' | 'shadow', model: RoutingModel | null, at: string): Promise<void> {
    const broadcast = this.#opts.broadcast;
    if (!broadcast) return;
    try {
      if (model) await broadcast.set(`model:${model.id}`, JSON.stringify(model.file));
      await broadcast.set(`pointer:${kind}`, JSON.stringify({ id: model?.id ?? null, at } satisfies SharedPointer));
      await broadcast.publish(MODEL_TOPIC, { kind, id: model?.id ?? null, at });
    } catch (err) {
      this.#opts.log.warn({ err: (err as Error).message }, 'routing model: could not tell the other replicas');
    }
  }

  /**
   * Follow another replica's choice when it is newer than ours (see src/state/order.ts): a late
   * or replayed message, or the store's pointer read at start, never undoes a newer choice.
   */
  async #follow(swap: SwapMessage): Promise<void> {
    if (this.#closed) return;
    if (swap.kind === 'active') {
      if (swap.id === null || !isNewer({ at: swap.at, tie: swap.id }, { at: this.#activeAt, tie: this.#active.model.id })) return;
      if (swap.id !== this.#active.model.id) {
        const slot = await this.#slotForId(swap.id);
        checkLabels(slot.model, this.#services, slot.source);
        this.#active = slot;
        this.#opts.log.info({ model: swap.id, source: slot.source }, 'routing model activated by another replica');
      }
      this.#activeAt = swap.at;
      return;
    }
    if (!isNewer({ at: swap.at, tie: swap.id ?? '' }, { at: this.#shadowAt, tie: this.#shadow?.model.id ?? '' })) return;
    if (swap.id === null) {
      if (this.#shadow) this.#clearShadow();
    } else if (swap.id !== this.#shadow?.model.id) {
      const slot = await this.#slotForId(swap.id);
      checkLabels(slot.model, this.#services, slot.source);
      this.#setShadowSlot(slot);
    }
    this.#shadowAt = swap.at;
  }

  /** At start and after a Redis outage: adopt the fleet's newer choices, announce ours when they are newer. */
  async #adoptShared(): Promise<void> {
    const broadcast = this.#opts.broadcast!;
    const read = async (key: string): Promise<SharedPointer | null> => {
      try {
        const raw = await broadcast.get(key);
        if (raw === undefined) return null;
        const parsed = sharedPointerSchema.safeParse(JSON.parse(raw));
        if (!parsed.success) this.#opts.log.warn({ key }, 'routing model: ignored a malformed pointer in the store');
        return parsed.success ? parsed.data : null;
      } catch {
        return null;
      }
    };
    const active = await read('pointer:active');
    const ours = { at: this.#activeAt, tie: this.#active.model.id };
    if (active?.id && isNewer({ at: active.at, tie: active.id }, ours)) {
      try {
        await this.#follow({ kind: 'active', ...active });
      } catch (err) {
        this.#opts.log.warn({ err: (err as Error).message, model: active.id }, 'routing model: could not adopt the fleet\'s active model');
      }
    } else if (this.#activeAt !== '' && (active === null || isNewer(ours, { at: active.at, tie: active.id ?? '' }))) {
      // Ours is the newer choice (a promote before this start, or a swap while Redis was away): tell the others.
      await this.#announce('active', this.#active.model, this.#activeAt);
    }
    const shadow = await read('pointer:shadow');
    if (shadow && this.#opts.config.shadowModel === undefined) {
      try {
        await this.#follow({ kind: 'shadow', ...shadow });
      } catch (err) {
        this.#opts.log.warn({ err: (err as Error).message, model: shadow.id }, 'routing model: could not adopt the fleet\'s shadow model');
      }
    }
  }

  readonly #onPointerChange = (curr: Stats, prev: Stats): void => {
    if (curr.mtimeMs !== prev.mtimeMs) void this.checkPointer();
  };

  /** Read active.json now and follow it when it was written after the current choice (the watch calls this). */
  checkPointer(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return this.#serial(async () => {
      const pointer = readPointer(this.#opts.dir);
      // Only a pointer written after the current choice counts: a runtime activation made since
      // the file was written (here or on another replica) is newer and stays.
      if (pointer === null || pointer.id === this.#active.model.id) return;
      if (!isNewer({ at: pointer.promotedAt, tie: pointer.id }, { at: this.#activeAt, tie: this.#active.model.id })) return;
      const path = entryPath(this.#opts.dir, pointer);
      const model = loadModelFile(path);
      checkLabels(model, this.#services, path);
      const previous = this.#active.model.id;
      this.#active = { model, source: path, since: new Date().toISOString() };
      this.#activeAt = pointer.promotedAt;
      this.#opts.log.info({ model: model.id, previous, source: path }, 'routing model activated from active.json');
      await this.#announce('active', model, pointer.promotedAt);
    }).catch((err: unknown) => this.#opts.log.error({ err: (err as Error).message }, 'routing model: active.json changed but cannot be used; keeping the current model'));
  }
}

/** A ModelBroadcast over the gateway's StateStore (memory, or Redis pub/sub and keys). */
export function stateBroadcast(state: {
  publish(topic: string, data: unknown): Promise<void>;
  subscribe(topic: string, handler: (message: { data: unknown; self: boolean }) => void): () => void;
  cache<T>(namespace: string, options?: { maxEntries?: number }): { get(key: string): Promise<T | undefined>; set(key: string, value: T): Promise<unknown> };
  onStatusChange?(listener: (up: boolean) => void): () => void;
}): ModelBroadcast {
  const cache = state.cache<string>('routing-models', { maxEntries: 64 });
  return {
    publish: (topic, data) => state.publish(topic, data),
    subscribe: (topic, handler) => state.subscribe(topic, handler),
    get: (key) => cache.get(key),
    set: async (key, value) => {
      await cache.set(key, value);
    },
    ...(state.onStatusChange ? { onStatusChange: (listener: (up: boolean) => void) => state.onStatusChange!(listener) } : {}),
  };
}
