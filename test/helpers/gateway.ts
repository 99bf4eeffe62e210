import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';

/*
 * Real gateway processes for the e2e suites: `node bin/unified-gateway.js ...` as a child of
 * the test worker, on loopback, with an environment the test writes out in full (nothing of
 * the outer environment leaks in except PATH/HOME). Every child and temp file is tracked so
 * one `afterAll(cleanup)` per file takes all of it down, even when a test failed midway.
 */

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = join(ROOT, 'bin/unified-gateway.js');
const CLI_MAIN = join(ROOT, 'dist/src/cli/main.js');

/** A URL where nothing listens (port 1 on loopback refuses at once). */
export const NOTHING_LISTENING = 'http://127.0.0.1:1';
/** The admin API key every e2e gateway gets (API_KEY) unless a test overrides it. */
export const E2E_API_KEY = 'e2e-admin-key-0123456789abcdef';

export const SERVICE_URL_VARS = {
  twin: 'TWIN_SERVICE_URL',
  'agent-controller': 'AGENT_CONTROLLER_URL',
  knowledge: 'KNOWLEDGE_SYSTEM_URL',
  fog: 'FOG_COORDINATOR_URL',
  p2p: 'P2P_BRIDGE_URL',
} as const;
export type ServiceName = keyof typeof SERVICE_URL_VARS;

export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** One parsed pino line. */
export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

export interface GatewayProcess {
  /** e.g. http://127.0.0.1:41234 */
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  readonly child: ChildProcess;
  /** Every stdout line as written. */
  readonly stdoutLines: readonly string[];
  /** The stdout lines that are JSON (the structured log). */
  readonly logs: readonly LogLine[];
  stderr(): string;
  /** Resolves when the process has exited. */
  readonly exited: Promise<ExitInfo>;
  waitForLog(predicate: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /**
   * The position in `logs` after every line the gateway has written so far. Log lines are
   * buffered (up to 100 ms: BufferedLines in src/server/logger.ts), so `logs.length` can be taken before an
   * earlier request's lines arrive; a marker request's own access-log line comes after them.
   */
  logMark(): Promise<number>;
  /** Send a signal and wait for the exit (SIGKILL after `killAfterMs`). */
  stop(signal?: NodeJS.Signals, killAfterMs?: number): Promise<ExitInfo>;
}

const cleanups: Array<() => Promise<void> | void> = [];
const children = new Set<ChildProcess>();

/** Register something to undo in `cleanup()` (stand-ins, servers, temp files). */
export function onCleanup(fn: () => Promise<void> | void): void {
  cleanups.push(fn);
}

/** Stop every gateway this worker started, then run the registered cleanups (newest first). */
export async function cleanup(): Promise<void> {
  await Promise.allSettled([...children].map((child) => stopChild(child, 'SIGTERM', 3000)));
  while (cleanups.length > 0) {
    const fn = cleanups.pop()!;
    try {
      await fn();
    } catch {
      // keep cleaning up
    }
  }
}

// Last resort if the worker exits without cleanup (e.g. a crash): never leave a gateway behind.
process.once('exit', () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

let builtChecked = false;

/** Fail with a clear message when dist/ is missing or older than src/ (e2e runs the built code). */
export function ensureBuilt(): void {
  if (builtChecked) return;
  if (!existsSync(CLI_MAIN)) {
    throw new Error(`${CLI_MAIN} is missing: the e2e tests run the built gateway. Run \`npm run build\` first (\`npm test\` does it).`);
  }
  const stale: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) {
        const built = join(ROOT, 'dist', path.slice(ROOT.length + 1).replace(/\.ts$/, '.js'));
        if (!existsSync(built) || statSync(built).mtimeMs < statSync(path).mtimeMs) stale.push(path.slice(ROOT.length + 1));
      }
    }
  };
  walk(join(ROOT, 'src'));
  // E2E_ALLOW_STALE_DIST=1: someone else is editing src/ while you test what you built.
  if (stale.length > 0 && process.env.E2E_ALLOW_STALE_DIST !== '1') {
    throw new Error(`dist/ is older than ${stale.join(', ')}: run \`npm run build\` before the e2e tests (\`npm test\` does it).`);
  }
  builtChecked = true;
}

/**
 * The child's whole environment: the test's values over quiet defaults. Every service URL
 * points at NOTHING_LISTENING unless the test says otherwise, so a gateway under test never
 * reaches another suite's (or the demo's) upstreams by accident.
 */
