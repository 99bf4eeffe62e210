/**
 * MCP round-trip benchmark (`npm run bench:mcp`, see bench/README.md): `tools/call list_routes`
 * against the gateway's /mcp at a fixed rate, open loop, in each protocol era the gateway
 * speaks:
 *
 * - 2025-11-25: one `initialize` (session id, protocol version header), then every call
 *   carries `Mcp-Session-Id`, as an SDK 1.x client sends it;
 * - 2026-07-28: no initialize, every call carries its `_meta` envelope and the
 *   `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` headers, as an SDK 2 client sends it.
 *
 * A round trip is from the send to the last byte of the answer (JSON, or the SSE stream up to
 * its end), and counts as an error unless the answer holds the tool's structured result. An
 * era the gateway does not serve shows up as errors, with the first one printed.
 *
 * Federation (`--federation`, issue 14): the everything server federated (mcp.servers, stdio),
 * its `echo` called through the gateway's /mcp (2026-07-28 requests, as above) against the same
 * server called directly with the SDK 2 client over stdio, each at the same fixed rate; the
 * added p50/p99 is printed. Then `--sessions` agents (2025 sessions, each its own initialize)
 * call echo concurrently, and the bench shows the everything processes (ps) and the pool's
 * view (/healthz): one upstream connection for all of them.
 */
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Client as Client2 } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { atFixedRate, positiveOption } from './load.js';
import { pathToFileURL } from 'node:url';
import { gatewayCredentials, startGateway, startStandIn, stopAll, type AuthMode, type GatewayServer } from './servers.js';

const HELP = `usage: npm run bench:mcp -- [options]    (each option can also come from its BENCH_MCP_* variable)

  --rate <n>        tools/call requests per second (open loop)   BENCH_MCP_RATE      100
  --duration <s>    measured seconds per era                     BENCH_MCP_DURATION  10
  --warmup <n>      unmeasured calls before each era             BENCH_MCP_WARMUP    300
  --eras <list>     eras to measure, comma-separated             BENCH_MCP_ERAS      2025-11-25,2026-07-28
  --auth <mode>     api-key or bearer                            BENCH_MCP_AUTH      api-key
  --label <text>    printed with the results (e.g. before/after) BENCH_MCP_LABEL
  --federation      also: federated echo vs direct, and sessions BENCH_MCP_FEDERATION  off
  --sessions <n>    concurrent agent sessions (federation phase) BENCH_MCP_SESSIONS  50
  (BENCH_MCP_GATEWAY_CLI: run another build's bin/unified-gateway.js, for before/after runs)
  --help
`;

const ERAS = ['2025-11-25', '2026-07-28'] as const;
type Era = (typeof ERAS)[number];

interface EraResult {
  readonly era: Era;
  readonly rate: number;
  readonly sent: number;
  readonly ok: number;
  readonly errors: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly firstError?: string;
}

