import type { Registry } from 'prom-client';
import type { Counter } from 'prom-client';
import { histogramQuantile } from '../../../src/metrics/quantile.js';
import type { LoggedDecision } from '../../../src/routing/decision-log.js';
import type { UpstreamToolCaller } from '../../clients/types.js';
import {
  baselineObservation,
  clip,
  ENTITY_TYPES,
  entityNames,
  foldObservations,
  graphSchema,
  healthObservation,
  hourOfWeek,
  rememberedBaselines,
  rememberedHealth,
  type Baseline,
  type Graph,
  type RememberedHealth,
} from './graph.js';

/*
 * The gateway's operational memory (issue 15): events queue here and are written in batches
 * through the memory MCP server's tools (create_entities, add_observations, create_relations,
 * delete_observations), never on the request path. Listeners (the event bus, the breakers,
 * the decision log) only push into a bounded queue or bump a counter; a timer (every
 * flushSeconds) or a full batch (flushEvents) starts a flush in the background. When the
 * queue is full new events are dropped and counted; when the memory server is down the batch
 * stays queued (bounded the same way) and is retried at the next flush.
 *
 * The graph stays bounded: each entity keeps at most maxObservationsPerEntity observations;
 * past it the oldest half is folded into one summary observation (./graph.ts). The recorder
 * mirrors what it wrote (read back once at start) so it never reads the graph again.
 */

export type RecorderEvent =
  | { readonly kind: 'health'; readonly at: number; readonly service: string; readonly from: string; readonly to: string; readonly cause?: string }
  | { readonly kind: 'breaker'; readonly at: number; readonly service: string; readonly to: string }
  | { readonly kind: 'shift'; readonly at: number; readonly route: string; readonly version: number; readonly canary: number }
  | { readonly kind: 'model'; readonly at: number; readonly id: string; readonly role: 'active' | 'shadow'; readonly evaluation?: string }
  | { readonly kind: 'observe'; readonly entity: string; readonly entityType: string; readonly text: string }
  | { readonly kind: 'relation'; readonly from: string; readonly fromType: string; readonly to: string; readonly toType: string; readonly relationType: string }
  | { readonly kind: 'replace'; readonly entity: string; readonly entityType: string; readonly prefix: string; readonly text: string };

export interface RecorderSettings {
  readonly server: string;
  readonly flushSeconds: number;
  readonly flushEvents: number;
  readonly queueSize: number;
  readonly maxObservationsPerEntity: number;
  readonly principalUsage: boolean;
  readonly lowConfidence: number;
}

/** Model facts the recorder follows (the routing model manager's status). */
export interface ModelStatus {
  readonly active: { readonly id: string; readonly evaluation: { readonly accuracy: number; readonly macroF1: number; readonly examples: number } | null };
  readonly shadow: { readonly id: string } | null;
}

export interface RecorderDeps {
  readonly caller: UpstreamToolCaller;
  readonly settings: RecorderSettings;
  /** The gateway's registry: interval summaries come from gateway_service_requests and gateway_upstream_duration_seconds. */
  readonly registry?: Registry;
  readonly counter?: Pick<Counter<'outcome'>, 'inc'>;
  readonly clock?: () => number;
  readonly log?: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
  readonly modelStatus?: () => ModelStatus;
  /** Topology written once at start: route -> services, and the auto-routed routes the model decides. */
  readonly topology?: {
    readonly routes: ReadonlyArray<{ readonly id: string; readonly prefix?: string; readonly services: readonly string[] }>;
    readonly modelRoutes: readonly string[];
  };
  /** Timers (tests drive flush() themselves with false). */
  readonly timers?: boolean;
}

/** Distinct principals counted per interval at most (the rest as one "other"). */
const MAX_PRINCIPALS = 200;

interface ServiceSample {
  total: number;
  failed: number;
  buckets: Map<number, number>;
}

interface DecisionAggregate {
  total: number;
  auto: number;
  explicit: number;
  low: number;
  perService: Map<string, number>;
  principals: Map<string, number>;
}

const emptyAggregate = (): DecisionAggregate => ({ total: 0, auto: 0, explicit: 0, low: 0, perService: new Map(), principals: new Map() });

