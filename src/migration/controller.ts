import { randomUUID } from 'node:crypto';
import type { MigrationConfig } from '../config/index.js';
import type { GatewayMetrics } from '../metrics/registry.js';
import type { GatewayEvent } from '../events/index.js';
import type { TrafficSplits } from '../routing/traffic-split.js';
import type { StateStore } from '../state/index.js';
import { failedGates, referenceOf, type MigrationBaseline } from './gates.js';
import { MigrationRecords, type MigrationRecord } from './records.js';
import type { SideStats } from './side-stats.js';
import { enqueue, TrackingQueue } from './tracking.js';
import { rollbackComment, stepComment } from './tracking-text.js';
import type { MigrationTracker } from './tracker.js';

/*
 * The migration controller (docs/operations.md, "Progressive migrations"). Every replica runs
 * one; only the holder of the lease acts. The lease is an expiring state-store entry holding
 * the holder's name, taken when absent and renewed at every tick by an atomic compare-and-set
 * on that name (StateStore.replaceEntry: a Lua script in Redis), for three evaluation
 * intervals; each taking draws a fencing token from an atomic counter. The holder acts only
 * while its last renewal is less than 80% of the lease old by its own clock, and its record
 * writes carry the token, so a paused old holder can never overwrite what a newer one wrote
 * (src/migration/records.ts). A replica that closes lets the lease go, so another takes over
 * at its next tick. With Redis away a replica cannot know it is alone, so it does not act
 * (memory mode: one process, always the holder).
 *
 * Each tick, for each running migration: its current step's window (the requests served
 * with that step's weights, on every replica: src/migration/side-stats.ts) goes through the
 * gates; a failure shifts the canary to 0% at once and records the failing figures; a step
 * that held for stepSeconds and minRequests passes, then the next step starts (autoAdvance)
 * or waits for approve_migration_step. Admin changes (start, approve, pause, resume,
 * rollback, abort) go through the same update(), from any replica.
 */

const LEASES = 'leases';
const LEASE_ID = 'migration-controller';
/** The lease entry's value once its holder let it go. */
const RELEASED = 'released';
const FENCE_KEY = 'migration:fence';
const FENCE_TTL_MS = 10 * 365 * 86_400_000;

export interface ControllerDeps {
  readonly config: MigrationConfig;
  readonly splits: TrafficSplits;
  readonly stats: SideStats;
  readonly store: Pick<StateStore, 'increment' | 'replaceEntry' | 'listEntries' | 'backend' | 'up'>;
  readonly log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  readonly metrics?: Pick<GatewayMetrics, 'migrationCanaryPercent' | 'migrationGateFailures' | 'migrationCanaryErrorRatio' | 'migrationCanaryP99'>;
  /** Announces changes (gateway://migrations notifications). */
  readonly publish?: (event: GatewayEvent, key: string) => void;
  readonly tracker?: MigrationTracker;
  /** The configured legacy endpoints (a completed migration of the route they map to removes them). */
  readonly legacy?: ReadonlyArray<{ readonly path: string; readonly to: string; readonly deprecated: string; readonly sunset: string; readonly docs: string }>;
  /** The route's baseline from Memory, when that integration is there. */
  readonly baseline?: MigrationBaseline;
  readonly now?: () => number;
  /** Tests: the replica's name in the records (default: a random id). */
  readonly replicaId?: string;
}

/** A request the controller refuses: the message says what to change. */
export class MigrationError extends Error {
  constructor(
    message: string,
    readonly kind: 'not-found' | 'conflict' | 'invalid' | 'unavailable',
  ) {
    super(message);
  }
}

export interface StartInput {
  readonly route: string;
  readonly steps?: readonly number[];
  readonly stepSeconds?: number;
  readonly minRequests?: number;
  readonly autoAdvance?: boolean;
  readonly dryRun?: boolean;
}

const ACTIVE: ReadonlySet<MigrationRecord['state']> = new Set(['running', 'paused']);

export class MigrationController {
  readonly records: MigrationRecords;
  readonly replicaId: string;
  readonly #deps: ControllerDeps;
  readonly #now: () => number;
  readonly #tracking: TrackingQueue | undefined;
  #timer: NodeJS.Timeout | undefined;
  #leaseUntil = 0;
  /** What this replica wrote in the lease entry while it holds it. */
  #leaseValue: string | undefined;
  #fence = 0;
  #ticking: Promise<void> | undefined;
  /** Record updates of this process, one at a time (the store's check-and-write is not atomic across them). */
  #lock: Promise<unknown> = Promise.resolve();

