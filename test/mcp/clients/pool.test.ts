import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig, type GatewayConfig } from '../../../src/config/index.js';
import { McpClientPool, UpstreamCallError } from '../../../mcp/clients/pool.js';
import type { UpstreamChange } from '../../../mcp/clients/types.js';

/*
 * The pool against real MCP servers from npm over stdio (no network): memory and
 * sequential-thinking presets started with the project's own Node through the watchdog.
 */

const silent = { info: () => {}, warn: () => {}, debug: () => {} };

function configWith(yaml: string, env: Record<string, string> = {}): GatewayConfig {
  const dir = mkdtempSync(join(tmpdir(), 'pool-cfg-'));
  const file = join(dir, 'gateway.yaml');
  writeFileSync(file, yaml);
  const r = loadConfig({ PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env }, { file });
  if (!r.ok) throw new Error(r.problems.join('\n'));
  return r.config;
}

async function until(check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

const require = createRequire(import.meta.url);
/** The everything server's entry (started as `node <it> stdio <marker>`: the marker finds its processes in ps). */
const EVERYTHING = join(require.resolve('@modelcontextprotocol/server-everything/package.json'), '..', 'dist', 'index.js');

/** Processes whose command line contains `needle` (pid, ppid, args), from ps. */
function processes(needle: string): { pid: number; ppid: number; args: string }[] {
  const out = execFileSync('ps', ['-eo', 'pid=,ppid=,args='], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((line) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null && m[3]!.includes(needle) && !m[3]!.startsWith('ps '))
    .map((m) => ({ pid: Number(m[1]), ppid: Number(m[2]), args: m[3]! }));
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('McpClientPool with real stdio servers', () => {
  it('connects to memory and sequential-thinking in the background and calls their tools', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'pool-data-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const config = configWith(`mcp:\n  dataDir: ${dataDir}\n  servers:\n    memory: { preset: memory }\n    thinking: { preset: sequential-thinking }\n`);
    const pool = new McpClientPool(config.mcp, { log: silent });
    cleanups.push(() => pool.close());
    const changes: UpstreamChange[] = [];
    pool.onChange((c) => changes.push(c));
    pool.start();
    // start() does not wait for anything.
    expect(pool.servers().map((s) => [s.name, s.state])).toEqual([
      ['memory', 'connecting'],
      ['thinking', 'connecting'],
    ]);
    await pool.settled();
    const views = Object.fromEntries(pool.servers().map((s) => [s.name, s]));
    expect(views.memory).toMatchObject({ state: 'ready', transport: 'stdio', preset: 'memory', toolPrefix: 'memory__', federate: true });
    expect(views.memory!.protocolVersion).toMatch(/^(2025-11-25|2026-07-28)$/);
    expect(views.memory!.toolCount).toBeGreaterThan(3);
    expect(pool.catalogue('memory').tools.map((t) => t.name)).toContain('create_entities');
    expect(changes.some((c) => c.server === 'memory' && c.kind === 'state')).toBe(true);

    const created = await pool.callTool('memory', 'create_entities', { entities: [{ name: 'gateway-e2e', entityType: 'service', observations: ['pool test'] }] });
    expect(created.isError).not.toBe(true);
    const graph = await pool.callTool('memory', 'read_graph', {});
    expect(JSON.stringify(graph.content)).toContain('gateway-e2e');
    expect(readFileSync(join(dataDir, 'memory.jsonl'), 'utf8')).toContain('gateway-e2e');

    const thought = await pool.callTool('thinking', 'sequentialthinking', { thought: 'first', thoughtNumber: 1, totalThoughts: 2, nextThoughtNeeded: true });
    expect(thought.isError).not.toBe(true);
    expect(JSON.stringify(thought.content)).toContain('thoughtNumber');
    expect(pool.connectionCount).toBe(2);
  }, 60_000);

  it('kill -9 of an upstream mid-call: the caller gets an error within the deadline, the server is down within 2 s, restarted, its tools back', async () => {
    const marker = `pool-test-${randomUUID()}`;
    const config = configWith(`mcp:\n  servers:\n    everything:\n      command: ${process.execPath}\n      args: [${EVERYTHING}, stdio, ${marker}]\n      timeoutMs: 8000\n`);
    const pool = new McpClientPool(config.mcp, { log: silent, backoff: { baseMs: 200, maxMs: 1000 } });
    cleanups.push(() => pool.close());
    pool.start();
    await pool.settled();
    expect(pool.isReady('everything')).toBe(true);
    const tools = pool.catalogue('everything').tools.map((t) => t.name);
    expect(tools).toContain('trigger-long-running-operation');
    // The server runs under the watchdog: gateway -> watchdog -> server.
    const [server] = processes(marker).filter((p) => !p.args.includes('watchdog'));
    const [watchdog] = processes(marker).filter((p) => p.args.includes('watchdog'));
    expect(server?.ppid).toBe(watchdog?.pid);
    expect(watchdog?.ppid).toBe(process.pid);

    const changes: UpstreamChange[] = [];
    pool.onChange((c) => changes.push(c));
    const started = Date.now();
    const call = pool.callTool('everything', 'trigger-long-running-operation', { duration: 30, steps: 30 }).then(
      (result) => ({ result, error: undefined }),
      (error: unknown) => ({ result: undefined, error }),
    );
    await new Promise((r) => setTimeout(r, 300));
    process.kill(server!.pid, 'SIGKILL');
    const killedAt = Date.now();
    const outcome = await call;
    expect(outcome.error).toBeInstanceOf(UpstreamCallError);
    expect((outcome.error as UpstreamCallError).server).toBe('everything');
    expect(Date.now() - started).toBeLessThan(8000);
    await until(() => pool.server('everything')!.state !== 'ready', 2000);
    const downAfterMs = Date.now() - killedAt;
    expect(downAfterMs).toBeLessThan(2000);
    expect(pool.server('everything')!.lastError).toBeDefined();
    await until(() => pool.isReady('everything'), 20_000);
    expect(pool.catalogue('everything').tools.map((t) => t.name)).toEqual(tools);
    expect(pool.server('everything')!.reconnects).toBe(1);
    expect(changes.filter((c) => c.kind === 'tools').length).toBeGreaterThanOrEqual(2); // gone, then back
    // The new server is a new process; the old one is gone.
    expect(processes(marker).map((p) => p.pid)).not.toContain(server!.pid);

    await pool.close();
    await until(() => processes(marker).length === 0, 5000);
  }, 60_000);

  it('a call past its deadline is cancelled upstream and reported as a timeout', async () => {
    const config = configWith(`mcp:\n  servers:\n    everything:\n      command: ${process.execPath}\n      args: [${EVERYTHING}, stdio]\n      timeoutMs: 5000\n`);
    const pool = new McpClientPool(config.mcp, { log: silent });
    cleanups.push(() => pool.close());
    pool.start();
    await pool.settled();
    const started = Date.now();
    const error = await pool.callTool('everything', 'trigger-long-running-operation', { duration: 20, steps: 20 }, { timeoutMs: 500 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UpstreamCallError);
    expect((error as UpstreamCallError).reason).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(4000);
    // The connection is still good.
    const echo = await pool.callTool('everything', 'echo', { message: 'still here' });
    expect(JSON.stringify(echo.content)).toContain('still here');
  }, 60_000);
});
