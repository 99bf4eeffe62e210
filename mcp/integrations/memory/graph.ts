import { z } from 'zod';

/*
 * How the gateway's operational memory is laid out in the memory server's knowledge graph
 * (@modelcontextprotocol/server-memory: entities with observations, typed relations), and how
 * it is kept bounded. One place for the names and the observation forms, so the recorder that
 * writes them and the warm start that reads them back cannot drift apart.
 *
 * Observations are short lines "<ISO time> <kind> <key=value ...>" (the time makes each one
 * distinct: the server drops an observation equal to one the entity has). Static facts (a
 * route's service) carry no time, so writing them again at each start adds nothing.
 */

export const ENTITY_TYPES = {
  service: 'gateway-service',
  intervals: 'gateway-service-intervals',
  baseline: 'gateway-service-baseline',
  route: 'gateway-route',
  model: 'gateway-routing-model',
  traffic: 'gateway-traffic-shift',
  decisions: 'gateway-routing-decisions',
  principal: 'gateway-principal-usage',
} as const;

export const entityNames = {
  service: (s: string) => `service:${s}`,
  intervals: (s: string) => `service:${s}:intervals`,
  baseline: (s: string) => `baseline:${s}`,
  route: (r: string) => `route:${r}`,
  model: (id: string) => `routing-model:${id}`,
  traffic: (r: string) => `traffic:${r}`,
  decisions: () => 'routing-decisions',
  principal: (hash: string) => `principal:${hash}`,
};

/** Longest observation written (the file bound below counts on it). */
export const MAX_OBSERVATION_CHARS = 320;

/** What the memory server answers for read_graph / open_nodes (parsed, never cast). */
export const graphSchema = z.object({
  entities: z.array(z.object({ name: z.string(), entityType: z.string(), observations: z.array(z.string()) })),
  relations: z.array(z.object({ from: z.string(), to: z.string(), relationType: z.string() })),
});
export type Graph = z.infer<typeof graphSchema>;

export function clip(text: string): string {
  return text.length <= MAX_OBSERVATION_CHARS ? text : `${text.slice(0, MAX_OBSERVATION_CHARS - 1)}…`;
}

/** Hour of the week (0 = Monday 00:00-01:00 UTC .. 167). */
export function hourOfWeek(ms: number): number {
  const d = new Date(ms);
  return ((d.getUTCDay() + 6) % 7) * 24 + d.getUTCHours();
}

const HEALTH = /^(\S+) health (\w+)->(up|down)\b/;
const BASELINE = /^how=(\d{1,3}) p50=([\d.]+|-) p99=([\d.]+|-) err=([\d.]+) n=(\d+)$/;

export interface RememberedHealth {
  readonly service: string;
  readonly status: 'up' | 'down';
  readonly at: string;
}

export interface Baseline {
  /** Seconds (null: no latency sample). */
  p50: number | null;
  p99: number | null;
  errorRate: number;
  /** Intervals folded into it. */
  n: number;
}

export function healthObservation(at: number, from: string, to: string, cause: string | undefined): string {
  return clip(`${new Date(at).toISOString()} health ${from}->${to}${cause !== undefined ? ` cause=${cause.replace(/\s+/g, '_')}` : ''}`);
}

export function baselineObservation(how: number, b: Baseline): string {
  const f = (v: number | null) => (v === null ? '-' : String(Math.round(v * 1e6) / 1e6));
  return `how=${how} p50=${f(b.p50)} p99=${f(b.p99)} err=${Math.round(b.errorRate * 1e4) / 1e4} n=${b.n}`;
}

/** The last health state of each service entity in `graph` (latest time wins). */
export function rememberedHealth(graph: Graph): RememberedHealth[] {
  const out: RememberedHealth[] = [];
  for (const e of graph.entities) {
    if (e.entityType !== ENTITY_TYPES.service || !e.name.startsWith('service:')) continue;
    let last: RememberedHealth | undefined;
    for (const o of e.observations) {
      const m = HEALTH.exec(o);
      if (m === null || Number.isNaN(Date.parse(m[1]!))) continue;
      if (last === undefined || m[1]! >= last.at) last = { service: e.name.slice('service:'.length), status: m[3] as 'up' | 'down', at: m[1]! };
    }
    if (last !== undefined) out.push(last);
  }
  return out;
}