export class MemoryRecorder {
  readonly #caller: UpstreamToolCaller;
  readonly #s: RecorderSettings;
  readonly #deps: RecorderDeps;
  readonly #clock: () => number;
  readonly #queue: RecorderEvent[] = [];
  /** Observations per entity as written (mirror of the graph, bounded by the cap). */
  readonly #mirror = new Map<string, string[]>();
  /** Entities known to exist in the graph (forgotten after a failed write: someone may have deleted one). */
  readonly #exists = new Set<string>();
  readonly #baselines = new Map<string, Map<number, Baseline>>();
  readonly #health = new Map<string, string>();
  #decisions = emptyAggregate();
  #lastSample: Map<string, ServiceSample> | undefined;
  #intervalStart: number;
  #lastModel: string | undefined;
  #lastShadow: string | null | undefined;
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;
  #scheduled = false;
  #loaded = false;

  constructor(deps: RecorderDeps) {
    this.#deps = deps;
    this.#caller = deps.caller;
    this.#s = deps.settings;
    this.#clock = deps.clock ?? Date.now;
    this.#intervalStart = this.#clock();
  }

  // --- listeners: O(1), never wait ---

  /** Queue an event (dropped and counted when the queue is full). */
  record(event: RecorderEvent): void {
    if (this.#queue.length >= this.#s.queueSize) {
      this.#deps.counter?.inc({ outcome: 'dropped' });
      return;
    }
    this.#queue.push(event);
    this.#deps.counter?.inc({ outcome: 'queued' });
    if (this.#queue.length >= this.#s.flushEvents && this.#flushing === undefined && !this.#scheduled && this.#deps.timers !== false) {
      // Never in the caller's tick (a breaker opening inside a request): on the next turn of the loop.
      this.#scheduled = true;
      setImmediate(() => {
        this.#scheduled = false;
        void this.flush();
      }).unref();
    }
  }

