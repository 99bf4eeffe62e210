/**
 * Issue 15: proxy throughput with the operational-memory recorder on vs off, in one run
 * (`npx tsx bench/memory.ts`, after `npm run build`; --help). Two gateways against the same
 * stand-in: one without MCP servers, one with the memory server (the pool's preset) and the
 * recorder flushing every second (60 times its default), so its background work (the metrics
 * scrape, the interval summary, the MCP writes, the decision aggregate of /v1/query) is as
 * busy as it gets. Closed-loop autocannon rounds alternate off/on (the order flips every
 * round) so a drift of the shared machine hits both alike; the verdict compares the on/off
 * ratio with the round-to-round spread of the same gateway (the noise of this run).
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { setPriority } from 'node:os';
import { parseArgs } from 'node:util';
import { autocannon, median, positiveOption } from './load.js';
import { gatewayCredentials, killAll, startGateway, startStandIn, stopAll, SUPPORTING_PROCESS_NICE, type GatewayServer } from './servers.js';

const HELP = `usage: npx tsx bench/memory.ts [options]

  --duration <s>      measured seconds per round and gateway   BENCH_MEM_DURATION     5
  --warmup <s>        unmeasured seconds before each round     BENCH_MEM_WARMUP       2
  --rounds <n>        rounds (each measures off and on)        BENCH_MEM_ROUNDS       3
  --connections <n>   autocannon connections                   BENCH_MEM_CONNECTIONS  20
`;

const { values } = parseArgs({
  options: { duration: { type: 'string' }, warmup: { type: 'string' }, rounds: { type: 'string' }, connections: { type: 'string' }, help: { type: 'boolean', default: false } },
});
if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
const duration = positiveOption(values.duration, 'BENCH_MEM_DURATION', 5);
const warmup = positiveOption(values.warmup, 'BENCH_MEM_WARMUP', 2);
const rounds = positiveOption(values.rounds, 'BENCH_MEM_ROUNDS', 3);
const connections = positiveOption(values.connections, 'BENCH_MEM_CONNECTIONS', 20);

process.on('exit', killAll);
process.on('SIGINT', () => void stopAll().finally(() => process.exit(130)));

const recorderYaml = `mcp:
  dataDir: \${TMP}
  servers:
    memory: { preset: memory }
  memory:
    flushSeconds: 1
    flushEvents: 50
rateLimit:
  enabled: false
`;
const plainYaml = 'rateLimit:\n  enabled: false\n';

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
/** Spread of one gateway's rounds: (max - min) / mean. */
const spread = (xs: readonly number[]) => (Math.max(...xs) - Math.min(...xs)) / mean(xs);

