/**
 * Micro-benchmark of the rate-limit stage: what the limiter adds to a request, in memory mode
 * and against a local Redis. Run: `npx tsx bench/ratelimit.ts` (options: --help).
 *
 * Each simulated request does what the two rate-limit hooks do for an authenticated request:
 * the threat check (block, level: local maps), then the per-IP and per-principal quotas —
 * one atomic store call (one Redis round trip) checking both sliding windows.
 * Requests are sent open-loop at a fixed rate (default 2,000/s), each starting on schedule
 * whether or not earlier ones finished, and the time from a request's start to the end of its
 * limiter work is recorded (Redis mode). In memory mode nothing waits, so a closed loop gives
 * the per-request cost (an open loop would only measure the microtask queue).
 * A third part times the real Fastify hooks: the same in-process app with and without the
 * stages, driven with app.inject.
 *
 * Budgets (issue 4): p99 < 0.3 ms against local Redis at 2,000 req/s; < 20 µs in memory mode.
 * Exit status 1 when a budget is missed. Redis: BENCH_REDIS_URL / --redis-url, otherwise a
 * redis-server is started on a free loopback port (needs redis-server on the PATH).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { positiveOption } from './load.js';
import Fastify from 'fastify';
import { loadConfig, type GatewayConfig } from '../src/config/index.js';
import { createMetrics } from '../src/metrics/registry.js';
import { createRateLimiting, rateLimitClientStage, rateLimitPrincipalStage, type RateLimiting } from '../src/ratelimit/index.js';
import { MemoryStore } from '../src/state/memory.js';
import { RedisStore } from '../src/state/redis.js';
import type { StateStore } from '../src/state/store.js';

const HELP = `usage: npx tsx bench/ratelimit.ts [options]

  --rate <n>          requests per second, open loop               BENCH_RL_RATE       2000
  --duration <s>      measured seconds per open-loop run           BENCH_RL_DURATION   10
  --warmup <s>        unmeasured seconds before each run           BENCH_RL_WARMUP     2
  --runs <n>          open-loop Redis runs (budget: median p99)    BENCH_RL_RUNS       3
  --clients <n>       distinct client IPs                          BENCH_RL_CLIENTS    1000
  --principals <n>    distinct principals                          BENCH_RL_PRINCIPALS 200
  --redis-url <url>   use this Redis instead of starting one       BENCH_REDIS_URL
  --no-redis          memory mode only
  --help
`;

const REDIS_P99_BUDGET_MS = 0.3;
const MEMORY_BUDGET_US = 20;

const quiet = { info() {}, warn() {}, debug() {} };

function options() {
  const { values } = parseArgs({
    options: {
      rate: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      runs: { type: 'string' },
      clients: { type: 'string' },
      principals: { type: 'string' },
      'redis-url': { type: 'string' },
      'no-redis': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const num = positiveOption;
  return {
    rate: num(values.rate, 'BENCH_RL_RATE', 2000),
    duration: num(values.duration, 'BENCH_RL_DURATION', 10),
    warmup: num(values.warmup, 'BENCH_RL_WARMUP', 2),
    runs: Math.round(num(values.runs, 'BENCH_RL_RUNS', 3)),
    clients: num(values.clients, 'BENCH_RL_CLIENTS', 1000),
    principals: num(values.principals, 'BENCH_RL_PRINCIPALS', 200),
    redisUrl: values['redis-url'] ?? (process.env.BENCH_REDIS_URL || undefined),
    redis: !values['no-redis'],
  };
}

type Options = ReturnType<typeof options>;

interface Stats {
  n: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

function stats(samples: Float64Array | number[]): Stats {
  const sorted = Float64Array.from(samples).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  let sum = 0;
  for (const v of sorted) sum += v;
  return { n: sorted.length, mean: sum / sorted.length, p50: at(0.5), p90: at(0.9), p99: at(0.99), p999: at(0.999), max: sorted[sorted.length - 1]! };
}

function config(): GatewayConfig {
  // Quotas high enough that every request is allowed: the cost measured is the steady state.
  const result = loadConfig({ RATE_LIMIT_REQUESTS: '1000000', RATE_LIMIT_WINDOW_SECONDS: '60' });
  if (!result.ok) throw new Error(result.problems.join('\n'));
  return result.config;
}

/**
 * The limiter work of one authenticated request, as the two hooks do it: threat checks (local
 * maps) in the client stage, then the per-IP and per-principal quotas in one store call in
 * the principal stage.
 */