  /** A service's probe status changed (event bus `service.health`). */
  healthChanged(service: string, to: string, cause?: string): void {
    const from = this.#health.get(service) ?? 'unknown';
    if (from === to) return;
    this.#health.set(service, to);
    this.record({ kind: 'health', at: this.#clock(), service, from, to, ...(cause !== undefined ? { cause } : {}) });
  }

  /** A host breaker changed state: openings and recoveries are kept. */
  breakerChanged(service: string, to: string): void {
    if (to === 'open' || to === 'closed') this.record({ kind: 'breaker', at: this.#clock(), service, to });
  }

  trafficShifted(route: string, version: number, canary: number): void {
    this.record({ kind: 'shift', at: this.#clock(), route, version, canary });
  }

  /** One routing decision (from the decision log): counted into the interval's aggregate. */
  decided(d: Pick<LoggedDecision, 'service' | 'reason' | 'confidence' | 'principal'>): void {
    const a = this.#decisions;
    a.total += 1;
    if (d.reason === 'model') a.auto += 1;
    else if (d.reason === 'override') a.explicit += 1;
    if (d.reason !== 'override' && (d.reason !== 'model' || d.confidence < this.#s.lowConfidence)) a.low += 1;
    const service = d.service ?? 'none';
    a.perService.set(service, (a.perService.get(service) ?? 0) + 1);
    if (this.#s.principalUsage && d.principal !== undefined) {
      const key = a.principals.has(d.principal) || a.principals.size < MAX_PRINCIPALS ? d.principal : 'other';
      a.principals.set(key, (a.principals.get(key) ?? 0) + 1);
    }
  }

  // --- lifecycle ---

  /** The flush timer, after the first metrics sample (the first interval counts from now). Never waits for the server. */
  async start(): Promise<void> {
    if (this.#deps.registry !== undefined && this.#lastSample === undefined) this.#lastSample = sampleServices(await this.#deps.registry.getMetricsAsJSON());
    this.#intervalStart = this.#clock();
    if (this.#deps.timers === false) return;
    this.#timer = setInterval(() => void this.flush(), this.#s.flushSeconds * 1000);
    this.#timer.unref();
  }

  /** Stop the timer and write what is queued (best effort: the caller bounds how long it waits). */
  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    await this.flush().catch(() => undefined);
  }

  get queued(): number {
    return this.#queue.length;
  }

  /** Baselines (p50/p99/error rate per service by hour of week), as remembered and updated. */
  baseline(service: string, how: number): Baseline | undefined {
    return this.#baselines.get(service)?.get(how);
  }

  /**
   * Read the graph back (once): the mirror, the baselines, and the last health states, which
   * the caller shows until the first probe decides. Undefined when the server is not ready.
   */
  async load(): Promise<{ health: RememberedHealth[]; baselines: number } | undefined> {
    if (!this.#caller.isReady(this.#s.server)) return undefined;
    const result = await this.#caller.callTool(this.#s.server, 'read_graph', {});
    if (result.isError === true) throw new Error('memory server refused read_graph');
    const graph: Graph = graphSchema.parse(result.structuredContent ?? JSON.parse(textOf(result)));
    // Oldest first by their leading time (the server appends a fold's summary last; it is the oldest).
    for (const e of graph.entities) {
      this.#mirror.set(e.name, [...e.observations].sort((a, b) => leadingTime(a).localeCompare(leadingTime(b))));
      this.#exists.add(e.name);
    }
    for (const [service, byHour] of rememberedBaselines(graph)) this.#baselines.set(service, byHour);
    // The model last recorded active: the same one after a restart is no promotion.
    let lastActive = '';
    for (const e of graph.entities) {
      if (e.entityType !== ENTITY_TYPES.model) continue;
      for (const o of e.observations) {
        const at = leadingTime(o);
        if (o.includes(' promoted active') && at > lastActive) {
          lastActive = at;
          this.#lastModel = e.name.slice('routing-model:'.length);
        }
      }
    }
    const health = rememberedHealth(graph);
    for (const h of health) if (!this.#health.has(h.service)) this.#health.set(h.service, h.status);
    this.#loaded = true;
    return { health, baselines: [...this.#baselines.values()].reduce((n, m) => n + m.size, 0) };
  }

  get loaded(): boolean {
    return this.#loaded;
  }

  /** Summarise the interval, then write everything queued. Concurrent callers share one flush. */
  flush(): Promise<void> {
    this.#flushing ??= this.#flush().finally(() => (this.#flushing = undefined));
    return this.#flushing;
  }

  async #flush(): Promise<void> {
    await this.#summariseInterval();
    if (this.#queue.length === 0) return;
    if (!this.#caller.isReady(this.#s.server)) {
      this.#deps.counter?.inc({ outcome: 'failed' }, this.#queue.length);
      return; // kept queued (bounded); retried at the next flush
    }
    const batch = this.#queue.splice(0, this.#queue.length);
    try {
      await this.#write(batch);
      this.#deps.counter?.inc({ outcome: 'written' }, batch.length);
    } catch (err) {
      this.#deps.counter?.inc({ outcome: 'failed' }, batch.length);
      // An entity may have been deleted behind our back (an agent with the memory write tools):
      // create them again next time (create_entities skips those that exist).
      this.#exists.clear();
      this.#deps.log?.warn({ err: err instanceof Error ? err.message : String(err), events: batch.length }, 'memory: a batch could not be written; kept for the next flush');
      // Back to the front, as far as the queue has room (the rest is dropped, counted).
      const room = Math.max(0, this.#s.queueSize - this.#queue.length);
      if (batch.length > room) this.#deps.counter?.inc({ outcome: 'dropped' }, batch.length - room);
      this.#queue.unshift(...batch.slice(0, room));
    }
  }

  /** The interval's per-service summary, baselines, routing aggregate and model changes, as events. */
  async #summariseInterval(): Promise<void> {
    const now = this.#clock();
    const start = this.#intervalStart;
    this.#intervalStart = now;
    const iso = new Date(now).toISOString();
    const seconds = Math.max(1, Math.round((now - start) / 1000));
    if (this.#deps.registry !== undefined) {
      const sample = sampleServices(await this.#deps.registry.getMetricsAsJSON());
      const previous = this.#lastSample;
      this.#lastSample = sample;
      if (previous !== undefined) {
        for (const [service, cur] of sample) {
          const prev = previous.get(service);
          const requests = cur.total - (prev?.total ?? 0);
          if (requests <= 0) continue;
          const errorRate = (cur.failed - (prev?.failed ?? 0)) / requests;
          const diff = [...cur.buckets].map(([le, c]) => [le, c - (prev?.buckets.get(le) ?? 0)] as const);
          const p50 = histogramQuantile(0.5, diff);
          const p99 = histogramQuantile(0.99, diff);
          const ms = (v: number | null) => (v === null ? '-' : `${Math.round(v * 1e5) / 100}ms`);
          this.record({
            kind: 'observe',
            entity: entityNames.intervals(service),
            entityType: ENTITY_TYPES.intervals,
            text: `${iso} interval seconds=${seconds} requests=${requests} errorRate=${round4(errorRate)} p50=${ms(p50)} p99=${ms(p99)}`,
          });
          this.#relate(entityNames.intervals(service), ENTITY_TYPES.intervals, entityNames.service(service), ENTITY_TYPES.service, 'summarises');
          this.#updateBaseline(service, hourOfWeek(start), p50, p99, errorRate);
        }
      }
    }
    const a = this.#decisions;
    this.#decisions = emptyAggregate();
    if (a.total > 0) {
      const per = [...a.perService].map(([s, n]) => `${s}:${n}`).join(',');
      this.record({
        kind: 'observe',
        entity: entityNames.decisions(),
        entityType: ENTITY_TYPES.decisions,
        text: `${iso} decisions seconds=${seconds} total=${a.total} auto=${a.auto} explicit=${a.explicit} lowConfidenceShare=${round4(a.low / a.total)} perService=${per}`,
      });
      for (const [hash, n] of a.principals) {
        this.record({ kind: 'observe', entity: entityNames.principal(hash), entityType: ENTITY_TYPES.principal, text: `${iso} usage seconds=${seconds} requests=${n}` });
      }
    }
    const status = this.#deps.modelStatus?.();
    if (status !== undefined) {
      if (status.active.id !== this.#lastModel) {
        const e = status.active.evaluation;
        this.record({
          kind: 'model',
          at: now,
          id: status.active.id,
          role: 'active',
          ...(e ? { evaluation: `accuracy=${round4(e.accuracy)} macroF1=${round4(e.macroF1)} examples=${e.examples}` } : {}),
        });
        for (const route of this.#deps.topology?.modelRoutes ?? []) this.#relate(entityNames.model(status.active.id), ENTITY_TYPES.model, entityNames.route(route), ENTITY_TYPES.route, 'decides');
        this.#lastModel = status.active.id;
      }
      const shadow = status.shadow?.id ?? null;
      if (shadow !== this.#lastShadow) {
        if (shadow !== null) this.record({ kind: 'model', at: now, id: shadow, role: 'shadow' });
        this.#lastShadow = shadow;
      }
    }
  }

  /** Topology (routes and the services they route to): static facts, written once (the server keeps one copy). */
  recordTopology(): void {
    for (const r of this.#deps.topology?.routes ?? []) {
      // A timeless fact: the server keeps one copy however often it is written.
      if (r.prefix !== undefined) this.record({ kind: 'observe', entity: entityNames.route(r.id), entityType: ENTITY_TYPES.route, text: `prefix=${r.prefix} services=${r.services.join(',')}` });
      for (const s of r.services) this.#relate(entityNames.route(r.id), ENTITY_TYPES.route, entityNames.service(s), ENTITY_TYPES.service, 'routes_to');
    }
  }

  #relate(from: string, fromType: string, to: string, toType: string, relationType: string): void {
    this.record({ kind: 'relation', from, fromType, to, toType, relationType });
  }

  #updateBaseline(service: string, how: number, p50: number | null, p99: number | null, errorRate: number): void {
    let byHour = this.#baselines.get(service);
    if (byHour === undefined) this.#baselines.set(service, (byHour = new Map()));
    const b = byHour.get(how);
    // A running mean per hour of week, weighted towards recent weeks (the weight stops growing at 8).
    const w = b === undefined ? 1 : 1 / Math.min(b.n + 1, 8);
    const mix = (old: number | null | undefined, v: number | null) => (v === null ? (old ?? null) : old === null || old === undefined ? v : old + (v - old) * w);
    const next: Baseline = { p50: mix(b?.p50, p50), p99: mix(b?.p99, p99), errorRate: b === undefined ? errorRate : b.errorRate + (errorRate - b.errorRate) * w, n: (b?.n ?? 0) + 1 };
    byHour.set(how, next);
    this.record({ kind: 'replace', entity: entityNames.baseline(service), entityType: ENTITY_TYPES.baseline, prefix: `how=${how} `, text: baselineObservation(how, next) });
  }

  /** One batch as tool calls: entities, observations (replacements deleting the old line), relations, then folding. */
  async #write(batch: readonly RecorderEvent[]): Promise<void> {
    const entities = new Map<string, string>();
    const added = new Map<string, string[]>();
    const deleted = new Map<string, string[]>();
    const relations = new Map<string, { from: string; to: string; relationType: string }>();
    const observe = (entity: string, type: string, text: string) => {
      entities.set(entity, type);
      const list = added.get(entity) ?? [];
      const t = clip(text);
      // Equal lines in one batch (two hosts' breakers opening in the same millisecond) count once, with how many.
      const same = list.findIndex((x) => x === t || x.startsWith(`${t} x`));
      if (same >= 0) list[same] = `${t} x${Number(/ x(\d+)$/.exec(list[same]!)?.[1] ?? '1') + 1}`;
      else list.push(t);
      added.set(entity, list);
    };
    for (const e of batch) {
      switch (e.kind) {
        case 'health':
          observe(entityNames.service(e.service), ENTITY_TYPES.service, healthObservation(e.at, e.from, e.to, e.cause));
          break;
        case 'breaker':
          observe(entityNames.service(e.service), ENTITY_TYPES.service, `${new Date(e.at).toISOString()} breaker ${e.to === 'open' ? 'opened' : 'closed'}`);
          break;
        case 'shift':
          observe(entityNames.traffic(e.route), ENTITY_TYPES.traffic, `${new Date(e.at).toISOString()} shift version=${e.version} canary=${e.canary}`);
          entities.set(entityNames.route(e.route), ENTITY_TYPES.route);
          relations.set(`${entityNames.traffic(e.route)} moves`, { from: entityNames.traffic(e.route), to: entityNames.route(e.route), relationType: 'moves' });
          break;
        case 'model':
          observe(entityNames.model(e.id), ENTITY_TYPES.model, `${new Date(e.at).toISOString()} ${e.role === 'active' ? 'promoted active' : 'set shadow'}${e.evaluation ? ` ${e.evaluation}` : ''}`);
          break;
        case 'observe':
          observe(e.entity, e.entityType, e.text);
          break;
        case 'replace': {
          observe(e.entity, e.entityType, e.text);
          const old = (this.#mirror.get(e.entity) ?? []).filter((o) => o.startsWith(e.prefix) && o !== e.text);
          if (old.length > 0) deleted.set(e.entity, [...(deleted.get(e.entity) ?? []), ...old]);
          const pending = added.get(e.entity)!;
          // Only the newest replacement of a key in one batch.
          added.set(e.entity, [...pending.filter((o) => !o.startsWith(e.prefix)), clip(e.text)]);
          break;
        }
        case 'relation':
          entities.set(e.from, e.fromType);
          entities.set(e.to, e.toType);
          relations.set(`${e.from} ${e.relationType} ${e.to}`, { from: e.from, to: e.to, relationType: e.relationType });
          break;
      }
    }
    const fresh = [...entities].filter(([name]) => !this.#exists.has(name));
    if (fresh.length > 0) {
      await this.#call('create_entities', { entities: fresh.map(([name, entityType]) => ({ name, entityType, observations: [] })) });
      for (const [name] of fresh) {
        this.#exists.add(name);
        if (!this.#mirror.has(name)) this.#mirror.set(name, []);
      }
    }
    if (deleted.size > 0) {
      await this.#call('delete_observations', { deletions: [...deleted].map(([entityName, observations]) => ({ entityName, observations })) });
      for (const [name, gone] of deleted) this.#mirror.set(name, this.#mirror.get(name)!.filter((o) => !gone.includes(o)));
    }
    if (added.size > 0) {
      await this.#call('add_observations', { observations: [...added].map(([entityName, contents]) => ({ entityName, contents })) });
      for (const [name, contents] of added) {
        const list = this.#mirror.get(name)!;
        for (const c of contents) if (!list.includes(c)) list.push(c);
      }
    }
    if (relations.size > 0) await this.#call('create_relations', { relations: [...relations.values()] });
    await this.#fold([...added.keys()]);
  }

  /** Entities over the cap: the oldest half folded into one summary observation. */
  async #fold(names: readonly string[]): Promise<void> {
    const cap = this.#s.maxObservationsPerEntity;
    const deletions: Array<{ entityName: string; observations: string[] }> = [];
    const additions: Array<{ entityName: string; contents: string[] }> = [];
    for (const name of names) {
      const list = this.#mirror.get(name)!;
      // Baselines hold one line per hour of week (168 at most), replaced in place: never folded.
      if (list.length <= cap || name.startsWith('baseline:')) continue;
      const oldest = list.slice(0, list.length - Math.floor(cap / 2) + 1);
      const summary = foldObservations(oldest);
      deletions.push({ entityName: name, observations: oldest });
      additions.push({ entityName: name, contents: [summary] });
    }
    if (deletions.length === 0) return;
    // Add the summary first: a failure in between leaves more, never less.
    await this.#call('add_observations', { observations: additions });
    await this.#call('delete_observations', { deletions });
    for (let i = 0; i < deletions.length; i++) {
      const { entityName, observations } = deletions[i]!;
      const list = this.#mirror.get(entityName)!;
      const rest = list.filter((o) => !observations.includes(o));
      const summary = additions[i]!.contents[0]!;
      this.#mirror.set(entityName, [summary, ...rest.filter((o) => o !== summary)]);
    }
  }

  async #call(tool: string, args: Record<string, unknown>): Promise<void> {
    const result = await this.#caller.callTool(this.#s.server, tool, args);
    if (result.isError === true) throw new Error(`memory server: ${tool} failed: ${textOf(result).slice(0, 200)}`);
  }
}

function textOf(result: { content?: unknown }): string {
  const content = Array.isArray(result.content) ? result.content : [];
  return content.map((c: { type?: unknown; text?: unknown }) => (c.type === 'text' && typeof c.text === 'string' ? c.text : '')).join('');
}

/** The leading ISO time of an observation ('' for timeless facts: they sort first). */
function leadingTime(observation: string): string {
  const first = observation.slice(0, observation.indexOf(' ') >>> 0);
  return /^\d{4}-\d\d-\d\dT/.test(first) ? first : '';
}

function round4(n: number): number {
  return Math.round(n * 1e4) / 1e4;
}

type Json = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

/** Per service: forwarded requests, failures (5xx, timeout, unreachable, error, circuit_open), upstream latency buckets. */
function sampleServices(json: Json): Map<string, ServiceSample> {
  const out = new Map<string, ServiceSample>();
  const of = (s: string) => {
    let v = out.get(s);
    if (v === undefined) out.set(s, (v = { total: 0, failed: 0, buckets: new Map() }));
    return v;
  };
  for (const metric of json) {
    if (metric.name === 'gateway_service_requests') {
      for (const v of metric.values) {
        const status = String(v.labels.status ?? '');
        const s = of(String(v.labels.service));
        s.total += v.value;
        if (status.startsWith('5') || status === 'timeout' || status === 'unreachable' || status === 'error' || status === 'circuit_open') s.failed += v.value;
      }
    } else if (metric.name === 'gateway_upstream_duration_seconds') {
      for (const v of metric.values) {
        if ((v as { metricName?: string }).metricName !== 'gateway_upstream_duration_seconds_bucket') continue;
        const le = v.labels.le === '+Inf' ? Infinity : Number(v.labels.le);
        const s = of(String(v.labels.service));
        s.buckets.set(le, (s.buckets.get(le) ?? 0) + v.value);
      }
    }
  }
  return out;
}
