/**
 * WebSocket benchmark (`npm run bench:ws`, see bench/README.md): N concurrent WebSocket
 * connections to the echo stand-in, open loop at R messages per second in total (spread
 * round robin over the connections), each message's echo round trip measured from the
 * send to its echo. The same client measures, in one run and alternating rounds, straight to
 * the stand-in ("direct") and through the gateway (`/v1/twin/ws`, API key on the upgrade);
 * the difference of the p99s is what the gateway adds. A third target, a bare `ws` relay
 * (bench/ws-bare-relay.ts), shows what any Node relay adds on the same machine (a third process,
 * two more socket hops, its own GC), as the bare-proxy column does for HTTP. Short alternating
 * rounds (6 x 4 s) so that load from other processes on the machine falls on all targets alike. Before the load it also reports the
 * gateway's memory per idle connection: its RSS with N idle proxied connections open minus
 * before, divided by N (each proxied connection is two sockets in the gateway: the client's
 * and the upstream's).
 */
import { readFileSync } from 'node:fs';
import { cpus, loadavg, setPriority } from 'node:os';
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';
import { atFixedRate, positiveOption, scrapeRuntime } from './load.js';
import { startBareWsRelay, startGateway, startStandIn, stopAll, SUPPORTING_PROCESS_NICE } from './servers.js';

const HELP = `usage: npm run bench:ws -- [options]    (each option can also come from its BENCH_WS_* variable)

  --connections <n>  concurrent WebSocket connections per target   BENCH_WS_CONNECTIONS  1000
  --rate <n>         messages per second in total (open loop)     BENCH_WS_RATE         1000
  --duration <s>     measured seconds per round and target        BENCH_WS_DURATION     4
  --rounds <n>       rounds (direct, bare relay, gateway, each)    BENCH_WS_ROUNDS       6
  --help
`;

function options() {
  const { values } = parseArgs({
    options: { connections: { type: 'string' }, rate: { type: 'string' }, duration: { type: 'string' }, rounds: { type: 'string' }, help: { type: 'boolean' } },
  });
  if (values.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  return {
    connections: positiveOption(values.connections, 'BENCH_WS_CONNECTIONS', 1000),
    rate: positiveOption(values.rate, 'BENCH_WS_RATE', 1000),
    duration: positiveOption(values.duration, 'BENCH_WS_DURATION', 4),
    rounds: positiveOption(values.rounds, 'BENCH_WS_ROUNDS', 6),
  };
}

/** CPU time (user + system) of a process so far, in ms, from /proc/<pid>/stat (clock ticks of 10 ms). */
const cpuMsOf = (pid: number) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
};
const rssOf = (pid: number) => Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The gateway's GC pauses so far by kind (prom-client's nodejs_gc_duration_seconds_count: minor, major, incremental, weakcb). */
async function gcCounts(baseUrl: string): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  try {
    const text = await (await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    for (const m of text.matchAll(/^nodejs_gc_duration_seconds_count\{kind="(\w+)"\} (\d+)/gm)) counts[m[1]!] = Number(m[2]);
  } catch {
    // no figures this round
  }
  return counts;
}

/** Open `n` connections, a few hundred at a time (the accept queue is finite). */
async function openAll(url: string, n: number, headers: Record<string, string>): Promise<WebSocket[]> {
  const sockets: WebSocket[] = [];
  for (let i = 0; i < n; i += 200) {
    const batch = Array.from({ length: Math.min(200, n - i) }, () => {
      const ws = new WebSocket(url, { headers, perMessageDeflate: false });
      return new Promise<WebSocket>((resolve, reject) => {
        ws.once('open', () => resolve(ws));
        ws.once('error', reject);
        ws.once('unexpected-response', (_req, res) => reject(new Error(`${url}: upgrade answered ${res.statusCode}`)));
      });
    });
    sockets.push(...(await Promise.all(batch)));
  }
  return sockets;
}

interface Result {
  readonly target: string;
  readonly sent: number;
  readonly echoed: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
}