async function limiterWork(rl: RateLimiting, ip: string, subject: string): Promise<void> {
  if (rl.threats.blocked(ip) !== undefined) throw new Error('unexpected block');
  const factor = rl.threats.levelOf(ip) === 'low' ? 1 : 0.5;
  const outcomes = await rl.limiter.checkIdentity({ client: ip, subject, factor, withIp: true });
  if (outcomes.length !== 2 || !outcomes.every((o) => o.decision.allowed)) throw new Error('unexpected refusal');
}

function identities(o: Options) {
  const ips = Array.from({ length: o.clients }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
  const subjects = Array.from({ length: o.principals }, (_, i) => `key:client-${i}`);
  return (i: number) => ({ ip: ips[i % ips.length]!, subject: subjects[(i * 7) % subjects.length]! });
}

/** Open loop: request i starts at t0 + i/rate; returns per-request limiter time (ms) and schedule lag. */
async function openLoop(rl: RateLimiting, o: Options, seconds: number): Promise<{ service: Stats; lag: Stats; errors: number }> {
  const pick = identities(o);
  return paced(o.rate, seconds, (i) => {
    const { ip, subject } = pick(i);
    return limiterWork(rl, ip, subject);
  });
}

async function paced(rate: number, seconds: number, work: (i: number) => Promise<unknown>): Promise<{ service: Stats; lag: Stats; errors: number }> {
  const o = { rate };
  const total = Math.round(seconds * o.rate);
  const service = new Float64Array(total);
  const lag = new Float64Array(total);
  const interval = 1000 / o.rate;
  let errors = 0;
  let done = 0;
  const t0 = performance.now() + 5;
  await new Promise<void>((resolve) => {
    let i = 0;
    const tick = () => {
      const now = performance.now();
      // Start every request whose time has come (timers fire at ~1 ms granularity).
      while (i < total && t0 + i * interval <= now) {
        const index = i++;
        const started = performance.now();
        lag[index] = started - (t0 + index * interval);
        work(index).then(
          () => {
            service[index] = performance.now() - started;
            if (++done === total) resolve();
          },
          () => {
            errors += 1;
            service[index] = performance.now() - started;
            if (++done === total) resolve();
          },
        );
      }
      if (i < total) setTimeout(tick, Math.max(0, t0 + i * interval - performance.now()));
    };
    tick();
  });
  return { service: stats(service), lag: stats(lag), errors };
}

/** Closed loop, memory mode: back-to-back requests, per-request cost in µs. */
async function closedLoop(rl: RateLimiting, o: Options, n: number): Promise<Stats> {
  const pick = identities(o);
  const samples = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const { ip, subject } = pick(i);
    const started = performance.now();
    await limiterWork(rl, ip, subject);
    samples[i] = (performance.now() - started) * 1000;
  }
  return stats(samples);
}

