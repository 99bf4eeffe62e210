/**
 * CPU per request of two or more builds of the gateway, for judging a change that is smaller
 * than the difference between two processes of one build. `bench/ab.ts` compares one process
 * per target, and two processes of the same build differed there by up to 17% in CPU per
 * request (each process's JIT and V8's allocation-site pretenuring decide differently). Here
 * each build runs in `--processes` gateways (default 2), every gateway is loaded at the same
 * time by its own wrk (`-t1`) so whatever else runs on the machine weighs on all alike, and
 * each round's CPU time per request is read from /proc/<pid>/stat; the figure of a build is
 * the median over its processes and rounds. Issue 18's fourth pass (bench/README.md) was
 * measured this way.
 *
 * Usage: npm run -s build && npx tsx bench/ab-builds.ts --build DIR --build DIR [--processes 2]
 *          [--rounds 4] [--duration 8] [--warmup 6] [--connections 25] [--path /v1/twin/bench]
 * DIR: a copy of a build (DIR/bin/unified-gateway.js with DIR/dist beside it, inside the
 * repository so its imports resolve), e.g. `mkdir .base && cp -r bin dist .base/` before a change;
 * `.` is the current build. `--path /v1/twin/cached/bench` measures the cached route.
 */
import { parseArgs } from 'node:util';
import { cpuSeconds, findWrk, median, wrk } from './load.js';
import { gatewayCredentials, startGateway, startStandIn, stopAll } from './servers.js';

const { values } = parseArgs({
  options: {
    build: { type: 'string', multiple: true },
    processes: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '4' },
    duration: { type: 'string', default: '8' },
    warmup: { type: 'string', default: '6' },
    connections: { type: 'string', default: '25' },
    path: { type: 'string', default: '/v1/twin/bench' },
  },
});
const builds = values.build ?? [];
if (builds.length < 2) throw new Error('bench/ab-builds.ts: give at least two --build DIR');
const wrkBin = findWrk(process.env.BENCH_WRK);
if (!wrkBin) throw new Error('bench/ab-builds.ts needs wrk on the PATH');
const connections = Number(values.connections);

interface Gateway {
  readonly build: string;
  readonly label: string;
  readonly url: string;
  readonly pid: number | undefined;
  readonly headers: Record<string, string>;
}

async function main(): Promise<void> {
  const standIn = await startStandIn();
  const gateways: Gateway[] = [];
  // Interleaved (A, B, A, B): start order and pid do not line up with the build.
  for (let p = 0; p < Number(values.processes); p++) {
    for (const build of builds) {
      const gw = await startGateway(standIn.url, 'info', { cli: `${build}/bin/unified-gateway.js`, env: { GATEWAY_DRAIN_DELAY_MS: '0' } });
      gateways.push({ build, label: `${build}#${p + 1}`, url: `${gw.url}${values.path}`, pid: gw.pid, headers: await gatewayCredentials(gw, 'bearer') });
    }
  }
  await Promise.all(gateways.map((g) => wrk(wrkBin!, { url: g.url, connections, durationSec: Number(values.warmup), headers: g.headers })));
  const perBuild = new Map<string, number[]>(builds.map((b) => [b, []]));
  for (let r = 0; r < Number(values.rounds); r++) {
    const results = await Promise.all(
      gateways.map(async (g) => {
        const before = cpuSeconds(g.pid);
        const res = await wrk(wrkBin!, { url: g.url, connections, durationSec: Number(values.duration), headers: g.headers });
        if (res.errors + res.timeouts + res.non2xx > 0) throw new Error(`${g.label}: errors ${res.errors}, timeouts ${res.timeouts}, non-2xx ${res.non2xx}`);
        return { g, us: ((cpuSeconds(g.pid) - before) * 1e6) / res.requests.total, rps: res.requests.average };
      }),
    );
    for (const { g, us } of results) perBuild.get(g.build)!.push(us);
    process.stdout.write(`round ${r + 1}: ${results.map(({ g, us, rps }) => `${g.label} ${Math.round(rps)} req/s ${us.toFixed(0)} µs`).join(' | ')}\n`);
  }
  const first = median(perBuild.get(builds[0]!)!);
  for (const [build, us] of perBuild) {
    const m = median(us);
    process.stdout.write(`${build}: median ${m.toFixed(0)} µs CPU/request (${us.map((x) => x.toFixed(0)).join(', ')}), ${(m / first).toFixed(2)}x ${builds[0]}\n`);
  }
}

try {
  await main();
} finally {
  await stopAll();
}
