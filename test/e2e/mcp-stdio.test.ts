import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer, type Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { Client as Client2 } from '@modelcontextprotocol/client';
import { StdioClientTransport as StdioClientTransport2 } from '@modelcontextprotocol/client/stdio';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { getDefaultEnvironment, StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { LATEST_PROTOCOL_VERSION, ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BIN,
  cleanup,
  E2E_API_KEY,
  onCleanup,
  ROOT,
  runCli,
  sleep,
  startGateway,
  waitFor,
  type ExitInfo,
  type GatewayProcess,
} from '../helpers/gateway.js';
import { connectMcp } from '../helpers/mcp.js';

/*
 * `unified-gateway mcp`: the stdio <-> Streamable HTTP bridge as an assistant runs it, a child
 * process driven by the SDK's stdio client, in front of a real gateway (and, for messages the
 * gateway does not send yet, a minimal SDK server in this worker).
 */

let gw: GatewayProcess;
const SPLIT_YAML = 'routes:\n  - { id: twin, prefix: /v1/twin, service: twin, split: { canary: { urls: ["http://127.0.0.1:1"] } } }\n';

beforeAll(async () => {
  gw = await startGateway();
});
afterAll(cleanup);

interface Bridge {
  readonly client: Client;
  readonly transport: StdioClientTransport;
  /** Errors the stdio client transport saw (e.g. a stdout line that is not JSON-RPC). */
  readonly transportErrors: Error[];
  stderr(): string;
  /** The bridge process's exit (available once connect started it). */
  exited(): Promise<ExitInfo>;
  readonly pid: () => number;
}

/** A stdio client with the bridge as its server process; `connect` is left to the test. */
function bridge(args: readonly string[], env: Record<string, string> = {}): Bridge {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [BIN, 'mcp', ...args],
    env: { ...getDefaultEnvironment(), ...env },
    cwd: ROOT,
    stderr: 'pipe',
  });
  let stderr = '';
  // Available before start (a PassThrough): read it from the very first byte.
  transport.stderr!.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  const transportErrors: Error[] = [];
  transport.onerror = (err) => transportErrors.push(err);
  const client = new Client({ name: 'e2e-desktop', version: '1.0.0' });
  // The SDK keeps the child private and forgets it on close; its exit code is what we check.
  const child = () => {
    const c = (transport as unknown as { _process?: ChildProcess })._process;
    if (c === undefined) throw new Error('bridge process not started (connect first)');
    return c;
  };
  let exit: Promise<ExitInfo> | undefined;
  const exited = () => {
    exit ??= ((c) =>
      new Promise<ExitInfo>((resolve) => {
        if (c.exitCode !== null || c.signalCode !== null) resolve({ code: c.exitCode, signal: c.signalCode });
        else c.once('exit', (code, signal) => resolve({ code, signal }));
      }))(child());
    return exit;
  };
  onCleanup(() => client.close());
  return { client, transport, transportErrors, stderr: () => stderr, exited, pid: () => child().pid! };
}

/** Connect, and start watching the child's exit before anything can end it. */
async function connect(b: Bridge): Promise<void> {
  const connecting = b.client.connect(b.transport);
  // start() spawns synchronously inside connect, so the child exists now.
  void b.exited();
  await connecting;
}

