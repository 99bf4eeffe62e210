import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { setPriority, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

/**
 * The servers under test, each its own child process on loopback, and the bookkeeping that
 * makes sure none of them outlives the bench (normal end, error, Ctrl-C).
 */

export const GATEWAY_CLI = new URL('../bin/unified-gateway.js', import.meta.url).pathname;
/** The V8 flags the gateway runs with in production (bin shebang, npm start, Docker CMD). */
export const GATEWAY_NODE_FLAGS = ['--max-semi-space-size=4'];

export interface Server {
  readonly name: string;
  readonly url: string;
  /** The process serving it (for its RSS), when the bench started it. */
  readonly pid?: number | undefined;
}

const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();
/** Set once stopping began, so a phase still running (after Ctrl-C) cannot start new children. */
let stopping = false;

/**
 * Nice value of the processes that stand in for other machines (load generators, the upstream):
 * on one 2-core box they would otherwise take CPU time slices from the proxy under test, and
 * the scheduler's delays (several ms once more processes are runnable than there are cores)
 * would be measured as the proxy's latency. The gateway and nginx keep the default priority.
 */
export const SUPPORTING_PROCESS_NICE = process.env.BENCH_NICE !== undefined && /^\d{1,2}$/.test(process.env.BENCH_NICE) ? Number(process.env.BENCH_NICE) : 10;

/** Start a child that is killed with the bench; stderr is kept (last 4 KB) for error messages. */
export function startChild(
  command: string,
  args: readonly string[],
  options: SpawnOptions & { nice?: number } = {},
): ChildProcess & { stderrTail: () => string } {
  if (stopping) throw new Error('the bench is stopping');
  const { nice, ...spawnOptions } = options;
  const child = spawn(command, [...args], { stdio: ['ignore', 'ignore', 'pipe'], ...spawnOptions });
  if (nice !== undefined && child.pid !== undefined) setPriority(child.pid, nice);
  children.add(child);
  let tail = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    tail = (tail + chunk).slice(-4096);
  });
  child.once('exit', () => children.delete(child));
  return Object.assign(child, { stderrTail: () => tail.trim() });
}

/** Synchronous on purpose: it is the last resort from process.on('exit'), where nothing async runs. */
export function killAll(): void {
  stopping = true;
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  }
}

/**
 * Stop every child, SIGKILL what ignores SIGTERM for `graceMs`, then delete the temp dirs
 * (only then: nginx still writes to its prefix while it shuts down).
 */
export async function stopAll(graceMs = 3000): Promise<void> {
  const pending = [...children].map((c) => new Promise<void>((resolve) => c.once('exit', () => resolve())));
  killAll();
  const timer = setTimeout(() => {
    for (const child of children) child.kill('SIGKILL');
  }, graceMs);
  await Promise.all(pending);
  clearTimeout(timer);
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

/** A free loopback port (the tiny race before the child binds it is acceptable on a bench box). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Poll a URL until it answers 200, failing early when the child has exited. */
async function waitForOk(url: string, child: ReturnType<typeof startChild>, name: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${name} exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${child.stderrTail()}`);
    }
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${name} not ready at ${url} after ${timeoutMs} ms (${last})\n${child.stderrTail()}`);
}

/** The URL a child prints as "listening on URL" on its stdout. */
function printedUrl(child: ReturnType<typeof startChild>, name: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      const match = /listening on (http:\/\/\S+)/.exec(out);
      if (match?.[1]) {
        child.stdout!.resume();
        resolve(match[1]);
      }
    });
    child.once('exit', (code) => reject(new Error(`${name} exited (${code}) before listening:\n${child.stderrTail()}`)));
  });
}

/** The stand-in upstream (src/demo/stand-in.ts): it prints its URL once it listens. */
export async function startStandIn(): Promise<Server> {
  const child = startChild(process.execPath, [GATEWAY_CLI, 'stand-in', 'twin', '--port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    nice: SUPPORTING_PROCESS_NICE,
  });
  return { name: 'stand-in', url: await printedUrl(child, 'stand-in'), pid: child.pid };
}

/**
 * The bare `@fastify/http-proxy` (bench/bare-proxy.ts) in front of the same upstream: the
 * peer column the gateway must at least match. Same priority, V8 flags and allocator as the gateway.
 */
export async function startBareProxy(upstreamUrl: string, nodeFlags: readonly string[] = []): Promise<Server> {
  const script = new URL('./bare-proxy.ts', import.meta.url).pathname;
  // The gateway's allocator too (allocatorEnv): the two are compared on the same footing.
  const child = startChild(process.execPath, [...GATEWAY_NODE_FLAGS, ...nodeFlags, '--import', 'tsx', script, upstreamUrl], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...allocatorEnv() },
  });
  return { name: 'bare-proxy', url: await printedUrl(child, 'bare-proxy'), pid: child.pid };
}

