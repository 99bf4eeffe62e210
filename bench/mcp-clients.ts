/**
 * Pool overhead (`npm exec -- tsx bench/mcp-clients.ts`): the everything server's `echo` over
 * stdio, called through the gateway's McpClientPool (breaker, deadline, origin tracking,
 * metrics) and through a bare SDK v2 client to a second copy of the same server, at a fixed
 * rate (open loop), the two interleaved call by call so both see the same machine. Prints p50
 * and p99 of each and the difference. Federation's /mcp overhead is measured on top of this.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { Registry } from 'prom-client';
import { McpClientPool } from '../mcp/clients/pool.js';
import { loadConfig } from '../src/config/index.js';
import { atFixedRate, positiveOption } from './load.js';

const { values } = parseArgs({ options: { rate: { type: 'string' }, duration: { type: 'string' }, warmup: { type: 'string' } } });
const rate = positiveOption(values.rate, 'BENCH_MCP_CLIENTS_RATE', 100);
const duration = positiveOption(values.duration, 'BENCH_MCP_CLIENTS_DURATION', 10);
const warmup = positiveOption(values.warmup, 'BENCH_MCP_CLIENTS_WARMUP', 300);

const require = createRequire(import.meta.url);
const everything = join(require.resolve('@modelcontextprotocol/server-everything/package.json'), '..', 'dist', 'index.js');

const file = await import('node:fs').then((fs) => {
  const dir = fs.mkdtempSync(join((process.env.TMPDIR ?? '/tmp'), 'bench-mcp-clients-'));
  const f = join(dir, 'gateway.yaml');
  fs.writeFileSync(f, `mcp:\n  servers:\n    everything:\n      command: ${process.execPath}\n      args: [${everything}, stdio]\n`);
  return f;
});
const withServer = loadConfig({ PATH: process.env.PATH ?? '' }, { file });
if (!withServer.ok) throw new Error(withServer.problems.join('\n'));

const quiet = { info: () => {}, warn: () => {}, debug: () => {} };
const pool = new McpClientPool(withServer.config.mcp, { log: quiet, registry: new Registry() });
pool.start();
await pool.settled();
if (!pool.isReady('everything')) throw new Error(`pool not ready: ${pool.server('everything')?.lastError}`);

const direct = new Client({ name: 'bench-direct', version: '1.0.0' });
await direct.connect(new StdioClientTransport({ command: process.execPath, args: [everything, 'stdio'], stderr: 'ignore' }));

const viaPool = () => pool.callTool('everything', 'echo', { message: 'bench' }, { origin: 'bench' });
const viaSdk = () => direct.callTool({ name: 'echo', arguments: { message: 'bench' } });

for (let i = 0; i < warmup; i++) await Promise.all([viaPool(), viaSdk()]);

const samples = { pool: [] as number[], sdk: [] as number[] };
let errors = 0;
let turn = 0;
await atFixedRate(rate, duration, async () => {
  const which = turn++ % 2 === 0 ? 'pool' : 'sdk';
  const started = performance.now();
  try {
    await (which === 'pool' ? viaPool() : viaSdk());
    samples[which].push(performance.now() - started);
  } catch {
    errors++;
  }
});

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};
const row = (name: string, xs: number[]) => `| ${name} | ${xs.length} | ${pct(xs, 50).toFixed(2)} ms | ${pct(xs, 99).toFixed(2)} ms |`;
console.log(`echo over stdio, ${rate}/s for ${duration} s, interleaved (errors: ${errors})\n`);
console.log(['| path | calls | p50 | p99 |', '|---|---|---|---|', row('McpClientPool', samples.pool), row('bare SDK client', samples.sdk)].join('\n'));
console.log(`\npool overhead: p50 ${(pct(samples.pool, 50) - pct(samples.sdk, 50)).toFixed(2)} ms, p99 ${(pct(samples.pool, 99) - pct(samples.sdk, 99)).toFixed(2)} ms`);
console.log(JSON.stringify({ bench: 'mcp-clients', rate, duration, errors, pool: { p50: pct(samples.pool, 50), p99: pct(samples.pool, 99) }, sdk: { p50: pct(samples.sdk, 50), p99: pct(samples.sdk, 99) } }));
await direct.close();
await pool.close();