export function gatewayEnv(env: Readonly<Record<string, string | undefined>> = {}): Record<string, string> {
  const out: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? tmpdir(),
    GATEWAY_HOST: '127.0.0.1',
    GATEWAY_PORT: '0',
    LOG_LEVEL: 'info',
    ENVIRONMENT: 'test',
    API_KEY: E2E_API_KEY,
    // No drain delay on SIGTERM: suites stop many gateways; the drain has its own e2e.
    GATEWAY_DRAIN_DELAY_MS: '0',
    // The suites send many requests (attacks too) from loopback: exempt it, as the gateway's
    // default no longer does. Suites that test the default pass RATE_LIMIT_EXEMPT_LOOPBACK: undefined.
    RATE_LIMIT_EXEMPT_LOOPBACK: 'true',
  };
  for (const name of Object.values(SERVICE_URL_VARS)) out[name] = NOTHING_LISTENING;
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete out[k];
    else out[k] = v;
  }
  return out;
}

/** Write a YAML file in a temp dir removed at cleanup; returns its path. */
export function writeTempFile(text: string, name = 'gateway.yaml'): string {
  const dir = mkdtempSync(join(tmpdir(), 'ugw-e2e-'));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

function exitPromise(child: ChildProcess): Promise<ExitInfo> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode });
    else child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

async function stopChild(child: ChildProcess, signal: NodeJS.Signals, killAfterMs: number): Promise<ExitInfo> {
  const exited = exitPromise(child);
  if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  try {
    return await exited;
  } finally {
    clearTimeout(timer);
  }
}

export interface StartOptions {
  /** Variables over the defaults of `gatewayEnv` (undefined removes one). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** YAML text written to a temp file and passed as GATEWAY_CONFIG. */
  readonly yaml?: string;
  /** The CLI arguments (default: `serve`). */
  readonly args?: readonly string[];
  /** Node options before the script (e.g. --trace-gc while investigating). */
  readonly nodeArgs?: readonly string[];
  /** Wait for /readyz to answer 200 (default true). */
  readonly waitReady?: boolean;
  readonly startTimeoutMs?: number;
}

/**
 * A gateway on Redis in a test waits up to a second for an answer unless the test says
 * otherwise. The suites on Redis measure what replicas share, not how soon one gives up on
 * Redis: on a shared CI machine redis-server itself can be off the CPU for longer than the
 * 50 ms production default, and a replica that takes it for away keeps a change to itself.
 * The tests of the timeout itself (test/state, the SIGSTOP cases) set their own.
 */
function withRedisPatience(yaml: string | undefined, onRedis: boolean): string | undefined {
  if (!onRedis) return yaml;
  const config = (yaml === undefined ? {} : parseYaml(yaml)) as Record<string, unknown> | null;
  const root = config ?? {};
  const state = (root.state ?? {}) as Record<string, unknown>;
  if (state.commandTimeoutMs !== undefined) return yaml;
  return stringifyYaml({ ...root, state: { ...state, commandTimeoutMs: 1000 } });
}

