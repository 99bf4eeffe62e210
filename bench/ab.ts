/**
 * Side-by-side throughput and CPU cost of the gateway against the bare @fastify/http-proxy (and,
 * optionally, a baseline build of the gateway), for judging one change on a shared machine:
 * the targets take turns in rounds of wrk (`-t1`), the order rotating each round, and besides
 * req/s each gateway's CPU time per request is read from /proc/<pid>/stat (user + system), which
 * other processes on the cores disturb far less than req/s.
 *
 * Usage: npm run -s build && npx tsx bench/ab.ts [--rounds 3] [--duration 8] [--warmup 5]
 *          [--connections 50] [--base DIR] [--cpu-prof DIR] [--auth bearer|api-key] [--concurrent]
 * --base DIR: a copy of an earlier build (DIR/bin/unified-gateway.js with DIR/dist beside it,
 * inside the repository so its imports resolve), shown as the `base` column.
 * --cpu-prof DIR: the (new) gateway and the bare proxy write V8 CPU profiles there when they exit.
 * --node-flags / --base-node-flags "...": more Node/V8 flags for the gateway / the base (e.g. GC
 * settings; with --base . both run this build).
 */
import { parseArgs } from 'node:util';
import { cpuSeconds, findWrk, median, wrk } from './load.js';
import { gatewayCredentials, startBareProxy, startGateway, startStandIn, stopAll, type AuthMode, type Server } from './servers.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '8' },
    warmup: { type: 'string', default: '5' },
    connections: { type: 'string', default: '50' },
    base: { type: 'string' },
    'cpu-prof': { type: 'string' },
    auth: { type: 'string', default: 'bearer' },
    path: { type: 'string', default: '/v1/twin/bench' },
    concurrent: { type: 'boolean', default: false },
    'node-flags': { type: 'string', default: '' },
    'base-node-flags': { type: 'string', default: '' },
  },
});
const rounds = Number(values.rounds);
const duration = Number(values.duration);
const connections = Number(values.connections);
const wrkBin = findWrk(process.env.BENCH_WRK);
if (!wrkBin) throw new Error('bench/ab.ts needs wrk on the PATH');

type Target = Server & { headers: Record<string, string> };

async function main(): Promise<void> {
  const standIn = await startStandIn();
  const targets: Target[] = [];
  const profFlags = values['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${values['cpu-prof']}`] : [];
  const flags = (v: string | undefined) => (v ?? '').split(' ').filter(Boolean);
  const nodeFlags = [...profFlags, ...flags(values['node-flags'])];
  const bare = await startBareProxy(standIn.url, profFlags);
  targets.push({ ...bare, headers: {} });
  // No drain delay: the profile is written when the gateway exits, before stopAll's SIGKILL.
  const gw = await startGateway(standIn.url, 'info', { nodeFlags, env: { GATEWAY_DRAIN_DELAY_MS: '0' } });
  targets.push({ ...gw, headers: await gatewayCredentials(gw, values.auth as AuthMode) });
  if (values.base) {
    const base = await startGateway(standIn.url, 'info', { cli: `${values.base}/bin/unified-gateway.js`, nodeFlags: flags(values['base-node-flags']), env: { GATEWAY_DRAIN_DELAY_MS: '0' } });
    targets.push({ ...base, name: 'base', headers: await gatewayCredentials(base, values.auth as AuthMode) });
  }
  const url = (t: Target) => `${t.url}${values.path}`;
  for (const t of targets) await wrk(wrkBin!, { url: url(t), connections, durationSec: Number(values.warmup), headers: t.headers });

  const rps = new Map<string, number[]>(targets.map((t) => [t.name, []]));
  const cpu = new Map<string, number[]>(targets.map((t) => [t.name, []]));
  for (let r = 0; r < rounds; r++) {
    const order = targets.map((_, i) => targets[(i + r) % targets.length]!);
    const line: string[] = [];
    const measure = async (t: Target) => {
      const before = cpuSeconds(t.pid);
      const res = await wrk(wrkBin!, { url: url(t), connections, durationSec: duration, headers: t.headers });
      const used = cpuSeconds(t.pid) - before;
      if (res.errors + res.timeouts + res.non2xx > 0) throw new Error(`${t.name}: errors ${res.errors}, timeouts ${res.timeouts}, non-2xx ${res.non2xx}`);
      const us = (used * 1e6) / res.requests.total;
      rps.get(t.name)!.push(res.requests.average);
      cpu.get(t.name)!.push(us);
      line.push(`${t.name} ${Math.round(res.requests.average)} req/s ${us.toFixed(0)} µs CPU/req p99 ${res.latency.p99.toFixed(2)} ms`);
    };
    // --concurrent: every target under load at the same time, so that whatever else runs on the
    // machine weighs on all of them alike (the CPU time per request is then the fairest figure).
    if (values.concurrent) await Promise.all(order.map(measure));
    else for (const t of order) await measure(t);
    const byName = (n: string) => rps.get(n)![r]!;
    const ratios = [`gateway/bare ${(byName('gateway') / byName('bare-proxy')).toFixed(3)}`];
    if (values.base) ratios.push(`gateway/base ${(byName('gateway') / byName('base')).toFixed(3)}`);
    process.stdout.write(`round ${r + 1}: ${line.join(' | ')} | ${ratios.join(' ')}\n`);
  }
  const summary: string[] = [];
  for (const t of targets) summary.push(`${t.name} median ${Math.round(median(rps.get(t.name)!))} req/s, ${median(cpu.get(t.name)!).toFixed(0)} µs CPU/req`);
  const ratioMedian = (a: string, b: string) => median(rps.get(a)!.map((x, i) => x / rps.get(b)![i]!)).toFixed(3);
  const cpuRatio = (a: string, b: string) => median(cpu.get(a)!.map((x, i) => x / cpu.get(b)![i]!)).toFixed(3);
  summary.push(`median gateway/bare req/s ${ratioMedian('gateway', 'bare-proxy')}, CPU/req ${cpuRatio('gateway', 'bare-proxy')}`);
  if (values.base) summary.push(`median gateway/base req/s ${ratioMedian('gateway', 'base')}, CPU/req ${cpuRatio('gateway', 'base')}`);
  process.stdout.write(`${summary.join('\n')}\n`);
}

try {
  await main();
} finally {
  await stopAll();
}
