import { accessSync, constants, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, join } from 'node:path';
import { Pool } from 'undici';
import { startChild, SUPPORTING_PROCESS_NICE } from './servers.js';

/**
 * The load generators.
 *
 * autocannon runs as its CLI in a child process (`--json`), not through its API in this
 * process: one autocannon is one single-threaded process (no `--workers`), so it can never
 * take more than one of the two cores from the servers, and two loads that run at the same
 * time (proxy load + /healthz stream) do not share one event loop, where the busy one would
 * delay the other's timestamps.
 */

const AUTOCANNON_CLI = createRequire(import.meta.url).resolve('autocannon/autocannon.js');

/** The part of autocannon's `--json` result the bench reads. */
export interface AutocannonResult {
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  statusCodeStats: Record<string, { count: number }>;
  latency: { average: number; p50: number; p90: number; p99: number; max: number; totalCount: number };
  requests: { average: number; total: number; sent: number };
}

export interface LoadOptions {
  readonly url: string;
  readonly connections: number;
  readonly durationSec: number;
  /** Requests per second over all connections (open loop); omitted: closed loop, as fast as possible. */
  readonly overallRate?: number;
  readonly headers?: Readonly<Record<string, string>>;
}

export async function autocannon(options: LoadOptions): Promise<AutocannonResult> {
  const args = [AUTOCANNON_CLI, '--json', '-c', String(options.connections), '-d', String(options.durationSec)];
  if (options.overallRate !== undefined) {
    // -C: autocannon's coordinated-omission correction assumes a 1 ms interval whatever the
    // rate (Math.ceil(1 / rate)), which multiplies every slow sample; raw latencies are truer.
    args.push('-R', String(options.overallRate), '-C');
  }
  for (const [name, value] of Object.entries(options.headers ?? {})) args.push('-H', `${name}=${value}`);
  args.push(options.url);
  return jsonFromChild<AutocannonResult>(args, `autocannon ${options.url}`);
}