/**
 * The bare WebSocket relay (bench/ws-bare-relay.ts) in front of the same upstream: the
 * reference row of `npm run bench:ws`. Same priority and V8 flags as the gateway.
 */
export async function startBareWsRelay(upstreamUrl: string): Promise<Server> {
  const script = new URL('./ws-bare-relay.ts', import.meta.url).pathname;
  const child = startChild(process.execPath, [...GATEWAY_NODE_FLAGS, '--import', 'tsx', script, upstreamUrl], { stdio: ['ignore', 'pipe', 'pipe'] });
  return { name: 'bare-relay', url: await printedUrl(child, 'bare-relay'), pid: child.pid };
}

/** Resident set size of a process in MiB (Linux /proc), or null where it cannot be read. */
export function rssMiB(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match?.[1] ? Math.round(Number(match[1]) / 1024) : null;
  } catch {
    return null;
  }
}

/** Where docker/Dockerfile links the jemalloc it installs, and its settings there (a test keeps them in step). */
export const JEMALLOC_LINK = '/usr/local/lib/libjemalloc.so.2';
export const JEMALLOC_CONF = 'narenas:2,background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0';
const JEMALLOC_PATHS = [JEMALLOC_LINK, '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2', '/usr/lib/aarch64-linux-gnu/libjemalloc.so.2', '/usr/lib/libjemalloc.so.2'];

/** The gateway's allocator as the Docker image sets it: jemalloc (Debian's libjemalloc2) when installed here, else glibc. */
export function allocatorEnv(): Record<string, string> {
  const jemalloc = JEMALLOC_PATHS.find((path) => existsSync(path));
  const glibc = { MALLOC_ARENA_MAX: '2' };
  return jemalloc === undefined ? glibc : { ...glibc, LD_PRELOAD: jemalloc, MALLOC_CONF: JEMALLOC_CONF };
}

/** Which allocator allocatorEnv() gives the gateway (the report says). */
export function gatewayAllocator(): string {
  const env = allocatorEnv();
  return env.LD_PRELOAD === undefined ? 'glibc malloc (MALLOC_ARENA_MAX=2; apt-get install libjemalloc2 for the image\'s jemalloc)' : `jemalloc (${env.LD_PRELOAD}, MALLOC_CONF=${env.MALLOC_CONF})`;
}

export interface GatewayServer extends Server {
  /** The API_KEY it was started with (an admin key). */
  readonly apiKey: string;
  /** Its process id (memory figures read /proc/<pid>/status). */
  readonly pid: number;
  /** Its probe listener (GATEWAY_PROBE_PORT: /livez, /readyz, /healthz on a thread of their own). */
  readonly probeUrl: string;
}

/**
 * The gateway as operators run it (`unified-gateway serve`). Only the twin service is
 * enabled so the health prober talks to the stand-in alone. LOG_LEVEL stays at the default
 * (info: one access-log line per request) but stdout goes to /dev/null, so the gateway pays
 * for formatting and writing its logs, not for a reader; nginx gets access_log off.
 * Secrets are random per run: the bench gets its credentials through API_KEY.
 */
/** Path prefix of the route the bench marks cacheable (the stand-in sends no Cache-Control). */
export const CACHED_PREFIX = '/v1/twin/cached';

/** A gateway config with one route that caches for a minute, for the cache phase (plus `extraYaml`: other top-level keys). */
function cachedRouteConfig(extraYaml = ''): string {
  const dir = mkdtempSync(join(tmpdir(), 'ugw-bench-gw-'));
  tempDirs.add(dir);
  const file = join(dir, 'gateway.yaml');
  writeFileSync(file, `routes:\n  - { id: bench-cached, prefix: ${CACHED_PREFIX}, service: twin, cache: { ttlSeconds: 60 } }\n${extraYaml.replaceAll('${TMP}', dir)}`);
  return file;
}

/** What a benchmark adds to the gateway's setup (the WebSocket bench: connection caps). */
export interface GatewayExtras {
  readonly env?: Readonly<Record<string, string>>;
  /** Top-level YAML keys appended to the config file (not `routes`). */
  readonly yaml?: string;
  /** Gateway processes (WORKER_THREADS) for the 1-vs-N workers comparison: `npm run bench -- --workers 2`. */
  readonly workers?: number;
  /** Another build's CLI (bench/ab.ts: a baseline copy of bin/ + dist/), instead of this tree's. */
  readonly cli?: string;
  /** V8/Node flags added to GATEWAY_NODE_FLAGS (bench/ab.ts: --cpu-prof). */
  readonly nodeFlags?: readonly string[];
}