function options() {
  const { values } = parseArgs({
    options: {
      rate: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      eras: { type: 'string' },
      auth: { type: 'string' },
      label: { type: 'string' },
      federation: { type: 'boolean', default: false },
      sessions: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const num = positiveOption;
  const eras = (values.eras ?? process.env.BENCH_MCP_ERAS ?? ERAS.join(',')).split(',').map((e) => e.trim());
  for (const era of eras) if (!(ERAS as readonly string[]).includes(era)) throw new Error(`unknown era "${era}" (${ERAS.join(', ')})`);
  const auth = (values.auth ?? process.env.BENCH_MCP_AUTH ?? 'api-key') as AuthMode;
  if (auth !== 'api-key' && auth !== 'bearer') throw new Error(`--auth must be api-key or bearer, got "${auth}"`);
  return {
    rate: num(values.rate, 'BENCH_MCP_RATE', 100),
    durationSec: num(values.duration, 'BENCH_MCP_DURATION', 10),
    warmup: Math.round(num(values.warmup, 'BENCH_MCP_WARMUP', 300)),
    eras: eras as Era[],
    auth,
    label: values.label ?? process.env.BENCH_MCP_LABEL ?? '',
    federation: values.federation === true || process.env.BENCH_MCP_FEDERATION === '1',
    sessions: Math.round(num(values.sessions, 'BENCH_MCP_SESSIONS', 50)),
  };
}

const CLIENT_INFO = { name: 'bench-mcp', version: '1.0.0' };

/** One tools/call the benchmarks measure. */
export interface McpCall {
  /** Its row in the tables. */
  readonly label: string;
  readonly tool: string;
  readonly arguments: Record<string, unknown>;
}

/**
 * The tools/call rows of `npm run bench` (one each; `npm run bench:mcp` measures the first).
 * HOOK for MCP federation: add the federated call here, e.g.
 * `{ label: 'federated', tool: 'memory__read_graph', arguments: {} }`, together with the
 * upstream MCP server it needs in the bench gateway's config (cachedRouteConfig in servers.ts).
 */
export const MCP_CALLS: readonly McpCall[] = [{ label: 'gateway tool', tool: 'list_routes', arguments: {} }];

/** tools/call rate of the rows in `npm run bench` (open loop). */
export const MCP_TABLE_RATE = 100;

/** One era's client: how to make the headers and body of a call (after any setup it needs). */
interface EraClient {
  readonly headers: Record<string, string>;
  readonly body: (id: number) => string;
}

async function setUp(pool: Pool, era: Era, credentials: Record<string, string>, mcpCall: McpCall): Promise<EraClient> {
  const base = { ...credentials, 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  if (era === '2026-07-28') {
    const meta = {
      'io.modelcontextprotocol/protocolVersion': era,
      'io.modelcontextprotocol/clientInfo': CLIENT_INFO,
      'io.modelcontextprotocol/clientCapabilities': {},
    };
    return {
      headers: { ...base, 'mcp-protocol-version': era, 'mcp-method': 'tools/call', 'mcp-name': mcpCall.tool },
      body: (id) => JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: mcpCall.tool, arguments: mcpCall.arguments, _meta: meta } }),
    };
  }
  const init = await pool.request({
    path: '/mcp',
    method: 'POST',
    headers: base,
    body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: era, capabilities: {}, clientInfo: CLIENT_INFO } }),
  });
  const text = await init.body.text();
  const sessionId = init.headers['mcp-session-id'];
  if (init.statusCode !== 200 || typeof sessionId !== 'string') throw new Error(`initialize answered ${init.statusCode}: ${text.slice(0, 300)}`);
  const headers = { ...base, 'mcp-session-id': sessionId, 'mcp-protocol-version': era };
  const initialized = await pool.request({ path: '/mcp', method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) });
  await initialized.body.dump();
  return { headers, body: (id) => JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: mcpCall.tool, arguments: mcpCall.arguments } }) };
}

/** The JSON-RPC answer in a JSON body or in the data lines of an SSE stream. */
function answerOf(text: string, contentType: string): { result?: { structuredContent?: unknown; isError?: boolean }; error?: unknown } | undefined {
  if (contentType.includes('text/event-stream')) {
    for (const line of text.split('\n')) {
      if (!line.startsWith('data:')) continue;
      const data = line.slice(5).trim();
      if (data === '') continue;
      const message = JSON.parse(data) as { id?: unknown };
      if (message.id !== undefined) return message as never;
    }
    return undefined;
  }
  return JSON.parse(text) as never;
}

