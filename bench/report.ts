import { median, type AutocannonResult, type ProbeResult } from './load.js';
import type { FederationResult, McpCallResult } from './mcp.js';

/** One target's closed-loop figures, as printed and as written to JSON. */
export interface TargetResult {
  readonly url: string;
  readonly rps: number;
  /** autocannon latencies are whole milliseconds (0 means under 1 ms). */
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly requests: number;
  readonly errors: number;
  readonly timeouts: number;
  readonly non2xx: number;
  /** Count per HTTP status. */
  readonly statusCodes: Record<string, number>;
}

export interface Ratio {
  /** Requests/s of the gateway divided by the other's: 0.5 means half the throughput. */
  readonly rps: number;
  /** Latency of the gateway divided by the other's; null when the other's is 0 ms (under autocannon's 1 ms resolution). */
  readonly p50: number | null;
  readonly p99: number | null;
}

export interface HealthzUnderLoad {
  readonly saturationRps: number;
  readonly loadFraction: number;
  readonly proxyTargetRps: number;
  readonly proxy: TargetResult;
  readonly healthz: ProbeResult;
  /** The same /healthz stream on the probe listener's port (GATEWAY_PROBE_PORT), at the same time. */
  readonly probePort: ProbeResult;
  readonly probePortIdle: ProbeResult;
  /** The gateway's own view of the /healthz window, from its /metrics; null if unavailable. */
  readonly gatewayRuntime: { eventLoopDelayP99Ms: number; eventLoopDelayMaxMs: number; gcPauses: number; gcPauseTotalMs: number } | null;
  readonly targetP99Ms: number;
  readonly pass: boolean;
  readonly probePortPass: boolean;
}

export interface Report {
  readonly date: string;
  readonly gitCommit: string | null;
  readonly machine: Record<string, unknown>;
  readonly settings: Record<string, unknown>;
  readonly targets: {
    direct: TargetResult;
    'bare-proxy': TargetResult;
    gateway: TargetResult;
    'gateway-cached': TargetResult;
    nginx: TargetResult | null;
    /** The gateway with WORKER_THREADS=settings.compareWorkers (null: not measured). */
    'gateway-workers': TargetResult | null;
  };
  readonly nginxSkipped: string | null;
  readonly ratios: { gatewayToDirect: Ratio; gatewayToBareProxy: Ratio; gatewayToNginx: Ratio | null; cachedToGateway: Ratio; workersToGateway: Ratio | null };
  /** The same paced client at a fixed rate straight at the upstream and through the gateway. */
  readonly addedLatency: {
    rate: number;
    /** Alternating rounds (direct, bare proxy, gateway); each figure is the median over them. */
    rounds: number;
    direct: TargetResult;
    /** The bare @fastify/http-proxy at the same rate: what any Node proxy adds on this machine. */
    bare: TargetResult;
    gateway: TargetResult;
    addedP50Ms: number;
    addedP99Ms: number;
    bareAddedP99Ms: number;
    /** p99 of each round, per target, in round order. */
    perRound: { direct: number[]; bare: number[]; gateway: number[] };
    /**
     * The gateway's own view of the same rounds (gateway_proxy_overhead_seconds: each request's
     * time less its upstream wait), as the bucket bounds holding p50 and p99 (optional: older results lack it).
     */
    gatewayOwn?: { requests: number; p50AtMostMs: number | null; p99AtMostMs: number | null };
    targetP99Ms: number;
  };
  /** The gateway process: idle, near the end of the soak at saturation, and after it settled. */
  readonly memory: { idle: MemorySample; saturated: MemorySample; peakRssMiB: number | null; after: MemorySample; targetRssMiB: number };
  /** MCP tools/call round trips (bench/mcp.ts, MCP_CALLS). */
  readonly mcp: readonly McpCallResult[];
  /** A federated tools/call (the everything server's echo through /mcp) against calling that server directly (bench/mcp.ts). */
  readonly mcpFederated: FederationResult['json'] | null;
  readonly healthzIdle: ProbeResult;
  readonly healthzUnderLoad: HealthzUnderLoad;
  /** Every phase that saw errors, timeouts or non-2xx answers, one line each. */
  readonly problems: string[];
  readonly phases: { name: string; seconds: number }[];
  readonly totalSeconds: number;
}

export interface MemorySample {
  readonly rssMiB: number | null;
  readonly heapUsedMiB: number | null;
  /** Old generation committed (MiB) and idle reclaims so far (src/server/idle-heap-reclaim.ts); absent in older reports. */
  readonly oldGenerationMiB?: number | null;
  readonly idleReclaims?: number | null;
}