const quantile = (sorted: readonly number[], q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? NaN;
const ms = (n: number) => Math.round(n * 100) / 100;

/** R messages a second over the sockets, round robin; each echo's round trip in ms. */
async function measure(target: string, sockets: WebSocket[], rate: number, durationSec: number, into: number[]): Promise<{ sent: number; echoed: number }> {
  const pending = new Map<string, { resolve: () => void; at: number }>();
  const onMessage = (data: Buffer) => {
    const key = data.toString();
    const p = pending.get(key);
    if (p === undefined) return;
    pending.delete(key);
    into.push(performance.now() - p.at);
    p.resolve();
  };
  for (const ws of sockets) ws.on('message', onMessage);
  let seq = 0;
  let echoed = 0;
  const sent = await atFixedRate(rate, durationSec, () => {
    const ws = sockets[seq % sockets.length]!;
    const key = `${target}:${seq++}:${'x'.repeat(16)}`;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        pending.delete(key);
        resolve();
      }, 10_000);
      pending.set(key, {
        at: performance.now(),
        resolve: () => {
          clearTimeout(timer);
          echoed += 1;
          resolve();
        },
      });
      ws.send(key);
    });
  });
  for (const ws of sockets) ws.off('message', onMessage);
  return { sent, echoed };
}

function summary(target: string, sent: number, echoed: number, latencies: number[]): Result {
  latencies.sort((a, b) => a - b);
  return { target, sent, echoed, p50: ms(quantile(latencies, 0.5)), p90: ms(quantile(latencies, 0.9)), p99: ms(quantile(latencies, 0.99)), max: ms(latencies.at(-1) ?? NaN) };
}