/** wrk on the PATH (or BENCH_WRK), else undefined: the closed loops then use autocannon. */
export function findWrk(explicit?: string): string | undefined {
  const candidates = explicit ? [explicit] : (process.env.PATH ?? '').split(delimiter).filter(Boolean).map((d) => join(d, 'wrk'));
  return candidates.find((file) => {
    try {
      accessSync(file, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** wrk's duration units to milliseconds. */
const WRK_UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };

/** wrk's text report (with --latency) in autocannon's result shape; exported for its test. */
export function parseWrk(text: string, durationSec: number): AutocannonResult {
  const ms = (value: string | undefined, unit: string | undefined): number => (value === undefined ? NaN : Number(value) * (WRK_UNIT_MS[unit ?? 'ms'] ?? NaN));
  const dist = (pct: string) => {
    const m = new RegExp(`^\\s*${pct}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(text);
    return ms(m?.[1], m?.[2]);
  };
  const lat = /^\s*Latency\s+([\d.]+)(us|ms|s|m)\s+[\d.]+(?:us|ms|s|m|%)?\s+([\d.]+)(us|ms|s|m)/m.exec(text);
  const total = /^\s*(\d+) requests in ([\d.]+)(us|ms|s|m)/m.exec(text);
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(text);
  if (!total || !rps || !lat) throw new Error(`unexpected wrk output: ${text.slice(0, 400)}`);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const errors = sock ? Number(sock[1]) + Number(sock[2]) + Number(sock[3]) : 0;
  const timeouts = sock ? Number(sock[4]) : 0;
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(text)?.[1] ?? 0);
  const requests = Number(total[1]);
  return {
    duration: ms(total[2], total[3]) / 1000 || durationSec,
    errors,
    timeouts,
    non2xx,
    statusCodeStats: non2xx > 0 ? { '2xx': { count: requests - non2xx }, 'non-2xx': { count: non2xx } } : { '2xx': { count: requests } },
    latency: { average: ms(lat[1], lat[2]), p50: dist('50'), p90: dist('90'), p99: dist('99'), max: ms(lat[3], lat[4]), totalCount: requests },
    requests: { average: Number(rps[1]), total: requests, sent: requests },
  };
}

/**
 * A closed loop with wrk (C, one thread: `-t1`, as the issue measured): unlike autocannon it
 * does not saturate before nginx does. It runs niced like the other load generators.
 */
export async function wrk(bin: string, options: LoadOptions): Promise<AutocannonResult> {
  const args = ['-t1', '-c', String(options.connections), '-d', `${options.durationSec}s`, '--latency', '--timeout', '10s'];
  for (const [name, value] of Object.entries(options.headers ?? {})) args.push('-H', `${name}: ${value}`);
  args.push(options.url);
  const child = startChild(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], nice: SUPPORTING_PROCESS_NICE });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  if (code !== 0) throw new Error(`wrk ${options.url} failed (exit ${code}): ${child.stderrTail() || out}`);
  return parseWrk(out, options.durationSec);
}

/** Run a load-generating node child (niced) and parse the JSON it prints. */
async function jsonFromChild<T>(args: readonly string[], what: string): Promise<T> {
  const child = startChild(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], nice: SUPPORTING_PROCESS_NICE });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  try {
    return JSON.parse(out) as T;
  } catch {
    throw new Error(`${what} failed (exit ${code}): ${child.stderrTail() || out || 'no output'}`);
  }
}

export interface ProbeResult {
  /** Requests sent (answered or not). */
  readonly sent: number;
  readonly answered: number;
  readonly errors: number;
  readonly non2xx: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

/**
 * A paced /healthz stream: one request every 1/rate s, sent on schedule whether or not the
 * previous one has answered (open loop), latency in fractions of a millisecond from the send.
 * autocannon's --overallRate is not used here because it sends each second's quota
 * back-to-back at the start of the second, so 50 samples would all fall in the same few ms.
 * It runs in this process, which is otherwise idle while autocannon children make the load.
 */
export async function probe(
  url: string,
  rate: number,
  durationSec: number,
  options: { headers?: Readonly<Record<string, string>>; connections?: number } = {},
): Promise<ProbeResult> {
  const target = new URL(url);
  const headers = { ...options.headers };
  // Enough sockets that a slow answer never holds back the next scheduled request.
  const pool = new Pool(target.origin, { connections: options.connections ?? 16 });
  const latencies: number[] = [];
  let sent = 0;
  let errors = 0;
  let non2xx = 0;
  const one = async () => {
    const started = performance.now();
    try {
      const res = await pool.request({ path: `${target.pathname}${target.search}`, method: 'GET', headers, headersTimeout: 10_000, bodyTimeout: 10_000 });
      await res.body.dump();
      latencies.push(performance.now() - started);
      if (res.statusCode < 200 || res.statusCode >= 300) non2xx += 1;
    } catch {
      errors += 1;
    }
  };
  // Unmeasured: the first requests pay for connecting and for JIT-compiling this client,
  // which made the first sample alone 10-20 ms.
  for (let i = 0; i < 20; i++) {
    const res = await pool.request({ path: `${target.pathname}${target.search}`, method: 'GET', headers });
    await res.body.dump();
  }
  sent = await atFixedRate(rate, durationSec, one);
  await pool.close();
  latencies.sort((a, b) => a - b);
  const ms = (n: number) => Math.round(n * 100) / 100;
  return { sent, answered: latencies.length, errors, non2xx, p50: ms(quantile(latencies, 0.5)), p99: ms(quantile(latencies, 0.99)), max: ms(latencies.at(-1) ?? NaN) };
}

/** Nearest-rank quantile of sorted values (NaN when empty). */
function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** What the gateway's own /metrics (prom-client default metrics) says about its runtime. */
/**
 * Open-loop load: call `one` `rate` times a second for `durationSec` seconds, whatever the
 * answers take (a slow answer never delays the next call); waits for every call, returns
 * how many were sent.
 */
export async function atFixedRate(rate: number, durationSec: number, one: () => Promise<void>): Promise<number> {
  const inFlight: Promise<void>[] = [];
  let sent = 0;
  const interval = 1000 / rate;
  const start = performance.now();
  const end = start + durationSec * 1000;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      // Catch up if this process was descheduled: send every request that is due.
      while (start + sent * interval <= now && start + sent * interval < end) {
        sent += 1;
        inFlight.push(one());
      }
      if (now >= end) return resolve();
      setTimeout(tick, Math.max(0, start + sent * interval - performance.now()));
    };
    tick();
  });
  await Promise.all(inFlight);
  return sent;
}

/** A positive number from a flag, else from an environment variable, else `fallback` (bench options). */
export function positiveOption(flag: string | undefined, env: string, fallback: number): number {
  const raw = flag ?? process.env[env];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`bad value "${raw}" for ${env}`);
  return n;
}

export interface RuntimeSample {
  /** Event-loop delay since the previous scrape (prom-client resets it on every scrape). */
  readonly eventLoopDelayP99Ms: number;
  readonly eventLoopDelayMaxMs: number;
  /** GC pauses since the process started, all kinds. */
  readonly gcPauses: number;
  readonly gcSeconds: number;
  /** V8 heap in use (all spaces), bytes. */
  readonly heapUsedBytes: number;
  /** What V8 has committed for the old generation (every space but the young one's), bytes: what the idle reclaim watches. */
  readonly oldGenerationBytes: number;
  /** Memory-reducing GCs the idle heap reclaim has asked for so far. */
  readonly idleReclaims: number;
}

/** prom-client samples the event loop with a 10 ms timer and reports the whole interval. */
const EVENT_LOOP_TIMER_MS = 10;

export async function scrapeRuntime(baseUrl: string): Promise<RuntimeSample | null> {
  try {
    const text = await (await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    const sum = (name: string) =>
      text
        .split('\n')
        .filter((l) => l.startsWith(name))
        .reduce((acc, l) => acc + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
    const delayMs = (name: string) => Math.max(0, sum(name) * 1000 - EVENT_LOOP_TIMER_MS);
    return {
      eventLoopDelayP99Ms: delayMs('nodejs_eventloop_lag_p99_seconds '),
      eventLoopDelayMaxMs: delayMs('nodejs_eventloop_lag_max_seconds '),
      gcPauses: sum('nodejs_gc_duration_seconds_count{'),
      gcSeconds: sum('nodejs_gc_duration_seconds_sum{'),
      heapUsedBytes: sum('nodejs_heap_size_used_bytes '),
      oldGenerationBytes: sum('nodejs_heap_space_size_total_bytes{') - sum('nodejs_heap_space_size_total_bytes{space="new'),
      idleReclaims: sum('gateway_idle_heap_reclaims_total '),
    };
  } catch {
    return null;
  }
}

/** A histogram's cumulative bucket counts by upper bound in seconds (every label set summed), or null when /metrics could not be read. */
export async function scrapeHistogram(baseUrl: string, name: string): Promise<Map<number, number> | null> {
  try {
    const text = await (await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    const buckets = new Map<number, number>();
    for (const line of text.split('\n')) {
      if (!line.startsWith(`${name}_bucket{`)) continue;
      const le = /le="([^"]+)"/.exec(line)?.[1];
      if (le === undefined) continue;
      const bound = le === '+Inf' ? Infinity : Number(le);
      buckets.set(bound, (buckets.get(bound) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
    }
    return buckets;
  } catch {
    return null;
  }
}

/** The smallest bucket bound (ms) holding at least quantile q of the observations between two scrapes; null without any. */
export function bucketQuantileMs(before: ReadonlyMap<number, number>, after: ReadonlyMap<number, number>, q: number): number | null {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const total = (after.get(Infinity) ?? 0) - (before.get(Infinity) ?? 0);
  if (total <= 0) return null;
  for (const bound of bounds) {
    if ((after.get(bound) ?? 0) - (before.get(bound) ?? 0) >= q * total) return bound * 1000;
  }
  return Infinity;
}

/**
 * The same paced open-loop client as `probe`, in a child process of its own (bench/paced-load.ts),
 * for the proxy load of the "/healthz under load" phase: requests evenly spaced over each
 * second, unlike autocannon's --overallRate, which sends a second's quota back-to-back and so
 * runs the gateway at saturation for part of every second.
 */
export async function pacedLoad(url: string, rate: number, durationSec: number, headers: Readonly<Record<string, string>>): Promise<ProbeResult> {
  const script = new URL('./paced-load.ts', import.meta.url).pathname;
  const tsx = createRequire(import.meta.url).resolve('tsx/cli');
  return jsonFromChild<ProbeResult>([tsx, script, url, String(rate), String(durationSec), JSON.stringify(headers)], `paced load ${url}`);
}

/** utime + stime of a process in seconds (Linux /proc; clock ticks are 100/s on Linux); NaN without a pid. */
export function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** The median: the middle value, or the mean of the two middle ones of an even count. */
export function median(xs: readonly number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