/** Start `unified-gateway serve` (or `args`) and wait until it listens (and, by default, is ready). */
export async function startGateway(options: StartOptions = {}): Promise<GatewayProcess> {
  ensureBuilt();
  const yaml = withRedisPatience(options.yaml, options.env?.REDIS_URL !== undefined);
  const env = gatewayEnv({
    ...(yaml !== undefined ? { GATEWAY_CONFIG: writeTempFile(yaml) } : {}),
    ...options.env,
  });
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), BIN, ...(options.args ?? ['serve'])], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  const exited = exitPromise(child);
  void exited.then(() => children.delete(child));

  const stdoutLines: string[] = [];
  const logs: LogLine[] = [];
  const waiters = new Set<{ predicate: (l: LogLine) => boolean; resolve: (l: LogLine) => void }>();
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  createInterface({ input: child.stdout! }).on('line', (line) => {
    stdoutLines.push(line);
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      return;
    }
    if (parsed === null || typeof parsed !== 'object') return;
    const log = parsed as LogLine;
    logs.push(log);
    for (const w of waiters) {
      if (w.predicate(log)) {
        waiters.delete(w);
        w.resolve(log);
      }
    }
  });

  const describe = () => `exit ${child.exitCode ?? child.signalCode ?? 'running'}\n--- stderr\n${stderr}--- stdout\n${stdoutLines.join('\n')}`;
  const waitForLog = (predicate: (l: LogLine) => boolean, timeoutMs = 10_000): Promise<LogLine> => {
    const seen = logs.find(predicate);
    if (seen) return Promise.resolve(seen);
    return new Promise<LogLine>((resolve, reject) => {
      const waiter = {
        predicate,
        resolve: (l: LogLine) => {
          clearTimeout(timer);
          resolve(l);
        },
      };
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        reject(new Error(`gateway log line not seen within ${timeoutMs} ms\n${describe()}`));
      }, timeoutMs);
      waiters.add(waiter);
      void exited.then(() => {
        if (!waiters.has(waiter)) return;
        // Give readline a moment to deliver the last lines before giving up.
        setTimeout(() => {
          if (!waiters.delete(waiter)) return;
          clearTimeout(timer);
          reject(new Error(`gateway exited before the expected log line\n${describe()}`));
        }, 50);
      });
    });
  };

  // Generous: two gateways starting together on a loaded 2-core CI machine have taken over 15 s.
  const timeoutMs = options.startTimeoutMs ?? 30_000;
  let url: string;
  try {
    const listening = await waitForLog((l) => l.msg === 'gateway listening' && typeof l.url === 'string', timeoutMs);
    url = (listening.url as string).replace('0.0.0.0', '127.0.0.1');
    if (options.waitReady !== false) await waitForReady(url, timeoutMs, describe);
    // Ready with Redis means on Redis: a replica that took it for away during a busy start-up
    // keeps what it does to itself for a second, which is not what a replicas test measures.
    if (options.waitReady !== false && env.REDIS_URL !== undefined) {
      await waitFor(() => (logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('state store ')).at(-1)?.msg?.startsWith('state store reachable') ? true : undefined), timeoutMs, 'the gateway on Redis');
    }
  } catch (err) {
    await stopChild(child, 'SIGKILL', 1000);
    throw err;
  }

  return {
    url,
    port: Number(new URL(url).port),
    pid: child.pid!,
    child,
    stdoutLines,
    logs,
    stderr: () => stderr,
    exited,
    waitForLog,
    logMark: async () => {
      const mark = `log-mark-${randomUUID()}`;
      await (await fetch(`${url}/livez?${mark}`)).arrayBuffer();
      const line = await waitForLog((l) => typeof l.url === 'string' && l.url.includes(mark));
      return logs.indexOf(line) + 1;
    },
    stop: (signal = 'SIGTERM', killAfterMs = 5000) => stopChild(child, signal, killAfterMs),
  };
}

async function waitForReady(url: string, timeoutMs: number, describe: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2000) });
      last = `${res.status} ${await res.text()}`;
      if (res.status === 200) return;
    } catch (err) {
      last = String(err);
    }
    await sleep(50);
  }
  throw new Error(`gateway at ${url} not ready within ${timeoutMs} ms (last /readyz: ${last})\n${describe()}`);
}

export interface CliResult extends ExitInfo {
  readonly stdout: string;
  readonly stderr: string;
}

/** Run the CLI to completion (killed after `timeoutMs`). */
export async function runCli(args: readonly string[], env: Readonly<Record<string, string | undefined>> = {}, timeoutMs = 15_000): Promise<CliResult> {
  ensureBuilt();
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: gatewayEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const exit = await exitPromise(child);
  clearTimeout(timer);
  children.delete(child);
  // 'exit' can come before the pipes are drained.
  await Promise.all([once(child.stdout!, 'close'), once(child.stderr!, 'close')]);
  return { ...exit, stdout, stderr };
}

function once(stream: NodeJS.ReadableStream, event: string): Promise<void> {
  return new Promise((resolve) => {
    if ((stream as { closed?: boolean }).closed) resolve();
    else stream.once(event, () => resolve());
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Poll `fn` until it returns a value other than undefined (or time runs out). */
export async function waitFor<T>(fn: () => Promise<T | undefined> | T | undefined, timeoutMs: number, what: string, everyMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** VmRSS and VmHWM (peak RSS) of a process, in bytes, from /proc/<pid>/status. */
export function processMemory(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status);
    if (!m) throw new Error(`/proc/${pid}/status has no ${field}`);
    return Number(m[1]) * 1024;
  };
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}
