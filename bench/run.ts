/**
 * Load benchmark of the gateway (`npm run bench`, see bench/README.md). In one run it drives
 * the same request straight at a stand-in upstream, through the gateway and (when nginx is on
 * the PATH) through nginx, then checks /healthz latency while the gateway proxies at a fixed
 * fraction of its saturation throughput. Prints a table and writes bench/results/*.json.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { autocannon, bucketQuantileMs, scrapeHistogram, findWrk, pacedLoad, probe, scrapeRuntime, wrk, type LoadOptions } from './load.js';
import { federationPhase, federationYaml, MCP_CALLS, MCP_TABLE_RATE, measureMcp, type FederationResult, type McpCallResult } from './mcp.js';
import { MCP_FEDERATED_RATE, medianOfRounds, pacedResult, problemOf, ratio, renderText, round, targetResult, type MemorySample, type Report, type TargetResult } from './report.js';
import {
  CACHED_PREFIX,
  findNginx,
  gatewayAllocator,
  gatewayCredentials,
  killAll,
  rssMiB,
  startBareProxy,
  startGateway,
  startNginx,
  startStandIn,
  stopAll,
  type AuthMode,
  type GatewayServer,
  type Server,
} from './servers.js';

const HELP = `usage: npm run bench -- [options]    (each option can also come from its BENCH_* variable)

  --duration <s>       measured seconds per target and for the healthz phase  BENCH_DURATION       10
  --warmup <s>         closed-loop warm-up before each target (not measured)  BENCH_WARMUP         8
  --connections <n>    autocannon connections                                 BENCH_CONNECTIONS    50
  --path <path>        request path, the same for every target               BENCH_PATH           /v1/twin/bench
  --load-fraction <f>  proxy load in the healthz phase, times saturation      BENCH_LOAD_FRACTION  0.5
  --healthz-rate <n>   /healthz requests per second in that phase             BENCH_HEALTHZ_RATE   50
  --nginx <file>       nginx binary                                           BENCH_NGINX          nginx on the PATH
  --no-nginx           skip the nginx column
  --load-generator <g> closed loops: wrk, autocannon, or auto (wrk if found) BENCH_LOAD_GENERATOR auto
  --wrk <file>         wrk binary                                             BENCH_WRK            wrk on the PATH
  --fixed-rate <n>     req/s of the added-latency phase (upstream vs gateway) BENCH_FIXED_RATE     1000
  --soak <s>           seconds at saturation before reading the RSS (0: skip)  BENCH_SOAK           60
  --soak-connections <n> connections of that soak                            BENCH_SOAK_CONNECTIONS 100
  --settle <s>         idle seconds after the soak before the last RSS        BENCH_SETTLE         15
  --workers <n>        the gateway's WORKER_THREADS                           BENCH_WORKERS        1
  --compare-workers <n> a gateway-workers column with WORKER_THREADS=n (0: none) BENCH_COMPARE_WORKERS 2
  --no-mcp             skip the MCP tools/call rows
  --auth <mode>        credentials sent: bearer (JWT), api-key or none        BENCH_AUTH           bearer
  --log-level <level>  gateway LOG_LEVEL (its stdout goes to /dev/null)       BENCH_LOG_LEVEL      info
  --help
`;

const HEALTHZ_TARGET_P99_MS = 5;
const ADDED_P99_TARGET_MS = 1;
const RSS_TARGET_MIB = 150;
const LOAD_GENERATORS = ['auto', 'wrk', 'autocannon'] as const;
const AUTH_MODES: readonly AuthMode[] = ['bearer', 'api-key', 'none'];

function options() {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string' },
      warmup: { type: 'string' },
      connections: { type: 'string' },
      path: { type: 'string' },
      'load-fraction': { type: 'string' },
      'healthz-rate': { type: 'string' },
      nginx: { type: 'string' },
      'no-nginx': { type: 'boolean', default: false },
      'load-generator': { type: 'string' },
      wrk: { type: 'string' },
      'fixed-rate': { type: 'string' },
      soak: { type: 'string' },
      'soak-connections': { type: 'string' },
      settle: { type: 'string' },
      workers: { type: 'string' },
      'compare-workers': { type: 'string' },
      'no-mcp': { type: 'boolean', default: false },
      'log-level': { type: 'string' },
      auth: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const num = (flag: string | undefined, env: string, fallback: number, check: (n: number) => boolean): number => {
    const raw = flag ?? process.env[env];
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!check(n)) throw new Error(`bad value "${raw}" for ${env.replace('BENCH_', '--').toLowerCase().replace('_', '-')}`);
    return n;
  };
  const positiveInt = (n: number) => Number.isInteger(n) && n > 0;
  const auth = values.auth ?? process.env.BENCH_AUTH ?? 'bearer';
  if (!AUTH_MODES.includes(auth as AuthMode)) throw new Error(`bad value "${auth}" for --auth (one of ${AUTH_MODES.join(', ')})`);
  const loadGenerator = values['load-generator'] ?? process.env.BENCH_LOAD_GENERATOR ?? 'auto';
  if (!(LOAD_GENERATORS as readonly string[]).includes(loadGenerator)) throw new Error(`bad value "${loadGenerator}" for --load-generator (one of ${LOAD_GENERATORS.join(', ')})`);
  const nonNegativeInt = (n: number) => Number.isInteger(n) && n >= 0;
  return {
    loadGenerator: loadGenerator as (typeof LOAD_GENERATORS)[number],
    wrk: values.wrk ?? process.env.BENCH_WRK,
    fixedRate: num(values['fixed-rate'], 'BENCH_FIXED_RATE', 1000, positiveInt),
    soakSec: num(values.soak, 'BENCH_SOAK', 60, nonNegativeInt),
    soakConnections: num(values['soak-connections'], 'BENCH_SOAK_CONNECTIONS', 100, positiveInt),
    settleSec: num(values.settle, 'BENCH_SETTLE', 15, nonNegativeInt),
    workers: num(values.workers, 'BENCH_WORKERS', 1, positiveInt),
    compareWorkers: num(values['compare-workers'], 'BENCH_COMPARE_WORKERS', 2, nonNegativeInt),
    mcp: values['no-mcp'] !== true,
    durationSec: num(values.duration, 'BENCH_DURATION', 10, positiveInt),
    // 8 s: a fresh gateway's throughput climbs for about 6 s of load (JIT, V8 growing its heap)
    // before it levels off; with 3 s it measured ~40% below its steady state.
    warmupSec: num(values.warmup, 'BENCH_WARMUP', 8, (n) => Number.isInteger(n) && n >= 0),
    connections: num(values.connections, 'BENCH_CONNECTIONS', 50, positiveInt),
    path: values.path ?? process.env.BENCH_PATH ?? '/v1/twin/bench',
    loadFraction: num(values['load-fraction'], 'BENCH_LOAD_FRACTION', 0.5, (n) => n > 0 && n <= 1),
    healthzRate: num(values['healthz-rate'], 'BENCH_HEALTHZ_RATE', 50, (n) => n > 0 && n <= 1000),
    noNginx: values['no-nginx'] === true,
    nginx: values.nginx ?? process.env.BENCH_NGINX,
    logLevel: values['log-level'] ?? process.env.BENCH_LOG_LEVEL ?? 'info',
    auth: auth as AuthMode,
  };
}

/** Progress on stderr (stdout stays the report): one line per phase, a countdown on a terminal. */
const phases: { name: string; seconds: number }[] = [];
const progress = { begun: performance.now(), plannedSec: 0 };
async function phase<T>(name: string, expectedSec: number, work: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const tty = process.stderr.isTTY;
  const line = () => {
    const now = performance.now();
    const own = expectedSec > 0 ? ` ${Math.round((now - started) / 1000)}/${expectedSec} s` : '';
    const whole = progress.plannedSec > 0 ? `  [bench ${Math.round((now - progress.begun) / 1000)} s of about ${progress.plannedSec} s]` : '';
    return `  ${name}${own}${whole}`;
  };
  process.stderr.write(tty ? line() : `${line()}\n`);
  const timer = tty ? setInterval(() => process.stderr.write(`\r\x1b[K${line()}`), 1000) : undefined;
  try {
    return await work();
  } finally {
    clearInterval(timer);
    const seconds = round((performance.now() - started) / 1000, 1);
    phases.push({ name, seconds });
    if (tty) process.stderr.write(`\r\x1b[K  ${name}: done in ${seconds} s\n`);
  }
}