  constructor(deps: ControllerDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
    this.replicaId = deps.replicaId ?? randomUUID().slice(0, 8);
    this.records = new MigrationRecords(deps.store, deps.log);
    this.#tracking = deps.tracker !== undefined ? new TrackingQueue(deps.tracker, deps.config, this, deps.log, this.#now, () => this.lease.held) : undefined;
  }

  start(): void {
    this.#timer = setInterval(() => void this.tick(), this.#deps.config.evaluationIntervalMs);
    this.#timer.unref();
    void this.tick();
  }

  async close(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#tracking?.close();
    await this.#ticking?.catch(() => {});
    // Let the lease go (marked released, only if still ours) so another replica takes over at its next tick.
    const held = this.#leaseValue;
    this.#leaseValue = undefined;
    this.#leaseUntil = 0;
    if (held !== undefined) await this.#deps.store.replaceEntry(LEASES, LEASE_ID, held, RELEASED, this.#deps.config.evaluationIntervalMs * 3).catch(() => false);
  }

  /** Resolves once the tracking calls being sent now are done (tests; shutdown). */
  async trackingSettled(): Promise<void> {
    await this.#tracking?.process();
  }

  /** Whether this replica holds the controller lease now (and its fencing token). */
  get lease(): { readonly held: boolean; readonly fence: number } {
    return { held: this.#leaseValue !== undefined && this.#leaseUntil > performance.now(), fence: this.#fence };
  }

  /** One evaluation (the timer calls it; tests call it directly). */
  tick(): Promise<void> {
    this.#ticking ??= this.#tick().finally(() => (this.#ticking = undefined));
    return this.#ticking;
  }

  async #tick(): Promise<void> {
    try {
      if (!(await this.#holdLease())) return;
      // This replica's own latest counts first, so the window is complete.
      await this.#deps.stats.flush();
      for (const record of await this.records.list()) {
        if (record.state === 'running') await this.#evaluate(record);
      }
      void this.#tracking?.process();
    } catch (err) {
      this.#deps.log.warn({ err: (err as Error).message }, 'migration controller: evaluation failed; retried next interval');
    }
  }

  async #holdLease(): Promise<boolean> {
    const { store, config } = this.#deps;
    const ttlMs = config.evaluationIntervalMs * 3;
    const shared = () => store.backend !== 'redis' || store.up;
    const started = performance.now();
    if (this.#leaseValue !== undefined) {
      // Renew: only while the entry still holds this replica's name.
      const renewed = await store.replaceEntry(LEASES, LEASE_ID, this.#leaseValue, this.#leaseValue, ttlMs);
      if (renewed && shared()) {
        this.#leaseUntil = started + ttlMs * 0.8;
        return true;
      }
      this.#deps.log.warn({ replica: this.replicaId, fence: this.#fence }, 'migration controller: this replica lost the lease');
      this.#leaseValue = undefined;
      this.#leaseUntil = 0;
    }
    const value = `${this.replicaId}:${randomUUID()}`;
    const taken = (await store.replaceEntry(LEASES, LEASE_ID, null, value, ttlMs)) || (await store.replaceEntry(LEASES, LEASE_ID, RELEASED, value, ttlMs));
    if (!taken || !shared()) return false;
    this.#fence = await store.increment(FENCE_KEY, FENCE_TTL_MS);
    this.#leaseValue = value;
    this.#leaseUntil = started + ttlMs * 0.8;
    this.#deps.log.info({ replica: this.replicaId, fence: this.#fence }, 'migration controller: this replica holds the lease');
    return true;
  }

  // --- record changes ---

  /**
   * Change a migration: `mutate` gets the latest stored record and returns the next one (or
   * undefined: no change); retried on a concurrent change. Returns the stored result.
   */
  async update(id: string, by: string, mutate: (r: MigrationRecord) => MigrationRecord | undefined, asController = false): Promise<MigrationRecord> {
    const run = async (): Promise<MigrationRecord> => {
      for (let attempt = 0; attempt < 5; attempt++) {
        const current = await this.records.get(id);
        if (current === undefined) throw new MigrationError(`no migration "${id}"`, 'not-found');
        const changed = mutate(structuredClone(current));
        if (changed === undefined) return current;
        const next: MigrationRecord = { ...changed, version: current.version + 1, updatedBy: by, updatedAt: this.#iso(), fence: asController ? this.#fence : current.fence };
        if (await this.records.put(next, current.version)) {
          this.#announce(next);
          return next;
        }
      }
      throw new MigrationError(`migration "${id}" keeps changing; try again`, 'conflict');
    };
    const result = this.#lock.then(run, run);
    this.#lock = result.catch(() => {});
    return result;
  }

  #announce(r: MigrationRecord): void {
    const percent = this.#deps.splits.state(r.route)?.weights.canary ?? 0;
    this.#deps.publish?.({ type: 'migration.step', id: r.id, route: r.route, state: r.state, percent, version: r.version }, `migration:${r.id}:${r.version}`);
  }

  #iso(): string {
    return new Date(this.#now()).toISOString();
  }

  /** Resolve a migration id, or a route's newest migration. */
  async find(idOrRoute: { readonly id?: string; readonly route?: string }): Promise<MigrationRecord> {
    const all = await this.records.list();
    const found = idOrRoute.id !== undefined ? all.find((m) => m.id === idOrRoute.id) : all.find((m) => m.route === idOrRoute.route);
    if (found === undefined) throw new MigrationError(idOrRoute.id !== undefined ? `no migration "${idOrRoute.id}"` : `no migration on route "${idOrRoute.route}"`, 'not-found');
    return found;
  }

  async startMigration(input: StartInput, by: string): Promise<MigrationRecord> {
    const { config, splits } = this.#deps;
    const split = splits.state(input.route);
    if (split === undefined) {
      const known = splits.all().map((s) => s.route.id);
      throw new MigrationError(`route "${input.route}" has no traffic split (routes with one: ${known.join(', ') || 'none'})`, 'not-found');
    }
    const entry = splits.all().find((e) => e.route.id === input.route)!;
    const steps = input.steps ?? config.steps;
    if (steps.some((s, i) => i > 0 && s <= steps[i - 1]!)) throw new MigrationError('steps must increase (e.g. 10, 25, 50, 100)', 'invalid');
    if (steps[steps.length - 1] !== 100) throw new MigrationError('the last step must be 100 (the canary becomes the new stable)', 'invalid');
    const active = (await this.records.list()).find((m) => m.route === input.route && ACTIVE.has(m.state));
    if (active !== undefined) throw new MigrationError(`route "${input.route}" already has migration ${active.id} (${active.state})`, 'conflict');
    const now = this.#iso();
    const record: MigrationRecord = {
      id: `mig-${input.route.toLowerCase().replace(/[^a-z0-9]+/g, '-').slice(0, 40)}-${Date.parse(now).toString(36)}-${randomUUID().slice(0, 4)}`,
      route: input.route,
      state: 'running',
      steps: steps.map((percent) => ({ percent, status: 'pending', failures: [] })),
      current: 0,
      stepSeconds: input.stepSeconds ?? config.stepSeconds,
      minRequests: input.minRequests ?? config.minRequests,
      autoAdvance: input.autoAdvance ?? true,
      startedFrom: split.weights.canary,
      ...(this.#legacyOf(entry.route.prefix) ?? {}),
      stableService: entry.route.service,
      canaryService: entry.split.canaryService,
      createdBy: by,
      createdAt: now,
      updatedBy: by,
      updatedAt: now,
      version: 0,
      fence: 0,
      ...(this.#tracking !== undefined ? { tracking: { backend: this.#deps.tracker!.backend, nextOpId: 0, ops: [] } } : {}),
    };
    if (input.dryRun === true) return record;
    // The first step's weights, then the record with that step running: the controller never sees it half-made.
    const after = await this.#shiftTo(record, 0);
    Object.assign(record.steps[0]!, { status: 'running', startedAt: this.#iso(), splitVersion: after.version });
    enqueue(record, 'open_issue');
    if (!(await this.records.put(record, null))) throw new MigrationError('a migration with this id exists; try again', 'conflict');
    this.#announce(record);
    this.#deps.log.info({ migration: record.id, route: record.route, steps, by }, 'migration started');
    // Tracking calls are sent by the lease holder (its next tick), never on this path.
    return record;
  }

  /** The legacy endpoints served through `prefix`, and the others, when any are. */
  #legacyOf(prefix: string): Pick<MigrationRecord, 'legacy'> | undefined {
    const all = this.#deps.legacy ?? [];
    const under = (to: string) => to === prefix || to.startsWith(`${prefix}/`);
    const removed = all.filter((e) => under(e.to)).map((e) => e.path);
    if (removed.length === 0) return undefined;
    return { legacy: { removed, kept: all.filter((e) => !under(e.to)).map((e) => ({ path: e.path, to: e.to, deprecated: e.deprecated, sunset: e.sunset, docs: e.docs })) } };
  }

  #shiftTo(record: MigrationRecord, index: number) {
    const step = record.steps[index]!;
    return this.#deps.splits
      .shift(record.route, { stable: 100 - step.percent, canary: step.percent }, `migration:${record.id}`, `migration step ${index + 1}/${record.steps.length}: ${step.percent}%`)
      .then((r) => r.after);
  }

  /** Shift to the current step's weight and open its window, when the step is still `from` (pending, or awaiting approval). */
  async #enterStep(id: string, by: string, asController: boolean, from: 'pending' | 'awaiting_approval'): Promise<MigrationRecord> {
    const record = await this.records.get(id);
    if (record === undefined) throw new MigrationError(`no migration "${id}"`, 'not-found');
    const index = record.current;
    if (record.state !== 'running' || record.steps[index]!.status !== from) {
      throw new MigrationError(`migration ${id} has no step ${from === 'pending' ? 'to start' : 'waiting for approval'} (state ${record.state}, step ${index + 1} ${record.steps[index]!.status})`, 'conflict');
    }
    const after = await this.#shiftTo(record, index);
    return this.update(
      id,
      by,
      (r) => {
        const s = r.steps[r.current]!;
        if (r.current !== index || s.status !== from) return undefined;
        Object.assign(s, { status: 'running', startedAt: this.#iso(), splitVersion: after.version });
        enqueue(r, 'sync_issue');
        return r;
      },
      asController,
    );
  }

  async #evaluate(record: MigrationRecord): Promise<void> {
    const step = record.steps[record.current]!;
    if (step.status === 'pending') {
      await this.#enterStep(record.id, `controller:${this.replicaId}`, true, 'pending');
      return;
    }
    if (step.status !== 'running' || step.splitVersion === undefined) return;
    const { config } = this.#deps;
    const { canary, stable } = await this.#deps.stats.figures(record.route, step.splitVersion);
    const baseline = await this.#deps.baseline?.baseline(record.route).catch(() => undefined);
    const previous = [...record.steps.slice(0, record.current)].reverse().find((s) => s.stable !== undefined && s.stable.requests > 0)?.stable;
    const reference = referenceOf(stable, record.minRequests, baseline, previous);
    // A handful of requests judges nothing: the gates apply from min(minRequests, 20) canary requests on.
    const enough = canary.requests >= Math.max(1, Math.min(record.minRequests, 20));
    const failures = enough ? failedGates(canary, reference, config.gates) : [];
    const by = `controller:${this.replicaId}`;
    const m = this.#deps.metrics;
    m?.migrationCanaryErrorRatio.set({ route: record.route }, canary.errorRate);
    m?.migrationCanaryP99.set({ route: record.route }, canary.p99Ms / 1000);
    m?.migrationCanaryPercent.set({ route: record.route }, failures.length > 0 ? 0 : step.percent);
    if (failures.length > 0) {
      for (const f of failures) m?.migrationGateFailures.inc({ route: record.route, gate: f.gate });
      await this.#deps.splits.shift(record.route, { stable: 100, canary: 0 }, `migration:${record.id}`, `rollback: ${failures.map((f) => f.message).join('; ')}`);
      await this.update(
        record.id,
        by,
        (r) => {
          if (r.state !== 'running' || r.current !== record.current) return undefined;
          Object.assign(r.steps[r.current]!, { status: 'failed', endedAt: this.#iso(), canary, stable, reference: reference?.source, failures });
          r.state = 'rolled_back';
          r.outcome = { reason: `gate failed at ${r.steps[r.current]!.percent}%: ${failures.map((f) => f.message).join('; ')}`, at: this.#iso(), failures, canary, stable };
          enqueue(r, 'sync_issue');
          enqueue(r, 'comment', rollbackComment(r, canary, stable, failures));
          enqueue(r, 'label', config.tracking.rollbackLabel);
          return r;
        },
        true,
      );
      this.#deps.log.warn({ migration: record.id, route: record.route, failures, canary, stable }, 'migration rolled back: a gate failed');
      return;
    }
    const elapsedMs = this.#now() - Date.parse(step.startedAt ?? record.updatedAt);
    const passed = elapsedMs >= record.stepSeconds * 1000 && canary.requests >= record.minRequests;
    const last = record.current === record.steps.length - 1;
    const next = await this.update(
      record.id,
      by,
      (r) => {
        if (r.state !== 'running' || r.current !== record.current || r.steps[r.current]!.status !== 'running') return undefined;
        const s = r.steps[r.current]!;
        Object.assign(s, { canary, stable, ...(reference !== undefined ? { reference: reference.source } : {}) });
        if (!passed) return r;
        Object.assign(s, { status: 'passed', endedAt: this.#iso() });
        enqueue(r, 'sync_issue');
        enqueue(r, 'comment', stepComment(r, s));
        if (last) {
          r.state = 'completed';
          enqueue(r, 'pull_request');
        } else {
          r.current += 1;
          r.steps[r.current]!.status = r.autoAdvance ? 'pending' : 'awaiting_approval';
        }
        return r;
      },
      true,
    );
    if (passed && next.state === 'running' && next.steps[next.current]!.status === 'pending') await this.#enterStep(next.id, by, true, 'pending');
  }

  // --- admin changes (any replica) ---

  approve(id: string, by: string): Promise<MigrationRecord> {
    return this.#enterStep(id, by, false, 'awaiting_approval');
  }

  pause(id: string, by: string): Promise<MigrationRecord> {
    return this.update(id, by, (r) => {
      if (r.state !== 'running') throw new MigrationError(`migration ${id} is ${r.state}, not running`, 'conflict');
      r.state = 'paused';
      enqueue(r, 'sync_issue');
      return r;
    });
  }

  resume(id: string, by: string): Promise<MigrationRecord> {
    return this.update(id, by, (r) => {
      if (r.state !== 'paused') throw new MigrationError(`migration ${id} is ${r.state}, not paused`, 'conflict');
      r.state = 'running';
      enqueue(r, 'sync_issue');
      return r;
    });
  }

  /** Back to 0% now (rollback) or to where it started (abort); the record says who and why. */
  async stop(id: string, by: string, how: 'rollback' | 'abort', reason: string): Promise<MigrationRecord> {
    const record = await this.find({ id });
    if (!ACTIVE.has(record.state)) throw new MigrationError(`migration ${id} is already ${record.state}`, 'conflict');
    const canary = how === 'rollback' ? 0 : record.startedFrom;
    await this.#deps.splits.shift(record.route, { stable: 100 - canary, canary }, `migration:${record.id}`, `${how} by ${by}: ${reason}`);
    this.#deps.metrics?.migrationCanaryPercent.set({ route: record.route }, 0);
    return this.update(id, by, (r) => {
      if (!ACTIVE.has(r.state)) return undefined;
      const s = r.steps[r.current]!;
      if (s.status === 'running' || s.status === 'awaiting_approval' || s.status === 'pending') Object.assign(s, { status: how === 'rollback' ? 'failed' : 'skipped', endedAt: this.#iso() });
      r.state = how === 'rollback' ? 'rolled_back' : 'aborted';
      r.outcome = { reason: `${how} by ${by}: ${reason}`, at: this.#iso(), failures: [], ...(s.canary ? { canary: s.canary } : {}), ...(s.stable ? { stable: s.stable } : {}) };
      enqueue(r, 'sync_issue');
      enqueue(r, 'comment', `**${how === 'rollback' ? 'Rolled back' : 'Aborted'}** by ${by} at step ${r.current + 1} (${s.percent}%): ${reason}`);
      if (how === 'rollback') enqueue(r, 'label', this.#deps.config.tracking.rollbackLabel);
      return r;
    });
  }
}