async function call(pool: Pool, client: EraClient, id: number): Promise<string | undefined> {
  const res = await pool.request({ path: '/mcp', method: 'POST', headers: client.headers, body: client.body(id), headersTimeout: 10_000, bodyTimeout: 10_000 });
  const text = await res.body.text();
  if (res.statusCode !== 200) return `HTTP ${res.statusCode}: ${text.slice(0, 200)}`;
  const answer = answerOf(text, String(res.headers['content-type'] ?? ''));
  if (answer?.result?.structuredContent === undefined || answer.result.isError === true) return `no structured result: ${text.slice(0, 200)}`;
  return undefined;
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export type McpCallResult = EraResult & { readonly label: string; readonly tool: string };

/** One call's round trips in one era (the rows of `npm run bench`). */
export async function measureMcp(
  gatewayUrl: string,
  era: Era,
  gateway: GatewayServer,
  mcpCall: McpCall,
  opts: { rate: number; durationSec: number; warmup: number; auth: AuthMode },
): Promise<McpCallResult> {
  const credentials = await gatewayCredentials(gateway, opts.auth);
  return { label: mcpCall.label, tool: mcpCall.tool, ...(await measure(gatewayUrl, era, credentials, opts, mcpCall)) };
}

async function measure(
  gatewayUrl: string,
  era: Era,
  credentials: Record<string, string>,
  opts: { rate: number; durationSec: number; warmup: number },
  mcpCall: McpCall = MCP_CALLS[0]!,
): Promise<EraResult> {
  const pool = new Pool(gatewayUrl, { connections: 32 });
  let firstError: string | undefined;
  const fail = (why: string) => {
    firstError ??= why;
  };
  let client: EraClient;
  try {
    client = await setUp(pool, era, credentials, mcpCall);
  } catch (err) {
    await pool.close();
    return { era, rate: opts.rate, sent: 0, ok: 0, errors: 1, p50: NaN, p90: NaN, p99: NaN, max: NaN, firstError: (err as Error).message };
  }
  let id = 1;
  for (let i = 0; i < opts.warmup; i++) {
    const problem = await call(pool, client, id++).catch((err: unknown) => (err as Error).message);
    if (problem !== undefined) {
      fail(problem);
      break;
    }
  }
  const latencies: number[] = [];
  let sent = 0;
  let errors = 0;
  const one = async () => {
    const started = performance.now();
    const problem = await call(pool, client, id++).catch((err: unknown) => (err as Error).message);
    if (problem === undefined) latencies.push(performance.now() - started);
    else {
      errors += 1;
      fail(problem);
    }
  };
  sent = await atFixedRate(opts.rate, opts.durationSec, one);
  await pool.close();
  latencies.sort((a, b) => a - b);
  const ms = (n: number) => Math.round(n * 100) / 100;
  return {
    era,
    rate: opts.rate,
    sent,
    ok: latencies.length,
    errors,
    p50: ms(quantile(latencies, 0.5)),
    p90: ms(quantile(latencies, 0.9)),
    p99: ms(quantile(latencies, 0.99)),
    max: ms(latencies.at(-1) ?? NaN),
    ...(firstError !== undefined ? { firstError } : {}),
  };
}

const require = createRequire(import.meta.url);
const EVERYTHING = join(require.resolve('@modelcontextprotocol/server-everything/package.json'), '..', 'dist', 'index.js');
/** Marks the federated everything server's process in ps (the direct one has no marker). */
const FEDERATED_MARKER = `bench-federated-${process.pid}`;

/** The gateway config that federates the everything server over stdio (this bench and `npm run bench`'s federated row). */
export function federationYaml(): string {
  return `mcp:\n  servers:\n    everything:\n      command: ${JSON.stringify(process.execPath)}\n      args: [${JSON.stringify(EVERYTHING)}, stdio, ${JSON.stringify(FEDERATED_MARKER)}]\n`;
}

export interface Latencies {
  readonly sent: number;
  readonly ok: number;
  readonly errors: number;
  readonly p50: number;
  readonly p99: number;
  readonly firstError?: string;
}

/**
 * Calls each of `paths` at the same fixed rate, in the same window (each tick starts one call of
 * every path), after `warmup` unmeasured calls each: the latencies of the successes, per path.
 * Measured together, so a busy machine slows both alike and the difference is the gateway's.
 */
async function paced(opts: FederationOptions, paths: ReadonlyArray<() => Promise<string | undefined>>): Promise<Latencies[]> {
  const firstErrors: Array<string | undefined> = paths.map(() => undefined);
  for (const [i, one] of paths.entries()) {
    for (let n = 0; n < opts.warmup; n++) {
      const problem = await one().catch((err: unknown) => (err as Error).message);
      if (problem !== undefined) {
        firstErrors[i] = problem;
        break;
      }
    }
  }
  const latencies: number[][] = paths.map(() => []);
  const errors = paths.map(() => 0);
  const sent = await atFixedRate(opts.rate, opts.durationSec, async () => {
    await Promise.all(
      paths.map(async (one, i) => {
        const started = performance.now();
        const problem = await one().catch((err: unknown) => (err as Error).message);
        if (problem === undefined) latencies[i]!.push(performance.now() - started);
        else {
          errors[i]! += 1;
          firstErrors[i] ??= problem;
        }
      }),
    );
  });
  const ms = (n: number) => Math.round(n * 100) / 100;
  return paths.map((_, i) => {
    const sorted = latencies[i]!.sort((a, b) => a - b);
    const firstError = firstErrors[i];
    return { sent, ok: sorted.length, errors: errors[i]!, p50: ms(quantile(sorted, 0.5)), p99: ms(quantile(sorted, 0.99)), ...(firstError !== undefined ? { firstError } : {}) };
  });
}

/** The echo's text in a tools/call answer. */
function echoed(text: string, contentType: string): string | undefined {
  const answer = answerOf(text, contentType) as { result?: { content?: Array<{ text?: string }>; isError?: boolean } } | undefined;
  return answer?.result?.isError === true ? undefined : answer?.result?.content?.[0]?.text;
}

/** What the federation phase needs of the options (its own flags, or `npm run bench`'s). */
export type FederationOptions = Pick<ReturnType<typeof options>, 'rate' | 'durationSec' | 'warmup' | 'sessions'>;

export interface FederationResult {
  readonly lines: string[];
  readonly json: { direct: Latencies; federated: Latencies; added: { p50: number; p99: number }; sessions: Record<string, number> };
}

/** Federated echo against the everything server called directly, then many agent sessions at once. */
export async function federationPhase(gatewayUrl: string, credentials: Record<string, string>, opts: FederationOptions): Promise<FederationResult> {
  // Wait for the pool to connect the everything server.
  const deadline = Date.now() + 30_000;
  for (;;) {
    const health = (await (await fetch(`${gatewayUrl}/healthz`, { headers: credentials })).json()) as { mcpServers?: Record<string, { state?: string }> };
    if (health.mcpServers?.everything?.state === 'ready') break;
    if (Date.now() > deadline) throw new Error(`the everything server did not connect: ${JSON.stringify(health.mcpServers)}`);
    await new Promise((r) => setTimeout(r, 100));
  }

  // Direct: the SDK 2 client over stdio, as an agent would call the server without the gateway.
  const direct = new Client2({ name: 'bench-direct', version: '1.0.0' });
  await direct.connect(new StdioClientTransport({ command: process.execPath, args: [EVERYTHING, 'stdio'] }));
  const directCall = async (): Promise<string | undefined> => {
    const r = await direct.callTool({ name: 'echo', arguments: { message: 'bench' } });
    return r.isError === true ? 'tool error' : undefined;
  };

  // Federated: the same call through the gateway's /mcp (2026-07-28 requests).
  const pool = new Pool(gatewayUrl, { connections: 32 });
  const meta = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientInfo': CLIENT_INFO, 'io.modelcontextprotocol/clientCapabilities': {} };
  const headers = { ...credentials, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'everything__echo' };
  let id = 1;
  const federatedCall = async (): Promise<string | undefined> => {
    const res = await pool.request({
      path: '/mcp',
      method: 'POST',
      headers,
      body: JSON.stringify({ jsonrpc: '2.0', id: id++, method: 'tools/call', params: { name: 'everything__echo', arguments: { message: 'bench' }, _meta: meta } }),
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) return `HTTP ${res.statusCode}: ${text.slice(0, 200)}`;
    return echoed(text, String(res.headers['content-type'] ?? ''))?.includes('bench') === true ? undefined : `no echo: ${text.slice(0, 200)}`;
  };
  process.stderr.write(`bench:mcp federation: echo direct and through the gateway, each ${opts.rate}/s for ${opts.durationSec} s, together\n`);
  const [directResult, federatedResult] = (await paced(opts, [directCall, federatedCall])) as [Latencies, Latencies];
  await direct.close();
  await pool.close();

  // Many agents at once: each its own 2025 session, all calling echo concurrently.
  process.stderr.write(`bench:mcp federation: ${opts.sessions} concurrent agent sessions\n`);
  const sessions = await Promise.all(
    Array.from({ length: opts.sessions }, async () => {
      const p = new Pool(gatewayUrl, { connections: 2 });
      const base = { ...credentials, 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
      const init = await p.request({ path: '/mcp', method: 'POST', headers: base, body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: CLIENT_INFO } }) });
      await init.body.dump();
      return { p, headers: { ...base, 'mcp-session-id': String(init.headers['mcp-session-id']), 'mcp-protocol-version': '2025-11-25' } };
    }),
  );
  const started = performance.now();
  const outcomes = await Promise.all(
    sessions.flatMap((s, n) =>
      Array.from({ length: 5 }, async (_, k) => {
        const res = await s.p.request({ path: '/mcp', method: 'POST', headers: s.headers, body: JSON.stringify({ jsonrpc: '2.0', id: k + 1, method: 'tools/call', params: { name: 'everything__echo', arguments: { message: `agent-${n}-${k}` } } }) });
        const text = await res.body.text();
        return echoed(text, String(res.headers['content-type'] ?? ''))?.includes(`agent-${n}-${k}`) === true;
      }),
    ),
  );
  const sessionsMs = Math.round(performance.now() - started);
  await Promise.all(sessions.map((s) => s.p.close()));
  const upstreamProcesses = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes(FEDERATED_MARKER) && !l.includes('watchdog')).length;
  const health = (await (await fetch(`${gatewayUrl}/healthz`, { headers: credentials })).json()) as { mcpServers?: Record<string, unknown> };

  const row = (name: string, r: Latencies) =>
    `${name.padEnd(26)}${String(r.sent).padStart(6)}${String(r.ok).padStart(7)}${String(r.errors).padStart(8)}${String(r.p50).padStart(9)}${String(r.p99).padStart(9)}` +
    (r.firstError !== undefined ? `   first error: ${r.firstError.replace(/\s+/g, ' ').slice(0, 160)}` : '');
  const added = { p50: Math.round((federatedResult.p50 - directResult.p50) * 100) / 100, p99: Math.round((federatedResult.p99 - directResult.p99) * 100) / 100 };
  const lines = [
    '',
    `Federated tools/call everything__echo vs the everything server called directly (SDK 2 client, stdio), each ${opts.rate}/s open loop in the same ${opts.durationSec} s`,
    'path                        sent     ok  errors   p50 ms   p99 ms',
    row('direct (SDK client)', directResult),
    row('through the gateway /mcp', federatedResult),
    `added by the gateway: p50 ${added.p50} ms, p99 ${added.p99} ms (target: p99 < 2 ms)`,
    `${opts.sessions} concurrent agent sessions x 5 echo calls: ${outcomes.filter(Boolean).length}/${outcomes.length} answered correctly in ${sessionsMs} ms; ` +
      `federated everything server processes (ps, supervisor excluded): ${upstreamProcesses}; pool: ${JSON.stringify(health.mcpServers?.everything ?? null)}`,
  ];
  return { lines, json: { direct: directResult, federated: federatedResult, added, sessions: { agents: opts.sessions, calls: outcomes.length, ok: outcomes.filter(Boolean).length, ms: sessionsMs, upstreamProcesses } } };
}