function commandOutput(command: string, args: string[]): string | null {
  const r = spawnSync(command, args, { encoding: 'utf8' });
  return r.status === 0 ? `${r.stdout}${r.stderr}`.trim() : null;
}

/** The gateway's RSS (MiB) and heap in use (MiB, from its /metrics) at one moment. */
async function memoryOf(server: Server): Promise<MemorySample> {
  const runtime = await scrapeRuntime(server.url);
  const mib = (bytes: number | undefined) => (runtime && bytes !== undefined ? round(bytes / 2 ** 20, 1) : null);
  return {
    rssMiB: rssMiB(server.pid),
    heapUsedMiB: mib(runtime?.heapUsedBytes),
    oldGenerationMiB: mib(runtime?.oldGenerationBytes),
    idleReclaims: runtime ? runtime.idleReclaims : null,
  };
}

async function main(): Promise<void> {
  const major = Number(process.versions.node.split('.')[0]);
  if (major < 22) throw new Error(`the bench needs Node.js 22 or later (this is ${process.version}); run it with npm run bench`);
  const opts = options();
  const date = new Date();
  const loadavgAtStart = loadavg().map((n) => round(n, 2));

  process.stderr.write('gateway bench: starting servers\n');
  const standIn = await phase('start stand-in upstream', 0, startStandIn);
  const bare = await phase('start bare @fastify/http-proxy', 0, () => startBareProxy(standIn.url));
  const gateway = await phase(`start gateway (unified-gateway serve, WORKER_THREADS=${opts.workers})`, 0, () =>
    startGateway(standIn.url, opts.logLevel, { workers: opts.workers }),
  );
  // The same request everywhere: direct, the bare proxy and nginx get the gateway's credentials too (and ignore them).
  const headers = await gatewayCredentials(gateway, opts.auth);
  const wrkBin = opts.loadGenerator === 'autocannon' ? undefined : findWrk(opts.wrk);
  if (opts.loadGenerator === 'wrk' && wrkBin === undefined) throw new Error('--load-generator wrk: no wrk on the PATH (or BENCH_WRK)');
  const generator = wrkBin ? 'wrk' : 'autocannon';
  if (!wrkBin) process.stderr.write('  note: no wrk on the PATH: closed loops use autocannon (which saturates before nginx does)\n');
  const closedLoop = (o: LoadOptions) => (wrkBin ? wrk(wrkBin, o) : autocannon(o));
  const load = (url: string, extra: Partial<LoadOptions> = {}): LoadOptions => ({
    url,
    connections: opts.connections,
    durationSec: opts.durationSec,
    headers,
    ...extra,
  });
  const nginxBin = opts.noNginx ? undefined : findNginx(opts.nginx);
  const nginxSkipped = opts.noNginx ? 'disabled with --no-nginx' : nginxBin ? null : `no nginx ${opts.nginx ? `at ${opts.nginx}` : 'on the PATH'}`;
  const nginx = nginxBin ? await phase('start nginx', 0, () => startNginx(nginxBin, standIn.url, opts.path)) : undefined;
  if (nginxSkipped) process.stderr.write(`  note: nginx column skipped (${nginxSkipped})\n`);
  // Idle memory: started, one token issued, no load yet.
  await new Promise((r) => setTimeout(r, 1000));
  const memoryIdle = await memoryOf(gateway);

  const idleSec = Math.min(5, opts.durationSec);
  const runs = (nginx ? 5 : 4) + (opts.compareWorkers > 0 ? 1 : 0);
  progress.plannedSec = Math.round(
    (performance.now() - progress.begun) / 1000 +
      runs * (opts.warmupSec + opts.durationSec + 1) +
      idleSec +
      opts.durationSec +
      3 +
      3 * 3 * (Math.max(3, Math.round(opts.durationSec / 2)) + 1) +
      (opts.mcp ? 2 * opts.durationSec + 15 : 0) +
      opts.soakSec +
      opts.settleSec,
  );

  // gateway-cached: the same request on a route the gateway caches (issue: at least 2x the
  // uncached proxy path), answered from the response cache after the first request.
  // gateway-workers: the same gateway with WORKER_THREADS=--compare-workers (default 2), started
  // for its column only and stopped after it, so 1 vs N workers are measured in one run.
  const targets: [string, Server | undefined | (() => Promise<Server>), string][] = [
    ['direct', standIn, opts.path],
    ['bare-proxy', bare, opts.path],
    ['gateway', gateway, opts.path],
    ['gateway-cached', gateway, `${CACHED_PREFIX}/bench`],
    ['nginx', nginx, opts.path],
    ['gateway-workers', opts.compareWorkers > 0 ? () => startGateway(standIn.url, opts.logLevel, { workers: opts.compareWorkers }) : undefined, opts.path],
  ];
  const results: Record<string, TargetResult | null> = {};
  const problems: string[] = [];
  for (const [name, serverOrStart, path] of targets) {
    if (!serverOrStart) {
      results[name] = null;
      continue;
    }
    const started = typeof serverOrStart === 'function';
    const server = started ? await phase(`start gateway with WORKER_THREADS=${opts.compareWorkers}`, 0, serverOrStart) : serverOrStart;
    // A gateway started here has secrets of its own: its own credentials, the same kind.
    const own = started ? { headers: await gatewayCredentials(server as GatewayServer, opts.auth) } : {};
    const url = `${server.url}${path}`;
    if (opts.warmupSec > 0) {
      const warm = await phase(`${name}: warm-up`, opts.warmupSec, () => closedLoop(load(url, { durationSec: opts.warmupSec, ...own })));
      const p = problemOf(`${name} warm-up`, targetResult(url, warm));
      if (p) problems.push(p);
    }
    const r = targetResult(url, await phase(`${name}: closed loop (${generator})`, opts.durationSec, () => closedLoop(load(url, own))));
    results[name] = r;
    const p = problemOf(name, r);
    if (p) problems.push(p);
    if (started && server.pid !== undefined) process.kill(server.pid, 'SIGINT'); // its workers stop with it
  }
  const direct = results.direct!;
  const bareResult = results['bare-proxy']!;
  const gw = results.gateway!;
  const cached = results['gateway-cached']!;
  const ng = results.nginx ?? null;

  const healthzUrl = `${gateway.url}/healthz`;
  // The same /healthz on the probe listener's port (a thread of its own: src/server/probe-listener.ts).
  const probeHealthzUrl = `${gateway.probeUrl}/healthz`;
  const [healthzIdle, probeHealthzIdle] = await phase('healthz: idle gateway (main port and probe port)', idleSec, () =>
    Promise.all([probe(healthzUrl, opts.healthzRate, idleSec), probe(probeHealthzUrl, opts.healthzRate, idleSec)]),
  );
  for (const p of [problemOf('healthz idle', healthzIdle), problemOf('probe-port healthz idle', probeHealthzIdle)]) if (p) problems.push(p);

  // Open loop at a fraction of the closed-loop saturation just measured. The /healthz stream
  // starts once the proxy load has ramped up and stops before it ends.
  const proxyTargetRps = Math.max(1, Math.round(gw.rps * opts.loadFraction));
  const settleMs = 1500;
  const underLoad = await phase(
    `healthz: under ${opts.loadFraction * 100}% proxy load (${proxyTargetRps} req/s)`,
    opts.durationSec + 2,
    async () => {
      const proxyDurationSec = opts.durationSec + 2;
      const proxyRun = pacedLoad(`${gateway.url}${opts.path}`, proxyTargetRps, proxyDurationSec, headers);
      await new Promise((r) => setTimeout(r, settleMs));
      // Scraping /metrics resets prom-client's event-loop histogram, so the second scrape
      // covers exactly the /healthz window.
      const before = await scrapeRuntime(gateway.url);
      const [healthz, probePort] = await Promise.all([probe(healthzUrl, opts.healthzRate, opts.durationSec), probe(probeHealthzUrl, opts.healthzRate, opts.durationSec)]);
      const after = await scrapeRuntime(gateway.url);
      const gatewayRuntime =
        before && after
          ? {
              eventLoopDelayP99Ms: round(after.eventLoopDelayP99Ms, 1),
              eventLoopDelayMaxMs: round(after.eventLoopDelayMaxMs, 1),
              gcPauses: after.gcPauses - before.gcPauses,
              gcPauseTotalMs: round((after.gcSeconds - before.gcSeconds) * 1000, 1),
            }
          : null;
      return { healthz, probePort, gatewayRuntime, proxy: pacedResult(`${gateway.url}${opts.path}`, await proxyRun, proxyDurationSec) };
    },
  );
  for (const p of [
    problemOf('proxy load during healthz phase', underLoad.proxy),
    problemOf('healthz under load', underLoad.healthz),
    problemOf('probe-port healthz under load', underLoad.probePort),
  ]) {
    if (p) problems.push(p);
  }
  if (underLoad.proxy.rps < proxyTargetRps * 0.9) {
    problems.push(`proxy load during healthz phase reached ${Math.round(underLoad.proxy.rps)} req/s of the ${proxyTargetRps} asked`);
  }

  // Added latency: the same paced open-loop client at a fixed rate, straight at the upstream,
  // through the bare proxy and through the gateway, in alternating rounds so that load from
  // other processes falls on all alike (one 10 s window each measured whatever happened on the
  // machine in it); the median of the rounds' percentiles, and the difference to the upstream
  // alone is what each proxy adds.
  const FIXED_ROUNDS = 3;
  const roundSec = Math.max(3, Math.round(opts.durationSec / 2));
  const fixedRuns: Record<'direct' | 'bare' | 'gateway', TargetResult[]> = { direct: [], bare: [], gateway: [] };
  // The gateway's own share of each request (gateway_proxy_overhead_seconds: its time less the
  // upstream wait), over its rounds only: the upstream's tail apart.
  const overheadBefore = new Map<number, number>();
  const overheadAfter = new Map<number, number>();
  const addBuckets = (into: Map<number, number>, from: Map<number, number> | null) => {
    for (const [bound, count] of from ?? []) into.set(bound, (into.get(bound) ?? 0) + count);
  };
  for (let round = 1; round <= FIXED_ROUNDS; round++) {
    for (const [name, server] of [['direct', standIn], ['bare', bare], ['gateway', gateway]] as const) {
      const url = `${server.url}${opts.path}`;
      if (name === 'gateway') addBuckets(overheadBefore, await scrapeHistogram(gateway.url, 'gateway_proxy_overhead_seconds'));
      const r = await phase(`${name}: paced ${opts.fixedRate} req/s (round ${round}/${FIXED_ROUNDS})`, roundSec, () => pacedLoad(url, opts.fixedRate, roundSec, headers));
      if (name === 'gateway') addBuckets(overheadAfter, await scrapeHistogram(gateway.url, 'gateway_proxy_overhead_seconds'));
      const result = pacedResult(url, r, roundSec);
      fixedRuns[name].push(result);
      const p = problemOf(`${name} at ${opts.fixedRate} req/s, round ${round}`, result);
      if (p) problems.push(p);
    }
  }
  const fixed = { direct: medianOfRounds(fixedRuns.direct), bare: medianOfRounds(fixedRuns.bare), gateway: medianOfRounds(fixedRuns.gateway) };

  // MCP tools/call round trips (bench/mcp.ts; the federated call is one more entry of MCP_CALLS there).
  const mcp: McpCallResult[] = [];
  if (opts.mcp) {
    for (const mcpCall of MCP_CALLS) {
      const r = await phase(`mcp: tools/call ${mcpCall.tool} at ${MCP_TABLE_RATE}/s`, opts.durationSec, () =>
        measureMcp(gateway.url, '2026-07-28', gateway, mcpCall, { rate: MCP_TABLE_RATE, durationSec: opts.durationSec, warmup: 100, auth: 'api-key' }),
      );
      mcp.push(r);
      if (r.errors > 0) problems.push(`mcp ${mcpCall.label}: ${r.errors} errors (${r.firstError ?? ''})`);
    }
  }
  // A federated tools/call: a gateway of its own federating the everything server (stdio), its
  // echo through /mcp against the same server called directly, together (bench/mcp.ts).
  let mcpFederated: FederationResult['json'] | null = null;
  if (opts.mcp) {
    mcpFederated = await phase(`mcp: federated tools/call everything__echo at ${MCP_FEDERATED_RATE}/s, and direct`, opts.durationSec + 5, async () => {
      const federating = await startGateway(standIn.url, opts.logLevel, { yaml: federationYaml() });
      try {
        const result = await federationPhase(federating.url, await gatewayCredentials(federating, opts.auth), { rate: MCP_FEDERATED_RATE, durationSec: opts.durationSec, warmup: 300, sessions: 50 });
        return result.json;
      } finally {
        if (federating.pid !== undefined) process.kill(federating.pid, 'SIGINT');
      }
    });
    for (const [name, r] of [['federated', mcpFederated.federated], ['direct', mcpFederated.direct]] as const) {
      if (r.errors > 0) problems.push(`mcp ${name} echo: ${r.errors} errors (${r.firstError ?? ''})`);
    }
  }

  // Memory: a minute at saturation, then idle again.
  let memorySaturated: MemorySample = { rssMiB: null, heapUsedMiB: null };
  let memoryPeakRssMiB: number | null = null;
  if (opts.soakSec > 0) {
    await phase(`gateway: ${opts.soakSec} s at saturation (${generator}, ${opts.soakConnections} connections)`, opts.soakSec, async () => {
      const run = closedLoop(load(`${gateway.url}${opts.path}`, { durationSec: opts.soakSec, connections: opts.soakConnections }));
      const sampler = setInterval(() => {
        const rss = rssMiB(gateway.pid);
        if (rss !== null) memoryPeakRssMiB = Math.max(memoryPeakRssMiB ?? 0, rss);
      }, 1000);
      // Read just before the load ends.
      const sampled = new Promise<void>((resolve) =>
        setTimeout(
          () =>
            void memoryOf(gateway).then((m) => {
              memorySaturated = m;
              resolve();
            }),
          Math.max(0, opts.soakSec * 1000 - 1500),
        ),
      );
      const r = targetResult(gateway.url, await run);
      await sampled;
      clearInterval(sampler);
      const p = problemOf('soak', r);
      if (p) problems.push(p);
    });
  }
  await phase(`gateway: ${opts.settleSec} s idle after the load`, opts.settleSec, () => new Promise((r) => setTimeout(r, opts.settleSec * 1000)));
  const memoryAfter = await memoryOf(gateway);

  await phase('stop servers', 0, () => stopAll());

  const cpuList = cpus();
  const report: Report = {
    date: date.toISOString(),
    gitCommit: commandOutput('git', ['rev-parse', '--short', 'HEAD']),
    machine: {
      node: process.version,
      platform: `${process.platform} ${release()} ${process.arch}`,
      cpuCount: availableParallelism(),
      cpuModel: cpuList[0]?.model.trim() ?? 'unknown',
      totalMemMiB: Math.round(totalmem() / 2 ** 20),
      loadavgAtStart,
      loadavgAtEnd: loadavg().map((n) => round(n, 2)),
      nginx: nginxBin ? commandOutput(nginxBin, ['-v']) : null,
      autocannon: (createRequire(import.meta.url)('autocannon/package.json') as { version: string }).version,
      wrk: wrkBin ? commandOutput(wrkBin, ['-v'])?.split('\n')[0] ?? wrkBin : null,
      gatewayAllocator: gatewayAllocator(),
    },
    settings: {
      path: opts.path,
      loadGenerator: generator,
      connections: opts.connections,
      durationSec: opts.durationSec,
      warmupSec: opts.warmupSec,
      loadFraction: opts.loadFraction,
      healthzRate: opts.healthzRate,
      fixedRate: opts.fixedRate,
      soakSec: opts.soakSec,
      soakConnections: opts.soakConnections,
      settleSec: opts.settleSec,
      workers: opts.workers,
      compareWorkers: opts.compareWorkers,
      auth: opts.auth,
      gatewayLogLevel: opts.logLevel,
      gatewayStdout: '/dev/null',
      nginxWorkers: 1,
    },
    targets: { direct, 'bare-proxy': bareResult, gateway: gw, 'gateway-cached': cached, nginx: ng, 'gateway-workers': results['gateway-workers'] ?? null },
    nginxSkipped,
    ratios: {
      gatewayToDirect: ratio(gw, direct),
      gatewayToBareProxy: ratio(gw, bareResult),
      gatewayToNginx: ng ? ratio(gw, ng) : null,
      cachedToGateway: ratio(cached, gw),
      workersToGateway: results['gateway-workers'] ? ratio(results['gateway-workers'], gw) : null,
    },
    healthzIdle,
    healthzUnderLoad: {
      saturationRps: gw.rps,
      loadFraction: opts.loadFraction,
      proxyTargetRps,
      proxy: underLoad.proxy,
      healthz: underLoad.healthz,
      probePort: underLoad.probePort,
      probePortIdle: probeHealthzIdle,
      gatewayRuntime: underLoad.gatewayRuntime,
      targetP99Ms: HEALTHZ_TARGET_P99_MS,
      pass: underLoad.healthz.errors === 0 && underLoad.healthz.non2xx === 0 && underLoad.healthz.p99 < HEALTHZ_TARGET_P99_MS,
      probePortPass: underLoad.probePort.errors === 0 && underLoad.probePort.non2xx === 0 && underLoad.probePort.p99 < HEALTHZ_TARGET_P99_MS,
    },
    addedLatency: {
      rate: opts.fixedRate,
      rounds: FIXED_ROUNDS,
      direct: fixed.direct,
      bare: fixed.bare,
      gateway: fixed.gateway,
      addedP50Ms: round(fixed.gateway.p50 - fixed.direct.p50, 2),
      addedP99Ms: round(fixed.gateway.p99 - fixed.direct.p99, 2),
      bareAddedP99Ms: round(fixed.bare.p99 - fixed.direct.p99, 2),
      perRound: { direct: fixedRuns.direct.map((r) => r.p99), bare: fixedRuns.bare.map((r) => r.p99), gateway: fixedRuns.gateway.map((r) => r.p99) },
      gatewayOwn: {
        requests: (overheadAfter.get(Infinity) ?? 0) - (overheadBefore.get(Infinity) ?? 0),
        p50AtMostMs: bucketQuantileMs(overheadBefore, overheadAfter, 0.5),
        p99AtMostMs: bucketQuantileMs(overheadBefore, overheadAfter, 0.99),
      },
      targetP99Ms: ADDED_P99_TARGET_MS,
    },
    memory: { idle: memoryIdle, saturated: memorySaturated, peakRssMiB: memoryPeakRssMiB, after: memoryAfter, targetRssMiB: RSS_TARGET_MIB },
    mcp,
    mcpFederated,
    problems,
    phases,
    totalSeconds: round((performance.now() - progress.begun) / 1000, 1),
  };

  process.stdout.write(`\n${renderText(report)}\n`);
  const dir = new URL('./results/', import.meta.url).pathname;
  mkdirSync(dir, { recursive: true });
  const stamp = report.date.replace(/[:.]/g, '-');
  const json = `${JSON.stringify(report, null, 2)}\n`;
  // Written to *.tmp and renamed, so latest.json is never half written.
  for (const name of [`${stamp}.json`, 'latest.json']) {
    writeFileSync(`${dir}${name}.tmp`, json);
    renameSync(`${dir}${name}.tmp`, `${dir}${name}`);
  }
  process.stdout.write(`\nresults: bench/results/${stamp}.json and bench/results/latest.json\n`);
  // Numbers from a run with failed requests are not comparable: say so to scripts and CI too.
  if (problems.length > 0) process.exitCode = 1;
}

let interrupted = false;
process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  // `on`, not `once`: tsx passes a terminal's Ctrl-C on to this process, which therefore gets
  // it twice, and a second default SIGINT would kill it before the servers are stopped.
  process.on(signal, () => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write(`\ngateway bench: ${signal}, stopping servers\n`);
    void stopAll().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  });
}
main().catch(async (err: unknown) => {
  // After Ctrl-C the killed load generators fail main(); the signal handler reports and exits.
  if (interrupted) return;
  process.stderr.write(`\ngateway bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
  await stopAll();
  process.exit(1);
});