export function targetResult(url: string, r: AutocannonResult): TargetResult {
  const statusCodes = Object.fromEntries(Object.entries(r.statusCodeStats).map(([code, s]) => [code, s.count]));
  return {
    url,
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    max: r.latency.max,
    requests: r.requests.total,
    errors: r.errors,
    timeouts: r.timeouts,
    non2xx: r.non2xx,
    statusCodes,
  };
}

/** A paced open-loop run (bench/paced-load.ts) in the shape of a target's result. */
/** Calls per second of the federated row (as issue 14's figure: 100 calls/s). */
export const MCP_FEDERATED_RATE = 100;

/** Rounds of one target as one result: the median of their rates and percentiles, their counts summed. */
export function medianOfRounds(rounds: readonly TargetResult[]): TargetResult {
  const medianOf = (pick: (r: TargetResult) => number) => round(median(rounds.map(pick)), 2);
  const sum = (pick: (r: TargetResult) => number) => rounds.reduce((n, r) => n + pick(r), 0);
  return {
    url: rounds[0]!.url,
    rps: medianOf((r) => r.rps),
    p50: medianOf((r) => r.p50),
    p99: medianOf((r) => r.p99),
    max: Math.max(...rounds.map((r) => r.max)),
    requests: sum((r) => r.requests),
    errors: sum((r) => r.errors),
    timeouts: sum((r) => r.timeouts),
    non2xx: sum((r) => r.non2xx),
    statusCodes: {},
  };
}

export function pacedResult(url: string, r: ProbeResult, durationSec: number): TargetResult {
  return {
    url,
    rps: Math.round(r.answered / durationSec),
    p50: r.p50,
    p99: r.p99,
    max: r.max,
    requests: r.sent,
    errors: r.errors,
    timeouts: 0,
    non2xx: r.non2xx,
    statusCodes: {},
  };
}

const div = (a: number, b: number): number | null => (b > 0 ? round(a / b, 2) : null);

export function ratio(gateway: TargetResult, other: TargetResult): Ratio {
  return { rps: div(gateway.rps, other.rps) ?? NaN, p50: div(gateway.p50, other.p50), p99: div(gateway.p99, other.p99) };
}

/** "" when the phase was clean, otherwise what went wrong in it. */
export function problemOf(phase: string, r: { errors: number; timeouts?: number; non2xx: number; statusCodes?: Record<string, number> }): string {
  if (r.errors === 0 && (r.timeouts ?? 0) === 0 && r.non2xx === 0) return '';
  const codes = Object.entries(r.statusCodes ?? {})
    .filter(([code]) => !code.startsWith('2'))
    .map(([code, n]) => `${code}x${n}`)
    .join(' ');
  return `${phase}: ${r.errors} errors, ${r.timeouts ?? 0} timeouts, ${r.non2xx} non-2xx${codes ? ` (${codes})` : ''}`;
}

export function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

const fmt = (n: number | null, digits = 0): string => (n === null || Number.isNaN(n) ? 'n/a' : n.toFixed(digits));

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ')).join('\n');
}