export async function startGateway(upstreamUrl: string, logLevel: string, extras: GatewayExtras = {}): Promise<GatewayServer> {
  const port = await freePort();
  const probePort = await freePort();
  const apiKey = randomBytes(24).toString('hex');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    API_KEY: apiKey,
    JWT_SECRET_KEY: randomBytes(32).toString('base64url'),
    GATEWAY_HOST: '127.0.0.1',
    GATEWAY_PORT: String(port),
    LOG_LEVEL: logLevel,
    TWIN_SERVICE_URL: upstreamUrl,
    ENABLE_AGENT_FORGE: 'false',
    ENABLE_RAG_PIPELINE: 'false',
    ENABLE_P2P_FOG: 'false',
    GATEWAY_CONFIG: cachedRouteConfig(extras.yaml),
    // The load comes from loopback: exempt it from the quotas (opt-in since issue 11, as it was by default before).
    RATE_LIMIT_EXEMPT_LOOPBACK: 'true',
    // One process unless asked (the 1-vs-N workers comparison): `npm run bench -- --workers 2`.
    WORKER_THREADS: String(extras.workers ?? 1),
    GATEWAY_PROBE_PORT: String(probePort),
    // As the Docker image runs it (docker/Dockerfile): jemalloc when this machine has it, else
    // glibc's malloc with fewer arenas; less RSS after load either way.
    ...allocatorEnv(),
    ...extras.env,
  };
  const child = startChild(process.execPath, [...GATEWAY_NODE_FLAGS, ...(extras.nodeFlags ?? []), extras.cli ?? GATEWAY_CLI, 'serve'], { env });
  const url = `http://127.0.0.1:${port}`;
  await waitForOk(`${url}/readyz`, child, 'gateway');
  return { name: 'gateway', url, apiKey, pid: child.pid!, probeUrl: `http://127.0.0.1:${probePort}` };
}

export type AuthMode = 'bearer' | 'api-key' | 'none';

/**
 * The header a client of /v1 sends: by default a bearer token from POST /auth/token (an HS256
 * JWT the gateway verifies on every request), or the API key itself, or nothing.
 */
export async function gatewayCredentials(gateway: GatewayServer, mode: AuthMode): Promise<Record<string, string>> {
  if (mode === 'none') return {};
  if (mode === 'api-key') return { 'x-api-key': gateway.apiKey };
  const res = await fetch(`${gateway.url}/auth/token`, { method: 'POST', headers: { 'x-api-key': gateway.apiKey } });
  const text = await res.text();
  const token = res.ok ? (JSON.parse(text) as { access_token?: unknown }).access_token : undefined;
  if (typeof token !== 'string') throw new Error(`gateway POST /auth/token answered ${res.status}: ${text.slice(0, 300)}`);
  return { authorization: `Bearer ${token}` };
}

/** nginx from PATH (or an explicit path), or undefined when there is none. */
export function findNginx(explicit?: string): string | undefined {
  const candidates = explicit ? [explicit] : (process.env.PATH ?? '').split(delimiter).filter(Boolean).map((d) => join(d, 'nginx'));
  for (const file of candidates) {
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * nginx as a plain reverse proxy with the same job as the gateway: one worker (the gateway is
 * one Node process), upstream keep-alive, no access log, and the same forwarding headers the
 * gateway adds, so the stand-in does the same work behind both.
 */
export async function startNginx(nginxBin: string, upstreamUrl: string, path: string): Promise<Server> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'gateway-bench-nginx-'));
  tempDirs.add(dir);
  // When run as root nginx workers drop to "nobody" and must be able to enter the prefix.
  chmodSync(dir, 0o755);
  const upstream = new URL(upstreamUrl).host;
  const conf = `
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 1000000;
  upstream standin {
    server ${upstream};
    keepalive 128;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://standin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $http_host;
      proxy_set_header X-Request-Id $request_id;
    }
  }
}
`;
  const confFile = join(dir, 'nginx.conf');
  writeFileSync(confFile, conf);
  // -e: nginx otherwise opens its compiled-in error log (/var/log/nginx) before reading the config.
  const child = startChild(nginxBin, ['-p', dir, '-e', join(dir, 'error.log'), '-c', confFile, '-g', 'daemon off;']);
  const url = `http://127.0.0.1:${port}`;
  await waitForOk(`${url}${path}`, child, 'nginx');
  return { name: 'nginx', url, pid: child.pid };
}