/** The real hooks: an in-process Fastify app with and without the two stages, driven by inject. */
async function hooks(store: StateStore, o: Options, n: number): Promise<{ without: Stats; with: Stats }> {
  const cfg = config();
  const metrics = createMetrics({ durationBuckets: [1], defaultMetrics: false });
  const build = async (withStages: boolean) => {
    const app = Fastify({ logger: false });
    app.decorateRequest('principal', null);
    if (withStages) {
      const rl = createRateLimiting(cfg, store, { metrics, log: quiet });
      await rl.start();
      await app.register(rateLimitClientStage, rl);
      // Stand-in for the auth stage: a principal per request, as the real one sets it.
      await app.register(
        (await import('fastify-plugin')).default(async (a) => {
          a.addHook('onRequest', async (request) => {
            request.principal = { kind: 'api-key', subject: String(request.headers['x-sub']), scopes: ['read'], mfa: false };
          });
        }, { name: 'gateway-auth' }),
      );
      await app.register(rateLimitPrincipalStage, rl);
    }
    // A route that needs credentials, like every proxied route by default.
    app.get('/v1/x', { config: { authPolicy: { required: true } } }, async () => ({ ok: true }));
    await app.ready();
    return app;
  };
  const pick = identities(o);
  const run = async (app: Awaited<ReturnType<typeof build>>) => {
    const samples = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const { ip, subject } = pick(i);
      const started = performance.now();
      const res = await app.inject({ method: 'GET', url: '/v1/x', remoteAddress: ip, headers: { 'x-sub': subject } });
      samples[i] = (performance.now() - started) * 1000;
      if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
    }
    return stats(samples);
  };
  const plain = await build(false);
  const staged = await build(true);
  await run(plain);
  await run(staged); // warm-up
  const result = { without: await run(plain), with: await run(staged) };
  await Promise.all([plain.close(), staged.close()]);
  return result;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function startRedisServer(): Promise<{ url: string; stop(): void }> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'ugw-bench-redis-'));
  const argv = ['redis-server', '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir];
  const child: ChildProcess = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
  const failed = new Promise<never>((_, reject) => child.once('error', (err) => reject(new Error(`cannot start redis-server (${err.message}); install it or pass --redis-url`))));
  const stop = () => {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', stop);
  const url = `redis://127.0.0.1:${port}`;
  const probe = new RedisStore({ url, keyPrefix: 'bench-probe:', commandTimeoutMs: 1000, log: quiet });
  const up = await Promise.race([probe.start(10_000), failed]);
  await probe.close();
  if (!up) throw new Error('redis-server did not answer');
  return { url, stop };
}

const f = (v: number, digits = 3) => v.toFixed(digits);

async function main(): Promise<void> {
  const o = options();
  const lines: string[] = [];
  const out = (s: string) => {
    lines.push(s);
    process.stdout.write(`${s}\n`);
  };
  const problems: string[] = [];
  out(`rate-limit micro-benchmark — node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  out(`${o.clients} client IPs, ${o.principals} principals; each request = threat check + per-IP and per-principal sliding windows (one store call)`);

  const memoryStore = new MemoryStore();
  let redisStore: StateStore | undefined;
  let stopRedis = () => {};

  // --- memory mode
  {
    const store = memoryStore;
    const rl = createRateLimiting(config(), store, { metrics: createMetrics({ durationBuckets: [1], defaultMetrics: false }), log: quiet });
    await rl.start();
    await closedLoop(rl, o, 50_000);
    const closed = await closedLoop(rl, o, 200_000);
    out('');
    out('memory, closed loop (200,000 requests back to back), µs per request:');
    out(`  mean ${f(closed.mean, 2)}  p50 ${f(closed.p50, 2)}  p90 ${f(closed.p90, 2)}  p99 ${f(closed.p99, 2)}  p99.9 ${f(closed.p999, 2)}  max ${f(closed.max, 1)}`);
    const budget = closed.p99 < MEMORY_BUDGET_US;
    out(`  budget: p99 < ${MEMORY_BUDGET_US} µs (closed loop) -> ${budget ? 'PASS' : 'FAIL'}`);
    if (!budget) problems.push(`memory p99 ${f(closed.p99, 2)} µs >= ${MEMORY_BUDGET_US} µs`);
    await rl.close();
  }

  // --- Redis mode
  if (o.redis) {
    const server = o.redisUrl === undefined ? await startRedisServer() : { url: o.redisUrl, stop() {} };
    const store = new RedisStore({ url: server.url, keyPrefix: `bench-${process.pid}:`, commandTimeoutMs: 50, log: quiet });
    if (!(await store.start(5000))) throw new Error(`Redis at ${server.url} does not answer`);
    const rl = createRateLimiting(config(), store, { metrics: createMetrics({ durationBuckets: [1], defaultMetrics: false }), log: quiet });
    await rl.start();
    let fallbacks = 0;
    store.onStatusChange((up) => {
      if (!up) fallbacks += 1;
    });
    await openLoop(rl, o, o.warmup);
    // The floor of this machine and harness: one PING per request, same rate, same connection.
    const client = (store as unknown as { client: { ping(): Promise<unknown> } }).client;
    const where = o.redisUrl === undefined ? 'local redis-server started by the bench' : server.url;
    out('');
    out(`redis (${where}), open loop ${o.rate}/s, ${o.runs} run(s) of ${o.duration} s, ms per request (1 round trip, 2 windows):`);
    const p99s: number[] = [];
    for (let run = 1; run <= o.runs; run++) {
      const open = await openLoop(rl, o, o.duration);
      const ping = await paced(o.rate, Math.min(o.duration, 3), () => client.ping());
      p99s.push(open.service.p99);
      out(`  run ${run}: mean ${f(open.service.mean)}  p50 ${f(open.service.p50)}  p90 ${f(open.service.p90)}  p99 ${f(open.service.p99)}  p99.9 ${f(open.service.p999)}  max ${f(open.service.max)}`);
      out(`         PING alone at the same rate: p50 ${f(ping.service.p50)}  p99 ${f(ping.service.p99)};  event loop behind schedule: p99 ${f(open.lag.p99)} ms`);
    }
    const median = [...p99s].sort((x, y) => x - y)[Math.floor(p99s.length / 2)]!;
    const budget = median < REDIS_P99_BUDGET_MS && fallbacks === 0;
    out(`  budget: median p99 ${f(median)} ms < ${REDIS_P99_BUDGET_MS} ms, every decision shared (fallbacks: ${fallbacks}) -> ${budget ? 'PASS' : 'FAIL'}`);
    if (!budget) problems.push(`redis median p99 ${f(median)} ms (fallbacks ${fallbacks})`);
    await rl.close();
    redisStore = store;
    stopRedis = () => server.stop();
  }

  // --- The real hooks last: app.inject retains ~10 KB per request (light-my-request 6.8 on
  // Node 24), and a large heap would slow the open-loop runs above.
  {
    const h = await hooks(memoryStore, o, 5000);
    out('');
    out('memory, real Fastify hooks via app.inject (5,000 requests, closed loop), µs per request:');
    out(`  without stages: mean ${f(h.without.mean, 1)}  p50 ${f(h.without.p50, 1)}  p99 ${f(h.without.p99, 1)}`);
    out(`  with stages:    mean ${f(h.with.mean, 1)}  p50 ${f(h.with.p50, 1)}  p99 ${f(h.with.p99, 1)}`);
    out(`  added: p50 ${f(h.with.p50 - h.without.p50, 1)} µs`);
    await memoryStore.close();
  }
  if (redisStore !== undefined) {
    const h = await hooks(redisStore, o, 5000);
    out('redis, real Fastify hooks via app.inject (5,000 requests, closed loop), µs per request:');
    out(`  without stages: mean ${f(h.without.mean, 1)}  p50 ${f(h.without.p50, 1)}  p99 ${f(h.without.p99, 1)}`);
    out(`  with stages:    mean ${f(h.with.mean, 1)}  p50 ${f(h.with.p50, 1)}  p99 ${f(h.with.p99, 1)}`);
    out(`  added: p50 ${f(h.with.p50 - h.without.p50, 1)} µs (one Redis round trip)`);
    await redisStore.close();
    stopRedis();
  }

  out('');
  out(problems.length === 0 ? 'all budgets met' : `budgets missed: ${problems.join('; ')}`);
  process.exitCode = problems.length === 0 ? 0 : 1;
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/ratelimit: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(2);
});