async function main(): Promise<void> {
  const opts = options();
  const standIn = await startStandIn();
  const gateway = await startGateway(standIn.url, 'info', {
    // Every connection comes from 127.0.0.1, and each holds an in-flight slot (backpressure counts WebSockets).
    env: { REQUEST_QUEUE_SIZE: String(opts.connections * 2), GATEWAY_DRAIN_DELAY_MS: '0', ...(process.env.BENCH_WS_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_WS_NODE_OPTIONS } : {}) },
    yaml: `server:\n  maxConnectionsPerIp: 0\nwebsockets:\n  messagesPerSecond: 0\n`,
  });
  // This process is the load generator: like the bench's other generators it yields the CPU to the gateway.
  setPriority(process.pid, SUPPORTING_PROCESS_NICE);
  const bareRelay = await startBareWsRelay(standIn.url);
  const directUrl = `${standIn.url.replace('http', 'ws')}/v1/twin/ws`;
  const bareUrl = `${bareRelay.url.replace('http', 'ws')}/v1/twin/ws`;
  const gatewayUrl = `${gateway.url.replace('http', 'ws')}/v1/twin/ws`;
  const auth = { 'x-api-key': gateway.apiKey };

  process.stderr.write(`opening ${opts.connections} connections to each target...\n`);
  await sleep(1000);
  const rssBefore = rssOf(gateway.pid);
  const viaGateway = await openAll(gatewayUrl, opts.connections, auth);
  await sleep(3000); // idle: let allocation settle
  const rssIdle = rssOf(gateway.pid);
  const direct = await openAll(directUrl, opts.connections, {});
  const viaBare = await openAll(bareUrl, opts.connections, {});

  const latencies: Record<'direct' | 'bare-relay' | 'gateway', number[]> = { direct: [], 'bare-relay': [], gateway: [] };
  const counts = { direct: { sent: 0, echoed: 0 }, 'bare-relay': { sent: 0, echoed: 0 }, gateway: { sent: 0, echoed: 0 } };
  let gatewayCpuMs = 0;
  let loopP99Max = 0;
  let loopMax = 0;
  let gcSeconds = 0;
  const gcKinds: Record<string, number> = {};
  // Warm-up (unmeasured), then alternating rounds so drift hits both targets alike.
  await measure('warm-d', direct, opts.rate, 2, []);
  await measure('warm-b', viaBare, opts.rate, 2, []);
  await measure('warm-g', viaGateway, opts.rate, 2, []);
  for (let round = 1; round <= opts.rounds; round++) {
    for (const [name, sockets] of [['direct', direct], ['bare-relay', viaBare], ['gateway', viaGateway]] as const) {
      process.stderr.write(`round ${round}: ${name}, ${opts.rate} msg/s over ${sockets.length} connections for ${opts.duration} s\n`);
      const cpuBefore = cpuMsOf(gateway.pid);
      const runtimeBefore = name === 'gateway' ? await scrapeRuntime(gateway.url) : null; // also resets the event-loop histogram
      const gcBefore = name === 'gateway' ? await gcCounts(gateway.url) : {};
      const r = await measure(name, sockets, opts.rate, opts.duration, latencies[name]);
      if (name === 'gateway') {
        gatewayCpuMs += cpuMsOf(gateway.pid) - cpuBefore;
        const runtime = await scrapeRuntime(gateway.url);
        for (const [kind, n] of Object.entries(await gcCounts(gateway.url))) gcKinds[kind] = (gcKinds[kind] ?? 0) + n - (gcBefore[kind] ?? 0);
        if (runtime !== null && runtimeBefore !== null) {
          loopP99Max = Math.max(loopP99Max, runtime.eventLoopDelayP99Ms);
          loopMax = Math.max(loopMax, runtime.eventLoopDelayMaxMs);
          gcSeconds += runtime.gcSeconds - runtimeBefore.gcSeconds;
        }
      }
      counts[name].sent += r.sent;
      counts[name].echoed += r.echoed;
    }
  }
  const d = summary('direct', counts.direct.sent, counts.direct.echoed, latencies.direct);
  const b = summary('bare-relay', counts['bare-relay'].sent, counts['bare-relay'].echoed, latencies['bare-relay']);
  const g = summary('gateway', counts.gateway.sent, counts.gateway.echoed, latencies.gateway);
  const perConnection = (rssIdle - rssBefore) / opts.connections;

  const line = (r: Result) => `${r.target.padEnd(10)} ${String(r.sent).padStart(7)} ${String(r.echoed).padStart(7)} ${String(r.p50).padStart(8)} ${String(r.p90).padStart(8)} ${String(r.p99).padStart(8)} ${String(r.max).padStart(8)}`;
  process.stdout.write(
    [
      `WebSocket echo round trip: ${opts.connections} connections per target, ${opts.rate} msg/s in total, ${opts.rounds} x ${opts.duration} s per target`,
      `target        sent  echoed  p50 ms   p90 ms   p99 ms   max ms`,
      line(d),
      line(b),
      line(g),
      `gateway adds at p99: ${ms(g.p99 - d.p99)} ms (p50: ${ms(g.p50 - d.p50)} ms); a bare ws relay adds ${ms(b.p99 - d.p99)} ms (p50: ${ms(b.p50 - d.p50)} ms)`,
      `gateway CPU while relaying: ${ms(gatewayCpuMs / (opts.rounds * opts.duration) / 10)}% of one core (${ms((gatewayCpuMs * 1000) / Math.max(1, counts.gateway.sent))} µs per echoed message, both directions); load average ${loadavg()[0]!.toFixed(1)} on ${cpus().length} cores`,
      `gateway event loop while relaying: delay p99 up to ${ms(loopP99Max)} ms, max ${ms(loopMax)} ms (per round); GC ${ms(gcSeconds * 1000)} ms in ${opts.rounds * opts.duration} s (${Object.entries(gcKinds).map(([kind, n]) => `${kind} ${n}`).join(', ') || 'no counts'})`,
      `gateway memory per idle proxied connection: ${(perConnection / 1024).toFixed(1)} KiB (RSS ${(rssBefore / 1048576).toFixed(1)} MiB -> ${(rssIdle / 1048576).toFixed(1)} MiB with ${opts.connections} idle connections)`,
      '',
    ].join('\n'),
  );
  for (const ws of [...direct, ...viaBare, ...viaGateway]) ws.terminate();
  const failed = d.echoed < d.sent || b.echoed < b.sent || g.echoed < g.sent;
  await stopAll();
  process.exit(failed ? 1 : 0);
}

main().catch(async (err: unknown) => {
  process.stderr.write(`bench:ws failed: ${(err as Error).stack ?? String(err)}\n`);
  await stopAll();
  process.exit(1);
});