async function main(): Promise<void> {
  const upstream = await startStandIn();
  const off = await startGateway(upstream.url, 'warn', { yaml: plainYaml });
  const on = await startGateway(upstream.url, 'warn', { yaml: recorderYaml });
  const gateways: Record<'off' | 'on', GatewayServer> = { off, on };
  // The recorder's memory server is connected and writing before measuring.
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const text = await (await fetch(`${on.url}/metrics`, { headers: { 'x-api-key': on.apiKey } })).text();
    if (/gateway_memory_events_total\{outcome="written"\} [1-9]/.test(text)) break;
    await fetch(`${on.url}/v1/twin/warm`, { headers: { 'x-api-key': on.apiKey } }).then((r) => r.arrayBuffer());
    await new Promise((r) => setTimeout(r, 250));
  }
  const paths = [
    { name: 'proxy GET /v1/twin/bench', path: '/v1/twin/bench', method: 'GET' as const },
    { name: 'routed POST /v1/query', path: '/v1/query', method: 'POST' as const },
  ];
  const results: Array<{ path: string; off: number[]; on: number[]; cpuOff: number[]; cpuOn: number[] }> = [];
  for (const p of paths) {
    const row = { path: p.name, off: [] as number[], on: [] as number[], cpuOff: [] as number[], cpuOn: [] as number[] };
    for (let r = 0; r < rounds; r++) {
      for (const which of r % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const)) {
        const gw = gateways[which];
        const headers = { ...(await gatewayCredentials(gw, 'api-key')), ...(p.method === 'POST' ? { 'content-type': 'application/json' } : {}) };
        const url = `${gw.url}${p.path}`;
        const load = (durationSec: number) => autocannon({ url, connections, durationSec, headers });
        let rate: number;
        let cpu0: number;
        if (p.method === 'POST') {
          // autocannon's CLI takes the method and body as flags; load.ts drives GETs only, so POST goes through its -m/-b.
          await autocannonPost(url, headers, warmup);
          cpu0 = await cpuSeconds(gw);
          rate = await autocannonPost(url, headers, duration);
        } else {
          await load(warmup);
          cpu0 = await cpuSeconds(gw);
          const res = await load(duration);
          if (res.non2xx > 0 || res.errors > 0) throw new Error(`${which} ${p.path}: ${res.non2xx} non-2xx, ${res.errors} errors`);
          rate = res.requests.average;
        }
        const cpu = (await cpuSeconds(gw)) - cpu0;
        row[which].push(rate);
        // The gateway's own CPU time per request (µs): what bounds its throughput, and far less
        // sensitive than req/s to other processes taking the shared cores.
        row[which === 'off' ? 'cpuOff' : 'cpuOn'].push((cpu / (rate * duration)) * 1e6);
      }
    }
    results.push(row);
  }
  const metrics = await (await fetch(`${on.url}/metrics`, { headers: { 'x-api-key': on.apiKey } })).text();
  const written = /gateway_memory_events_total\{outcome="written"\} (\d+)/.exec(metrics)?.[1] ?? '0';
  const dropped = /gateway_memory_events_total\{outcome="dropped"\} (\d+)/.exec(metrics)?.[1] ?? '0';
  process.stdout.write(`\nrecorder on vs off (${rounds} rounds x ${duration} s, ${connections} connections; memory events written ${written}, dropped ${dropped})\n`);
  process.stdout.write('| path | off req/s (rounds) | on req/s (rounds) | on/off | noise (max spread) | CPU µs/request off / on (ratio) | verdict |\n|---|---|---|---|---|---|---|\n');
  let ok = true;
  for (const r of results) {
    const ratio = mean(r.on) / mean(r.off);
    const noise = Math.max(spread(r.off), spread(r.on), 0.03);
    const cpuRatio = median(r.cpuOn) / median(r.cpuOff);
    const cpuNoise = Math.max(spread(r.cpuOff), spread(r.cpuOn), 0.03);
    const within = Math.abs(1 - ratio) <= noise && Math.abs(1 - cpuRatio) <= cpuNoise;
    ok &&= within;
    const fmt = (xs: number[]) => `${Math.round(mean(xs))} (${xs.map((x) => Math.round(x)).join(', ')})`;
    process.stdout.write(
      `| ${r.path} | ${fmt(r.off)} | ${fmt(r.on)} | ${ratio.toFixed(3)} | ±${(noise * 100).toFixed(1)}% | ${Math.round(median(r.cpuOff))} / ${Math.round(median(r.cpuOn))} (${cpuRatio.toFixed(3)}, noise ±${(cpuNoise * 100).toFixed(1)}%) | ${within ? 'within noise' : 'OUTSIDE noise'} |\n`,
    );
  }
  await stopAll();
  process.exitCode = ok ? 0 : 1;
}

/** The gateway process's CPU seconds so far (prom-client's process_cpu_seconds_total). */
async function cpuSeconds(gw: GatewayServer): Promise<number> {
  const text = await (await fetch(`${gw.url}/metrics`, { headers: { 'x-api-key': gw.apiKey } })).text();
  const m = /^process_cpu_seconds_total (\S+)$/m.exec(text);
  if (m === null) throw new Error('no process_cpu_seconds_total on /metrics');
  return Number(m[1]);
}

/** POST with a JSON body through autocannon's CLI (requests/s average). */
async function autocannonPost(url: string, headers: Record<string, string>, durationSec: number): Promise<number> {
  const cli = createRequire(import.meta.url).resolve('autocannon/autocannon.js');
  const args = [cli, '--json', '-c', String(connections), '-d', String(durationSec), '-m', 'POST', '-b', JSON.stringify({ query: 'remind me to call my sister tomorrow evening' })];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}=${v}`);
  args.push(url);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'ignore'] });
  if (child.pid !== undefined) setPriority(child.pid, SUPPORTING_PROCESS_NICE);
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  await new Promise((r) => child.once('exit', r));
  const res = JSON.parse(out) as { requests: { average: number }; non2xx: number; errors: number };
  if (res.non2xx > 0 || res.errors > 0) throw new Error(`POST ${url}: ${res.non2xx} non-2xx, ${res.errors} errors`);
  return res.requests.average;
}

main().catch(async (err) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  await stopAll();
  process.exit(2);
});
