import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig, type GatewayConfig } from '../../../src/config/index.js';
import { McpClientPool, UpstreamCallError } from '../../../mcp/clients/pool.js';
import { closeInProcess, READER_KEY, startInProcess } from '../../helpers/mcp-inprocess.js';
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


/**
 * Every configured server connected. settled() is the end of the first attempt, which a busy
 * machine can time out; the pool then retries with backoff, which is what these tests rely on.
 */
async function ready(pool: McpClientPool, ...names: string[]): Promise<void> {
  await pool.settled();
  const waited = (name: string) => names.length === 0 || names.includes(name);
  await until(() => pool.servers().every((s) => !waited(s.name) || s.state === 'ready' || s.state === 'disabled'), 30_000);
}

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
    await ready(pool);
    const views = Object.fromEntries(pool.servers().map((s) => [s.name, s]));
    expect(views.memory).toMatchObject({ state: 'ready', transport: 'stdio', preset: 'memory', toolPrefix: 'memory__', federate: true });
    // server-memory is on SDK 1.x: auto negotiation falls back to 2025-11-25.
    expect(views.memory!.protocolVersion).toBe('2025-11-25');
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
    await ready(pool);
    const tools = pool.catalogue('everything').tools.map((t) => t.name);
    expect(tools).toContain('trigger-long-running-operation');
    // The server runs under the watchdog: gateway -> watchdog -> server.
    // (auto negotiation may probe on a short-lived sibling process first: wait for it to be gone)
    await until(() => processes(marker).length === 2, 5000);
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
    const callFailedAfterMs = Date.now() - started;
    console.log(`kill -9 mid-call: call failed and server down ${downAfterMs} ms after the kill (call ended ${callFailedAfterMs} ms after it started, deadline 8000 ms)`);
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
    await ready(pool);
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