export function renderText(report: Report): string {
  const s = report.settings;
  const m = report.machine;
  const lines: string[] = [];
  lines.push(`Unified Gateway benchmark, ${report.date}, node ${String(m.node)}, ${String(m.cpuCount)} x ${String(m.cpuModel)}`);
  lines.push(
    `GET ${String(s.path)} (auth: ${String(s.auth)}), ${String(s.connections)} connections, closed loop, ${String(s.durationSec)} s per target after ${String(s.warmupSec)} s warm-up`,
  );
  if (m.gatewayAllocator !== undefined) lines.push(`gateway and bare proxy allocator: ${String(m.gatewayAllocator)}`);
  lines.push('');
  const rows: string[][] = [['target', 'req/s', 'p50 ms', 'p99 ms', 'max ms', 'requests', 'errors', 'non-2xx']];
  for (const [name, t] of Object.entries(report.targets)) {
    if (t === null) rows.push([name, 'skipped', '', '', '', '', '', '']);
    else rows.push([name, fmt(t.rps), fmt(t.p50), fmt(t.p99), fmt(t.max), String(t.requests), String(t.errors + t.timeouts), String(t.non2xx)]);
  }
  lines.push(table(rows));
  lines.push(
    s.loadGenerator === 'wrk'
      ? `(closed loops with ${String(m.wrk ?? 'wrk')} -t1; latencies in ms)`
      : '(latencies in whole ms as autocannon measures them; 0 = under 1 ms)',
  );
  lines.push('');
  const ratioRows: string[][] = [['ratio', 'req/s', 'p50', 'p99']];
  const r = report.ratios;
  ratioRows.push(['gateway/direct', fmt(r.gatewayToDirect.rps, 2), fmt(r.gatewayToDirect.p50, 2), fmt(r.gatewayToDirect.p99, 2)]);
  ratioRows.push(['gateway/bare-proxy', fmt(r.gatewayToBareProxy.rps, 2), fmt(r.gatewayToBareProxy.p50, 2), fmt(r.gatewayToBareProxy.p99, 2)]);
  if (r.gatewayToNginx) ratioRows.push(['gateway/nginx', fmt(r.gatewayToNginx.rps, 2), fmt(r.gatewayToNginx.p50, 2), fmt(r.gatewayToNginx.p99, 2)]);
  else ratioRows.push(['gateway/nginx', 'n/a', 'n/a', 'n/a']);
  ratioRows.push(['cached/gateway', fmt(r.cachedToGateway.rps, 2), fmt(r.cachedToGateway.p50, 2), fmt(r.cachedToGateway.p99, 2)]);
  if (r.workersToGateway) {
    ratioRows.push([`workers x${String(s.compareWorkers)}/gateway`, fmt(r.workersToGateway.rps, 2), fmt(r.workersToGateway.p50, 2), fmt(r.workersToGateway.p99, 2)]);
  }
  lines.push(table(ratioRows));
  lines.push(`target cached route >= 2x the uncached proxy path: ${r.cachedToGateway.rps >= 2 ? 'PASS' : 'FAIL'} (${fmt(r.cachedToGateway.rps, 2)}x)`);
  lines.push(`target gateway >= 1.0x bare @fastify/http-proxy: ${r.gatewayToBareProxy.rps >= 1 ? 'PASS' : 'FAIL'} (${fmt(r.gatewayToBareProxy.rps, 2)}x)`);
  if (r.gatewayToNginx) lines.push(`target gateway >= 0.30x nginx: ${r.gatewayToNginx.rps >= 0.3 ? 'PASS' : 'FAIL'} (${fmt(r.gatewayToNginx.rps, 2)}x, ${String(s.loadGenerator)})`);
  if (report.nginxSkipped) lines.push(`nginx column skipped: ${report.nginxSkipped}`);
  lines.push('');
  const idle = report.healthzIdle;
  const h = report.healthzUnderLoad;
  lines.push(`healthz idle:       p50 ${fmt(idle.p50, 2)} ms, p99 ${fmt(idle.p99, 2)} ms, max ${fmt(idle.max, 2)} ms (${idle.answered}/${idle.sent} answered)`);
  lines.push(
    `healthz under load: p50 ${fmt(h.healthz.p50, 2)} ms, p99 ${fmt(h.healthz.p99, 2)} ms, max ${fmt(h.healthz.max, 2)} ms ` +
      `(${h.healthz.answered}/${h.healthz.sent} answered at ${String(s.healthzRate)}/s) ` +
      `while the proxy carried ${fmt(h.proxy.rps)} req/s (target ${h.proxyTargetRps} = ${h.loadFraction * 100}% of ${fmt(h.saturationRps)} saturation; proxy p50 ${fmt(h.proxy.p50)} ms, p99 ${fmt(h.proxy.p99)} ms)`,
  );
  const rt = h.gatewayRuntime;
  if (rt) {
    const mean = rt.gcPauses > 0 ? ` (mean ${fmt(rt.gcPauseTotalMs / rt.gcPauses, 1)} ms)` : '';
    lines.push(
      `gateway in that window (its /metrics): event-loop delay p99 ${fmt(rt.eventLoopDelayP99Ms, 1)} ms, max ${fmt(rt.eventLoopDelayMaxMs, 1)} ms; ` +
        `${rt.gcPauses} GC pauses, ${fmt(rt.gcPauseTotalMs, 1)} ms in total${mean}`,
    );
  }
  lines.push(
    `healthz on the probe port (GATEWAY_PROBE_PORT, its own thread), same time: idle p99 ${fmt(h.probePortIdle.p99, 2)} ms; ` +
      `under load p50 ${fmt(h.probePort.p50, 2)} ms, p99 ${fmt(h.probePort.p99, 2)} ms, max ${fmt(h.probePort.max, 2)} ms (${h.probePort.answered}/${h.probePort.sent} answered)`,
  );
  lines.push(`target /healthz p99 < ${h.targetP99Ms} ms under load: main port ${h.pass ? 'PASS' : 'FAIL'}, probe port ${h.probePortPass ? 'PASS' : 'FAIL'}`);
  lines.push('');
  const a = report.addedLatency;
  lines.push(
    `at ${a.rate} req/s (paced, median of ${a.rounds} alternating rounds): upstream alone p50 ${fmt(a.direct.p50, 2)} / p99 ${fmt(a.direct.p99, 2)} ms; ` +
      `through the gateway p50 ${fmt(a.gateway.p50, 2)} / p99 ${fmt(a.gateway.p99, 2)} ms; added p50 ${fmt(a.addedP50Ms, 2)} / p99 ${fmt(a.addedP99Ms, 2)} ms`,
  );
  lines.push(
    `  the bare proxy at the same rate: p50 ${fmt(a.bare.p50, 2)} / p99 ${fmt(a.bare.p99, 2)} ms, adds ${fmt(a.bareAddedP99Ms, 2)} ms at p99; ` +
      `p99 per round: upstream ${a.perRound.direct.map((v) => fmt(v, 2)).join(', ')}; bare ${a.perRound.bare.map((v) => fmt(v, 2)).join(', ')}; gateway ${a.perRound.gateway.map((v) => fmt(v, 2)).join(', ')} ms`,
  );
  if (a.gatewayOwn !== undefined) {
    lines.push(
      `  the gateway's own time in its rounds (gateway_proxy_overhead_seconds: each request less its upstream wait, ${fmt(a.gatewayOwn.requests)} requests): ` +
        `p50 <= ${fmt(a.gatewayOwn.p50AtMostMs, 2)} ms, p99 <= ${fmt(a.gatewayOwn.p99AtMostMs, 2)} ms (bucket bounds)`,
    );
  }
  // Only meaningful when both runs reached the rate (a client that fell behind measures its own queue).
  const reached = a.direct.rps >= a.rate * 0.9 && a.gateway.rps >= a.rate * 0.9;
  lines.push(
    `target added p99 < ${a.targetP99Ms} ms at ${a.rate} req/s: ${!reached ? `FAIL (rate not reached: ${fmt(a.direct.rps)} and ${fmt(a.gateway.rps)} req/s)` : a.addedP99Ms < a.targetP99Ms ? 'PASS' : 'FAIL'}`,
  );
  const mem = report.memory;
  const memText = (x: MemorySample) =>
    `RSS ${fmt(x.rssMiB)} MiB (heap used ${fmt(x.heapUsedMiB)} MiB` +
    (x.oldGenerationMiB != null ? `, old generation ${fmt(x.oldGenerationMiB)} MiB committed` : '') +
    (x.idleReclaims != null ? `, ${fmt(x.idleReclaims)} idle reclaims so far` : '') +
    ')';
  lines.push(
    `gateway memory: idle ${memText(mem.idle)}; after ${String(s.soakSec)} s at saturation ${memText(mem.saturated)}, peak RSS ${fmt(mem.peakRssMiB)} MiB; ` +
      `${String(s.settleSec)} s after the load ${memText(mem.after)}`,
  );
  if (mem.saturated.rssMiB !== null) lines.push(`target RSS < ${mem.targetRssMiB} MiB after a minute at saturation: ${mem.saturated.rssMiB < mem.targetRssMiB ? 'PASS' : 'FAIL'}`);
  if (report.mcp.length > 0) {
    lines.push('');
    const mcpRows: string[][] = [['MCP tools/call', 'tool', 'rate/s', 'ok', 'errors', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms']];
    for (const c of report.mcp) mcpRows.push([c.label, c.tool, String(c.rate), String(c.ok), String(c.errors), fmt(c.p50, 2), fmt(c.p90, 2), fmt(c.p99, 2), fmt(c.max, 2)]);
    const f = report.mcpFederated;
    if (f !== null) {
      mcpRows.push(['federated (everything)', 'everything__echo', String(MCP_FEDERATED_RATE), String(f.federated.ok), String(f.federated.errors), fmt(f.federated.p50, 2), '', fmt(f.federated.p99, 2), '']);
      mcpRows.push(['  same server, direct', 'echo (SDK client)', String(MCP_FEDERATED_RATE), String(f.direct.ok), String(f.direct.errors), fmt(f.direct.p50, 2), '', fmt(f.direct.p99, 2), '']);
    }
    lines.push(table(mcpRows));
    if (f !== null) lines.push(`federated tools/call adds p50 ${fmt(f.added.p50, 2)} / p99 ${fmt(f.added.p99, 2)} ms over the direct call (issue 14 target: p99 < 2 ms): ${f.added.p99 < 2 ? 'PASS' : 'FAIL'}`);
  }
  if (report.problems.length > 0) {
    lines.push('');
    lines.push('ERRORS / NON-2xx during the run:');
    for (const p of report.problems) lines.push(`  ${p}`);
  }
  return lines.join('\n');
}