/** Baselines per service and hour of week found in `graph`. */
export function rememberedBaselines(graph: Graph): Map<string, Map<number, Baseline>> {
  const out = new Map<string, Map<number, Baseline>>();
  for (const e of graph.entities) {
    if (e.entityType !== ENTITY_TYPES.baseline || !e.name.startsWith('baseline:')) continue;
    const byHour = new Map<number, Baseline>();
    for (const o of e.observations) {
      const m = BASELINE.exec(o);
      if (m === null) continue;
      const how = Number(m[1]);
      if (how > 167) continue;
      byHour.set(how, { p50: m[2] === '-' ? null : Number(m[2]), p99: m[3] === '-' ? null : Number(m[3]), errorRate: Number(m[4]), n: Number(m[5]) });
    }
    out.set(e.name.slice('baseline:'.length), byHour);
  }
  return out;
}

const TIMED = /^(\S+) (\S+)/;
const SUMMARY = /^(\S+) summary until=(\S+) n=(\d+) (.*)$/;

/**
 * One observation standing for `folded` (oldest first): the time span, how many, and a count
 * per kind ("health up->down", "breaker opened", "interval" with its request total and worst
 * p99). Earlier summaries among them are merged in, so folding again keeps one line.
 */
export function foldObservations(folded: readonly string[]): string {
  let from: string | undefined;
  let until: string | undefined;
  let n = 0;
  const kinds = new Map<string, number>();
  const bump = (k: string, by: number) => kinds.set(k, (kinds.get(k) ?? 0) + by);
  for (const o of folded) {
    const s = SUMMARY.exec(o);
    if (s !== null) {
      from ??= s[1];
      until = s[2];
      n += Number(s[3]);
      for (const part of s[4]!.split(' ')) {
        const [k, v] = part.split('=');
        if (k && v && /^\d+$/.test(v)) bump(k, Number(v));
      }
      continue;
    }
    const m = TIMED.exec(o);
    const at = m !== null && !Number.isNaN(Date.parse(m[1]!)) ? m[1]! : undefined;
    if (at !== undefined) {
      from ??= at;
      until = at;
    }
    n += 1;
    const rest = at !== undefined ? o.slice(at.length + 1) : o;
    const words = rest.split(' ');
    const kind = words[0] === 'health' ? `health:${words[1]}` : words[0] === 'breaker' ? `breaker:${words[1]}` : (words[0] ?? 'other');
    bump(kind.replace(/[=\s]/g, '_'), 1);
    const requests = /\brequests=(\d+)/.exec(rest);
    if (requests) bump('requests', Number(requests[1]));
  }
  const counts = [...kinds].map(([k, v]) => `${k}=${v}`).join(' ');
  return clip(`${from ?? 'unknown'} summary until=${until ?? from ?? 'unknown'} n=${n} ${counts}`);
}

/** Longest baseline line ("how=167 p50=... p99=... err=... n=..."). */
export const MAX_BASELINE_CHARS = 96;

/**
 * The stated bound of the memory file, in bytes: every entity holds at most `cap`
 * observations of at most MAX_OBSERVATION_CHARS characters (UTF-8 and JSON quoting counted
 * generously), a baseline entity one line per hour of week (168), and the recorder creates a
 * bounded number of entities (three per configured service, one per route, traffic split and
 * model, the decision aggregate, and principals only when enabled).
 */
export function memoryFileBound(shape: { readonly entities: number; readonly baselines: number; readonly cap: number; readonly relations: number }): number {
  const perEntity = 200 + shape.cap * (MAX_OBSERVATION_CHARS * 1.2 + 3);
  const perBaseline = 200 + 168 * (MAX_BASELINE_CHARS + 3);
  return Math.ceil(shape.entities * perEntity + shape.baselines * perBaseline + shape.relations * 200);
}
