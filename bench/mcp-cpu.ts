/**
 * Gateway CPU time per federated `tools/call` (issue 14's hot path), against `/healthz`: the
 * everything server federated over stdio, N sequential echo calls through /mcp (2026-07-28
 * requests, as bench/mcp.ts sends them), the gateway's user+system time read from /proc before
 * and after. CPU time per request is far less disturbed by the other processes on a shared
 * machine than latency, so it judges one change of the path; the acceptance figure stays
 * bench/mcp.ts's latency comparison.
 *
 * Usage: npm run -s build && npx tsx bench/mcp-cpu.ts [--calls 1000] [--rounds 8] [--base DIR] [--paced RATE]
 * --paced RATE: the calls of each round at RATE/s (open loop, as bench/mcp.ts) instead of one
 * after the other; then each round's p50/p99 compare the builds' latency in the same window.
 * --base DIR: an earlier build (DIR/bin/unified-gateway.js with DIR/dist beside it, inside the
 * repository so its imports resolve) measured in the same rounds, taking turns with this one.
 * (BENCH_MCP_NODE_OPTIONS: Node flags of the gateway, e.g. --cpu-prof --cpu-prof-dir=/tmp/p)
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { join, resolve } from 'node:path';
import { atFixedRate } from './load.js';
import { gatewayCredentials, startGateway, startStandIn, stopAll } from './servers.js';

const { values } = parseArgs({ options: { calls: { type: 'string', default: '1000' }, rounds: { type: 'string', default: '8' }, warmup: { type: 'string', default: '2000' }, base: { type: 'string' }, paced: { type: 'string' } } });
const calls = Number(values.calls);
const rounds = Number(values.rounds);
const warmup = Number(values.warmup);
const EVERYTHING = createRequire(import.meta.url).resolve('@modelcontextprotocol/server-everything/dist/index.js');
const TICKS = 100; // USER_HZ on Linux

function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS;
}

interface Target {
  readonly name: string;
  readonly pid: number;
  echo(): Promise<void>;
  health(): Promise<void>;
  close(): Promise<void>;
}

async function target(name: string, upstreamUrl: string, cli?: string): Promise<Target> {
  const nodeOptions = process.env.BENCH_MCP_NODE_OPTIONS;
  const gateway = await startGateway(upstreamUrl, 'info', {
    yaml: `mcp:\n  servers:\n    everything:\n      command: ${JSON.stringify(process.execPath)}\n      args: [${JSON.stringify(EVERYTHING)}, stdio]\n`,
    ...(cli !== undefined ? { cli } : {}),
    ...(nodeOptions ? { env: { NODE_OPTIONS: nodeOptions, GATEWAY_DRAIN_DELAY_MS: '0' } } : {}),
  });
  const credentials = await gatewayCredentials(gateway, 'api-key');
  for (const deadline = Date.now() + 30_000; ; ) {
    const health = (await (await fetch(`${gateway.url}/healthz`, { headers: credentials })).json()) as { mcpServers?: Record<string, { state?: string }> };
    if (health.mcpServers?.everything?.state === 'ready') break;
    if (Date.now() > deadline) throw new Error('the everything server did not connect');
    await new Promise((r) => setTimeout(r, 100));
  }
  const pool = new Pool(gateway.url, { connections: 4 });
  const meta = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientInfo': { name: 'bench', version: '1' }, 'io.modelcontextprotocol/clientCapabilities': {} };
  const headers = { ...credentials, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'everything__echo' };
  let id = 1;
  return {
    name,
    pid: gateway.pid,
    echo: async () => {
      const res = await pool.request({ path: '/mcp', method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: id++, method: 'tools/call', params: { name: 'everything__echo', arguments: { message: 'bench' }, _meta: meta } }) });
      const text = await res.body.text();
      if (res.statusCode !== 200 || !text.includes('Echo: bench')) throw new Error(`unexpected answer ${res.statusCode}: ${text.slice(0, 300)}`);
    },
    health: async () => {
      const res = await pool.request({ path: '/healthz', method: 'GET', headers: credentials });
      await res.body.dump();
    },
    close: () => pool.close(),
  };
}

async function main(): Promise<void> {
  const standIn = await startStandIn();
  const targets = [await target('this build', standIn.url)];
  if (values.base !== undefined) targets.push(await target(`base ${values.base}`, standIn.url, join(resolve(values.base), 'bin', 'unified-gateway.js')));
  const measure = async (t: Target, one: () => Promise<void>) => {
    const before = cpuMs(t.pid);
    const lat: number[] = [];
    const timed = async () => {
      const started = performance.now();
      await one();
      lat.push(performance.now() - started);
    };
    if (values.paced !== undefined) await atFixedRate(Number(values.paced), calls / Number(values.paced), timed);
    else for (let n = 0; n < calls; n++) await timed();
    lat.sort((a, b) => a - b);
    const at = (q: number) => lat[Math.min(lat.length - 1, Math.ceil(q * lat.length) - 1)]!.toFixed(2);
    return { cpuUs: Math.round(((cpuMs(t.pid) - before) * 1000) / lat.length), p50: at(0.5), p99: at(0.99) };
  };
  for (const t of targets) {
    for (let n = 0; n < warmup; n++) await t.echo();
    for (let n = 0; n < warmup; n++) await t.health();
  }
  const differences = new Map<Target, number[]>(targets.map((t) => [t, []]));
  for (let r = 1; r <= rounds; r++) {
    // Turns rotate each round, so a busy stretch of the machine does not always hit the same target.
    for (const t of r % 2 === 1 ? targets : [...targets].reverse()) {
      const e = await measure(t, t.echo);
      const h = await measure(t, t.health);
      differences.get(t)!.push(e.cpuUs - h.cpuUs);
      process.stdout.write(`round ${r} ${t.name.padEnd(18)} federated echo ${e.cpuUs} us CPU/call (p50 ${e.p50} p99 ${e.p99} ms); /healthz ${h.cpuUs} us (p50 ${h.p50} p99 ${h.p99} ms); difference ${e.cpuUs - h.cpuUs} us\n`);
    }
  }
  for (const [t, d] of differences) {
    const sorted = [...d].sort((a, b) => a - b);
    process.stdout.write(`${t.name.padEnd(18)} median CPU of a federated echo beyond /healthz: ${sorted[Math.floor(sorted.length / 2)]} us (rounds: ${d.join(', ')})\n`);
  }
  for (const t of targets) await t.close();
}

try {
  await main();
} finally {
  await stopAll();
}