describe('McpClientPool: catalogue changes, relayed requests, isolation', () => {
  it('refreshes the catalogue on notifications/tools/list_changed and fires onChange', async () => {
    const fixture = join(import.meta.dirname, 'fixtures', 'list-changed-server.mjs');
    const config = configWith(`mcp:\n  servers:\n    lc:\n      command: ${process.execPath}\n      args: [${fixture}]\n`);
    const pool = new McpClientPool(config.mcp, { log: silent });
    cleanups.push(() => pool.close());
    pool.start();
    await ready(pool);
    expect(pool.catalogue('lc').tools.map((t) => t.name)).toEqual(['add_tool', 'slow']);
    const changes: UpstreamChange[] = [];
    pool.onChange((c) => changes.push(c));
    await pool.callTool('lc', 'add_tool', { name: 'late_tool' });
    await until(() => pool.catalogue('lc').tools.some((t) => t.name === 'late_tool'), 10_000);
    expect(changes).toContainEqual({ server: 'lc', kind: 'tools' });
    expect(pool.server('lc')!.toolCount).toBe(3);
    const late = await pool.callTool('lc', 'late_tool', {});
    expect(JSON.stringify(late.content)).toContain('late_tool ran');
  }, 60_000);

  it('a missed deadline sends notifications/cancelled upstream; stderr lines reach the log tagged with the server, secrets masked', async () => {
    const fixture = join(import.meta.dirname, 'fixtures', 'list-changed-server.mjs');
    const config = configWith(`mcp:\n  servers:\n    lc:\n      command: ${process.execPath}\n      args: [${fixture}]\n      env: { FIXTURE_TOKEN: "\${FIXTURE_TOKEN}" }\n`, { FIXTURE_TOKEN: 'tok-0123456789' });
    const lines: Record<string, unknown>[] = [];
    const pool = new McpClientPool(config.mcp, { log: { ...silent, info: (o) => lines.push(o as Record<string, unknown>) } });
    cleanups.push(() => pool.close());
    pool.start();
    await ready(pool);
    const error = await pool.callTool('lc', 'slow', {}, { timeoutMs: 300 }).catch((e: unknown) => e);
    expect((error as UpstreamCallError).reason).toBe('timeout');
    await until(() => lines.some((l) => l.server === 'lc' && String(l.stderr).startsWith('slow cancelled')), 10_000);
    const startLine = lines.find((l) => String(l.stderr).startsWith('starting with token'));
    expect(startLine?.stderr).toBe('starting with token ***');
    expect(JSON.stringify(lines)).not.toContain('tok-0123456789');
  }, 60_000);

  it('shares one connection among many concurrent callers, and passes progress through', async () => {
    const marker = `pool-share-${randomUUID()}`;
    const config = configWith(`mcp:\n  servers:\n    everything:\n      command: ${process.execPath}\n      args: [${EVERYTHING}, stdio, ${marker}]\n`);
    const pool = new McpClientPool(config.mcp, { log: silent });
    cleanups.push(() => pool.close());
    pool.start();
    await ready(pool);
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => pool.callTool('everything', 'echo', { message: `caller ${i}` }, { origin: `session-${i}` })));
    results.forEach((r, i) => expect(JSON.stringify(r.content)).toContain(`caller ${i}`));
    expect(pool.connectionCount).toBe(1);
    expect(processes(marker).filter((p) => !p.args.includes('watchdog'))).toHaveLength(1);
    const progress: number[] = [];
    await pool.callTool('everything', 'trigger-long-running-operation', { duration: 1, steps: 3 }, { onprogress: (p) => progress.push(p.progress) });
    expect(progress.length).toBeGreaterThanOrEqual(2);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
  }, 60_000);

  it('relays sampling from an upstream to the handler with the origin of the call that caused it', async () => {
    const config = configWith(`mcp:\n  servers:\n    everything:\n      command: ${process.execPath}\n      args: [${EVERYTHING}, stdio]\n`);
    const pool = new McpClientPool(config.mcp, { log: silent });
    cleanups.push(() => pool.close());
    const seen: { origins: readonly unknown[]; server: string; text: string }[] = [];
    pool.setRequestHandler('sampling/createMessage', async (params, ctx) => {
      const first = params.messages[0]?.content;
      seen.push({ origins: ctx.origins, server: ctx.server, text: JSON.stringify(first) });
      return { role: 'assistant', model: 'agent-model', content: { type: 'text', text: 'sampled by the agent' } };
    });
    pool.start();
    await ready(pool);
    const tools = pool.catalogue('everything').tools.map((t) => t.name);
    expect(tools).toContain('trigger-sampling-request');
    const result = await pool.callTool('everything', 'trigger-sampling-request', { prompt: 'hello upstream', maxTokens: 10 }, { origin: 'agent-session-1' });
    expect(result.isError).not.toBe(true);
    expect(JSON.stringify(result.content)).toContain('sampled by the agent');
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ server: 'everything', origins: ['agent-session-1'] });
    expect(seen[0]!.text).toContain('hello upstream');
  }, 60_000);

  it('relays elicitation to the handler of the calling origin; its answer (here: decline) goes back upstream', async () => {
    const config = configWith(`mcp:\n  servers:\n    everything:\n      command: ${process.execPath}\n      args: [${EVERYTHING}, stdio]\n`);
    const pool = new McpClientPool(config.mcp, { log: silent });
    cleanups.push(() => pool.close());
    const asked: { origins: readonly unknown[]; message: string }[] = [];
    pool.setRequestHandler('elicitation/create', async (params, ctx) => {
      asked.push({ origins: ctx.origins, message: params.message });
      return { action: 'decline' };
    });
    pool.start();
    await ready(pool);
    expect(pool.catalogue('everything').tools.map((t) => t.name)).toContain('trigger-elicitation-request');
    // Without a sampling handler the pool does not declare sampling, so that tool is not offered.
    expect(pool.catalogue('everything').tools.map((t) => t.name)).not.toContain('trigger-sampling-request');
    const result = await pool.callTool('everything', 'trigger-elicitation-request', {}, { origin: { session: 'agent-7' } });
    expect(JSON.stringify(result.content)).toContain('declined');
    expect(asked).toEqual([{ origins: [{ session: 'agent-7' }], message: expect.stringContaining('Please provide') }]);
  }, 60_000);

  it('relays logging notifications from an upstream to the notification listeners', async () => {
    const config = configWith(`mcp:\n  servers:\n    everything:\n      command: ${process.execPath}\n      args: [${EVERYTHING}, stdio]\n`);
    const pool = new McpClientPool(config.mcp, { log: silent });
    cleanups.push(() => pool.close());
    const seen: { method: string; server: string }[] = [];
    pool.onNotification((n, ctx) => seen.push({ method: n.method, server: ctx.server }));
    pool.start();
    await ready(pool);
    await pool.callTool('everything', 'toggle-simulated-logging', {});
    await until(() => seen.some((n) => n.method === 'notifications/message'), 30_000);
    expect(seen.find((n) => n.method === 'notifications/message')!.server).toBe('everything');
  }, 60_000);

  it("gives a stdio child only its configured environment, never the gateway's", async () => {
    process.env.UGW_POOL_TEST_SECRET = 'gateway-secret-value';
    cleanups.push(() => void delete process.env.UGW_POOL_TEST_SECRET);
    const config = configWith(`mcp:\n  servers:\n    everything:\n      command: ${process.execPath}\n      args: [${EVERYTHING}, stdio]\n      env: { GIVEN: "\${GIVEN_VALUE}" }\n`, { GIVEN_VALUE: 'given-to-child', UGW_POOL_TEST_SECRET: 'gateway-secret-value' });
    const pool = new McpClientPool(config.mcp, { log: silent });
    cleanups.push(() => pool.close());
    pool.start();
    await ready(pool);
    const env = JSON.parse((await pool.callTool('everything', 'get-env', {})).content.map((c) => (c.type === 'text' ? c.text : '')).join('')) as Record<string, string>;
    expect(env.GIVEN).toBe('given-to-child');
    expect(Object.values(env)).not.toContain('gateway-secret-value');
    expect(Object.keys(env).sort()).toEqual(expect.arrayContaining(['GIVEN', 'PATH']));
    expect(Object.keys(env).every((k) => ['GIVEN', 'PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'TERM', 'LANG', 'LC_ALL', 'TMPDIR', 'TZ'].includes(k))).toBe(true);
  }, 60_000);

  it('context7 (stdio, offline): lists its tools; a call answers with an error saying the network failed', async () => {
    const config = configWith('mcp:\n  servers:\n    context7: { preset: context7, enabled: true, timeoutMs: 20000 }\n');
    const logged: string[] = [];
    const pool = new McpClientPool(config.mcp, { log: { ...silent, info: (o, m) => logged.push(`${m} ${JSON.stringify(o)}`) } });
    cleanups.push(() => pool.close());
    pool.start();
    await ready(pool);
    // context7 is on the v2 SDK: auto negotiation finds 2026-07-28.
    expect(pool.server('context7')).toMatchObject({ state: 'ready', transport: 'stdio', preset: 'context7', protocolVersion: '2026-07-28' });
    const names = pool.catalogue('context7').tools.map((t) => t.name);
    expect(names.length).toBeGreaterThanOrEqual(2);
    const resolveTool = names.find((n) => /resolve/i.test(n))!;
    expect(resolveTool).toBeDefined();
    const outcome = await pool.callTool('context7', resolveTool, { libraryName: 'fastify', query: 'fastify plugins' }).then(
      (r) => ({ result: r, error: undefined }),
      (e: unknown) => ({ result: undefined, error: e }),
    );
    // Offline: either a tool error from context7 itself, or the pool's error naming the server; never a hang.
    if (outcome.result) {
      // context7 4.1.1 answers offline with a text result "Error searching libraries: TypeError:
      // fetch failed" and without isError (its own choice; the pool passes results through).
      const text = JSON.stringify(outcome.result.content);
      expect(outcome.result.isError === true || /error/i.test(text)).toBe(true);
      expect(text).toMatch(/fetch failed|network|ENOTFOUND|EAI_AGAIN|ECONNREFUSED/i);
    } else {
      expect(outcome.error).toBeInstanceOf(UpstreamCallError);
      expect(String(outcome.error)).toContain('context7');
    }
  }, 60_000);
});

describe('McpClientPool over Streamable HTTP', () => {
  afterEach(closeInProcess);

  it("negotiates 2026-07-28 with a v2 server (a gateway's own /mcp), sends the configured header credential, and refuses calls while down", async () => {
    const upstream = await startInProcess();
    const config = configWith(
      `mcp:\n  servers:\n    gw:\n      url: ${upstream.url}/mcp\n      headers: { X-API-Key: "\${UPSTREAM_KEY}" }\n    nothing:\n      url: http://127.0.0.1:1/mcp\n      timeoutMs: 1000\n`,
      { UPSTREAM_KEY: READER_KEY },
    );
    const pool = new McpClientPool(config.mcp, { log: silent, backoff: { baseMs: 60_000 } });
    cleanups.push(() => pool.close());
    pool.start();
    await ready(pool, 'gw'); // "nothing" stays down
    expect(pool.server('gw')).toMatchObject({ state: 'ready', transport: 'http', protocolVersion: '2026-07-28' });
    expect(pool.catalogue('gw').tools.map((t) => t.name)).toContain('list_routes');
    const routes = await pool.callTool('gw', 'list_routes', {});
    expect(routes.isError).not.toBe(true);
    // The upstream saw the reader key's principal: the audit line names it.
    expect(upstream.audits().some((a) => a.tool === 'list_routes' && a.principal === 'key:reader')).toBe(true);
    // A server that cannot be reached is down with its error, and calls to it are refused at once.
    expect(pool.server('nothing')).toMatchObject({ state: 'down' });
    expect(pool.server('nothing')!.lastError).toMatch(/connect failed/);
    const started = Date.now();
    await expect(pool.callTool('nothing', 'x', {})).rejects.toThrow(/unavailable: not connected/);
    await expect(pool.callTool('unknown', 'x', {})).rejects.toThrow(/not configured/);
    expect(Date.now() - started).toBeLessThan(200);
    // The upstream goes away: the next call fails with an error naming the server, and the server is down.
    await upstream.close();
    const lost = await pool.callTool('gw', 'list_routes', {}).catch((e: unknown) => e);
    expect(lost).toBeInstanceOf(UpstreamCallError);
    expect(String(lost)).toContain('"gw"');
    expect(pool.server('gw')!.state).toBe('down');
  }, 60_000);

  it('notices an idle Streamable HTTP server going away through its pings (down with the error)', async () => {
    const upstream = await startInProcess();
    const config = configWith(`mcp:\n  servers:\n    gw:\n      url: ${upstream.url}/mcp\n      headers: { X-API-Key: "\${UPSTREAM_KEY}" }\n      timeoutMs: 1000\n`, { UPSTREAM_KEY: READER_KEY });
    const pool = new McpClientPool(config.mcp, { log: silent, pingIntervalMs: 200, backoff: { baseMs: 100, maxMs: 300 } });
    cleanups.push(() => pool.close());
    pool.start();
    await ready(pool);
    await upstream.close();
    await until(() => pool.server('gw')!.state === 'down', 5000);
    expect(pool.server('gw')!.lastError).toMatch(/ping failed|connect failed/);
  }, 60_000);
});