/** An http URL on loopback where nothing listens any more (connections are refused). */
async function refusedUrl(): Promise<string> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`;
}

const requestLog = (method: string, since: number) => () =>
  gw.logs.slice(since).find((l) => l.msg === 'request completed' && l.method === method && l.url === '/mcp');

describe('unified-gateway mcp', () => {
  it('relays initialize, tools/list and tools/call to the gateway, and ends the session when stdin closes', async () => {
    const b = bridge(['--url', gw.url, '--api-key', E2E_API_KEY]);
    await connect(b);
    expect(b.client.getServerVersion()?.name).toBe('unified-gateway');

    const { tools } = await b.client.listTools();
    expect(tools.map((t) => t.name)).toContain('list_routes');
    const res = await b.client.callTool({ name: 'list_routes', arguments: {} });
    expect(res.isError).toBeFalsy();
    const routes = (res.structuredContent as { routes?: unknown[] }).routes;
    expect(Array.isArray(routes) && routes.length).toBeGreaterThan(0);

    const since = await gw.logMark();
    await b.client.close();
    expect(await b.exited()).toEqual({ code: 0, signal: null });
    // The bridge said goodbye to the gateway (DELETE /mcp) before exiting.
    expect((await waitFor(requestLog('DELETE', since), 3000, 'DELETE /mcp in the gateway log')).status).toBe(200);

    // stdout held only JSON-RPC (the stdio client reports any other line as an error).
    expect(b.transportErrors).toEqual([]);
    expect(b.stderr()).toContain('relaying stdio to');
    expect(b.stderr()).not.toContain(E2E_API_KEY);
  });

  it('takes the API key from GATEWAY_API_KEY and exits 0 on SIGTERM', async () => {
    const b = bridge(['--url', `${gw.url}/`], { GATEWAY_API_KEY: E2E_API_KEY });
    await connect(b);
    expect((await b.client.listTools()).tools.length).toBeGreaterThan(0);
    const since = await gw.logMark();
    process.kill(b.pid(), 'SIGTERM');
    expect(await b.exited()).toEqual({ code: 0, signal: null });
    expect((await waitFor(requestLog('DELETE', since), 3000, 'DELETE /mcp in the gateway log')).status).toBe(200);
    expect(b.stderr()).not.toContain(E2E_API_KEY);
  });

  it('sends --token as a bearer token', async () => {
    const issued = await fetch(`${gw.url}/auth/token`, { method: 'POST', headers: { 'x-api-key': E2E_API_KEY } });
    expect(issued.status).toBe(200);
    const token = ((await issued.json()) as { access_token: string }).access_token;
    const b = bridge(['--url', gw.url, '--token', token]);
    await connect(b);
    expect((await b.client.listTools()).tools.map((t) => t.name)).toContain('list_routes');
    expect(b.stderr()).toContain('(bearer token)');
    expect(b.stderr()).not.toContain(token);
  });

  it('answers a refused request with a JSON-RPC error and one stderr line (wrong API key)', async () => {
    const wrongKey = 'wrong-key-0123456789abcdef';
    const b = bridge(['--url', gw.url, '--api-key', wrongKey]);
    const err = await connect(b).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toMatch(/^MCP error -32000: gateway: HTTP 401 Unauthorized: GW_AUTH_INVALID_CREDENTIALS/);
    // Client.connect closes its transport when initialize fails: stdin ends, the bridge exits 0.
    expect(await b.exited()).toEqual({ code: 0, signal: null });
    const lines = b.stderr().trim().split('\n');
    expect(lines.filter((l) => l.includes('HTTP 401'))).toHaveLength(1); // not '401': a port such as 40155 has it
    expect(b.stderr()).not.toContain(wrongKey);
    expect(b.transportErrors).toEqual([]);
  });

  it('answers with a JSON-RPC error when the gateway cannot be reached', async () => {
    // A port that was just free: fetch refuses port 1 (NOTHING_LISTENING) before connecting.
    const b = bridge(['--url', await refusedUrl(), '--api-key', E2E_API_KEY]);
    const err = await connect(b).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toMatch(/^MCP error -32000: gateway: fetch failed: .*ECONNREFUSED/);
    expect(await b.exited()).toEqual({ code: 0, signal: null });
    expect(b.stderr()).toMatch(/gateway error: fetch failed: .*ECONNREFUSED/);
  });

  it('answers requests already sent when stdin ends right after them, holding them until the session exists (scripted use)', async () => {
    const child = spawn(process.execPath, [BIN, 'mcp', '--url', gw.url], {
      cwd: ROOT,
      env: { ...getDefaultEnvironment(), GATEWAY_API_KEY: E2E_API_KEY },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    onCleanup(() => void child.kill('SIGKILL'));
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    // 'close' (not 'exit'): stdout has been read to its end too.
    const closed = new Promise<ExitInfo>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
    const initialize = { protocolVersion: LATEST_PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'script', version: '1' } };
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    // Written all at once, without waiting for the initialize answer: the relay holds the rest
    // until the session exists.
    child.stdin.end(
      [
        { jsonrpc: '2.0', id: 7, method: 'initialize', params: initialize },
        { jsonrpc: '2.0', method: 'notifications/initialized' },
        { jsonrpc: '2.0', id: 8, method: 'tools/call', params: { name: 'list_routes', arguments: {} } },
      ]
        .map((m) => `${JSON.stringify(m)}\n`)
        .join(''),
    );
    expect(await closed).toEqual({ code: 0, signal: null });
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as { id?: unknown; result?: Record<string, any> });
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ jsonrpc: '2.0', id: 7, result: { serverInfo: { name: 'unified-gateway' } } });
    expect(lines[1]).toMatchObject({ jsonrpc: '2.0', id: 8 });
    expect(lines[1]!.result!.structuredContent.routes.length).toBeGreaterThan(0);
    expect(stderr).not.toContain('error');
  });

  it('refuses bad options with one stderr line and exit code 2', async () => {
    for (const args of [
      ['--url', 'ftp://example.com'],
      ['--url', 'not a url'],
      ['--url', 'http://user:secret@127.0.0.1:1'],
      ['--url', gw.url, '--api-key', E2E_API_KEY, '--token', 'some-token'],
    ]) {
      const res = await runCli(['mcp', ...args]);
      expect({ args, code: res.code }).toEqual({ args, code: 2 });
      expect(res.stdout).toBe('');
      expect(res.stderr.trim().split('\n')).toHaveLength(1);
      expect(res.stderr).toMatch(/^unified-gateway mcp: (--url|give --api-key or --token)/);
      expect(res.stderr).not.toContain('secret');
      expect(res.stderr).not.toContain(E2E_API_KEY);
    }
  });
});

describe('unified-gateway mcp speaks both protocol eras', () => {
  it('relays a 2026-07-28 stdio client: no initialize, enveloped requests with their headers, a listen stream until it is cancelled', async () => {
    const split = await startGateway({ yaml: SPLIT_YAML });
    const transport = new StdioClientTransport2({
      command: process.execPath,
      args: [BIN, 'mcp', '--url', split.url],
      env: { ...getDefaultEnvironment(), GATEWAY_API_KEY: E2E_API_KEY },
      cwd: ROOT,
      stderr: 'pipe',
    });
    let stderr = '';
    transport.stderr!.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const client = new Client2({ name: 'e2e-desktop-2026', version: '1.0.0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
    onCleanup(() => client.close());
    await client.connect(transport);
    expect((await client.listTools()).tools.map((t) => t.name)).toContain('list_routes');
    const routes = await client.callTool({ name: 'list_routes', arguments: {} });
    expect(routes.isError).toBeFalsy();
    // The gateway served them as 2026-07-28 requests: no session was opened, no GET stream.
    const audit = await waitFor(() => split.logs.find((l) => l.msg === 'mcp tool call ended'), 3000, 'the audit line');
    expect(audit.audit).toMatchObject({ tool: 'list_routes', era: 'modern', result: 'ok' });
    await split.logMark(); // a line that would be there has arrived by now (the log is buffered)
    expect(split.logs.some((l) => l.msg === 'request completed' && (l.method === 'GET' || l.method === 'DELETE') && l.url === '/mcp')).toBe(false);

    const updates: string[] = [];
    client.setNotificationHandler('notifications/resources/updated', (n) => void updates.push(n.params.uri));
    const subscription = await client.listen({ resourceSubscriptions: ['gateway://routes'] });
    const admin = await connectMcp(split.url, { 'x-api-key': E2E_API_KEY });
    await admin.client.callTool({ name: 'shift_traffic', arguments: { route: 'twin', stable: 70, canary: 30, reason: 'relay listen' } });
    await waitFor(() => (updates.includes('gateway://routes') ? true : undefined), 3000, 'the update through the relay');
    // Closing the subscription cancels the listen request: the relay closes its stream, the gateway ends it.
    await subscription.close();
    const listensEnded = async () => {
      const text = await (await fetch(`${split.url}/metrics`, { headers: { 'x-api-key': E2E_API_KEY } })).text();
      return /gateway_mcp_requests_total\{method="subscriptions\/listen",tool="",status="ok"\} 1\b/.test(text) ? true : undefined;
    };
    await waitFor(listensEnded, 3000, 'the listen stream to end on the gateway');
    await admin.client.close();
    await client.close();
    expect(stderr).toContain('relaying stdio to');
    expect(stderr).not.toContain('error');
  });

  it('re-opens a 2025 session after the gateway forgot it (restart without Redis): the next request and the subscriptions carry on', async () => {
    const first = await startGateway({ yaml: SPLIT_YAML });
    const b = bridge(['--url', first.url, '--api-key', E2E_API_KEY]);
    const updated: string[] = [];
    b.client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void updated.push(n.params.uri));
    await connect(b);
    await b.client.subscribeResource({ uri: 'gateway://routes' });
    expect((await b.client.listTools()).tools.length).toBeGreaterThan(0);

    // A restart on the same port, without Redis: every session is gone.
    await first.stop('SIGTERM');
    const second = await startGateway({
      env: { GATEWAY_PORT: String(first.port) },
      yaml: SPLIT_YAML,
    });
    const tools = await b.client.listTools();
    expect(tools.tools.map((t) => t.name)).toContain('shift_traffic');
    expect(b.stderr()).toContain('opening a new one');
    // The subscription was made again on the new session, and its GET stream carries the update.
    const admin = await connectMcp(second.url, { 'x-api-key': E2E_API_KEY });
    let canary = 0;
    // The new GET stream opens a moment after the replayed `initialized`: shift until it hears one.
    await waitFor(
      async () => {
        canary = canary === 10 ? 20 : 10;
        await admin.client.callTool({ name: 'shift_traffic', arguments: { route: 'twin', stable: 100 - canary, canary, reason: 'after restart' } });
        return updated.includes('gateway://routes') ? true : undefined;
      },
      5000,
      'the update on the re-opened session',
      200,
    );
    await admin.client.close();
    expect(b.transportErrors).toEqual([]);
  });
});

describe('unified-gateway mcp, server-initiated messages', () => {
  let upstream: Server | undefined;
  let getStreams = 0;
  let url: string;

  beforeAll(async () => {
    // One-session SDK server: what the gateway will send once resources can be subscribed to.
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: () => randomUUID() });
    upstream = new Server({ name: 'sse-upstream', version: '1.0.0' }, { capabilities: { resources: { subscribe: true } } });
    await upstream.connect(transport);
    const http: HttpServer = createServer((req, res) => {
      if (req.method === 'GET') getStreams++;
      void transport.handleRequest(req, res);
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`;
    onCleanup(async () => {
      await upstream?.close();
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
    });
  });

  it('passes notifications and requests from the SSE stream through, and the responses back', async () => {
    const b = bridge(['--url', url]);
    const updated: string[] = [];
    b.client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
      updated.push(n.params.uri);
    });
    await connect(b);
    expect(b.client.getServerVersion()?.name).toBe('sse-upstream');
    // The bridge opens the GET stream after `initialized`; until then the server has nowhere to send.
    await waitFor(() => (getStreams > 0 ? true : undefined), 3000, 'the bridge to open the SSE stream');
    await waitFor(
      async () => {
        await upstream!.sendResourceUpdated({ uri: 'gateway://routes' });
        await sleep(20);
        return updated.length > 0 ? true : undefined;
      },
      3000,
      'notifications/resources/updated through the bridge',
    );
    expect(updated[0]).toBe('gateway://routes');
    // A server-to-client request: the stdio client answers, the bridge POSTs the response back.
    await expect(upstream!.ping()).resolves.toEqual({});
    expect(b.transportErrors).toEqual([]);
  });
});