async function main(): Promise<number> {
  const opts = options();
  const standIn = await startStandIn();
  // LOG_LEVEL info as operators run it (stdout to /dev/null): the audit lines of every
  // tools/call are part of the cost measured here.
  // BENCH_MCP_NODE_OPTIONS: Node flags of the gateway process (e.g. --cpu-prof while profiling).
  const nodeOptions = process.env.BENCH_MCP_NODE_OPTIONS;
  // BENCH_MCP_GATEWAY_CLI: another build's bin/unified-gateway.js (e.g. a copy of an earlier
  // commit's bin/ and dist/ inside the repository), for before/after runs taking turns.
  const cli = process.env.BENCH_MCP_GATEWAY_CLI;
  const gateway = await startGateway(standIn.url, process.env.BENCH_MCP_LOG_LEVEL ?? 'info', {
    ...(opts.federation ? { yaml: federationYaml() } : {}),
    ...(cli ? { cli } : {}),
    // (no drain delay: the profile is written when the process exits, within stopAll's grace)
    ...(nodeOptions ? { env: { NODE_OPTIONS: nodeOptions, GATEWAY_DRAIN_DELAY_MS: '0' } } : {}),
  });
  const credentials = await gatewayCredentials(gateway, opts.auth);
  const results: EraResult[] = [];
  for (const era of opts.eras) {
    process.stderr.write(`bench:mcp ${era}: ${opts.warmup} warm-up calls, then ${opts.rate}/s for ${opts.durationSec} s\n`);
    results.push(await measure(gateway.url, era, credentials, opts));
  }
  const label = opts.label === '' ? '' : ` (${opts.label})`;
  const lines = [
    `MCP tools/call list_routes round trips${label}, ${opts.rate}/s open loop, ${opts.durationSec} s, auth ${opts.auth}`,
    'era          sent     ok  errors   p50 ms   p90 ms   p99 ms   max ms',
    ...results.map(
      (r) =>
        `${r.era.padEnd(11)}${String(r.sent).padStart(6)}${String(r.ok).padStart(7)}${String(r.errors).padStart(8)}` +
        `${String(r.p50).padStart(9)}${String(r.p90).padStart(9)}${String(r.p99).padStart(9)}${String(r.max).padStart(9)}` +
        (r.firstError !== undefined ? `   first error: ${r.firstError.replace(/\s+/g, ' ').slice(0, 160)}` : ''),
    ),
  ];
  const federation = opts.federation ? await federationPhase(gateway.url, credentials, opts) : undefined;
  if (federation) lines.push(...federation.lines);
  process.stdout.write(`${lines.join('\n')}\n`);
  process.stdout.write(`${JSON.stringify({ label: opts.label, rate: opts.rate, durationSec: opts.durationSec, auth: opts.auth, results, ...(federation ? { federation: federation.json } : {}) })}\n`);
  return results.every((r) => r.errors === 0) ? 0 : 1;
}

// Run as a script (npm run bench:mcp); imported by bench/run.ts for its MCP rows.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const stop = () => void stopAll().then(() => process.exit(130));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  let code = 1;
  try {
    code = await main();
  } catch (err) {
    process.stderr.write(`bench:mcp failed: ${(err as Error).message}\n`);
  } finally {
    await stopAll();
  }
  process.exit(code);
}
