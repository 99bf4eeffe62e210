import { request as httpRequest, type ClientRequest } from 'node:http';
import { ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { MemoryStore } from '../../../src/state/memory.js';
import type { StateStore } from '../../../src/state/store.js';
import { waitFor } from '../../helpers/gateway.js';
import { ADMIN_KEY, closeInProcess, envelope, legacyClient, modernClient, READER_KEY, startInProcess, type InProcessGateway } from '../../helpers/mcp-inprocess.js';

/*
 * /mcp in-process (the whole gateway in this process, real HTTP, SDK clients of both eras):
 * both protocol revisions on one URL, the gateway's own errors as JSON-RPC bodies, the audit
 * of calls that never answer, and 2025 sessions across two "replicas" sharing one state store
 * (its pub/sub is the event bus's transport, as Redis is between processes).
 */

const SPLIT_YAML = 'routes:\n  - { id: twin, prefix: /v1/twin, service: twin, split: { canary: { urls: ["http://127.0.0.1:1"] } } }\n';

afterAll(closeInProcess);
const closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close().catch(() => {});
});

/** Holds the traffic split's store reads while armed: a shift_traffic call then waits inside its tool. */
class Gate {
  armed = false;
  readonly #waiting: Array<() => void> = [];
  wait(): Promise<void> {
    return this.armed ? new Promise((resolve) => this.#waiting.push(resolve)) : Promise.resolve();
  }
  get waiting(): number {
    return this.#waiting.length;
  }
  release(): void {
    this.armed = false;
    for (const resolve of this.#waiting.splice(0)) resolve();
  }
}

/**
 * A memory store for one or more in-process replicas: its caches are shared per namespace (as
 * Redis keys are between processes), and with a gate its `traffic` cache waits before reads.
 */
function sharedStore(gate?: Gate): StateStore {
  const base = new MemoryStore();
  const caches = new Map<string, unknown>();
  return new Proxy(base, {
    get(target, prop) {
      if (prop === 'cache') {
        return (namespace: string, options?: { maxEntries?: number }) => {
          let keyv = caches.get(namespace) as ReturnType<MemoryStore['cache']> | undefined;
          if (keyv !== undefined) return keyv;
          keyv = target.cache(namespace, options);
          caches.set(namespace, keyv);
          if (namespace === 'traffic' && gate !== undefined) {
            const get = keyv.get.bind(keyv) as (...args: unknown[]) => Promise<unknown>;
            (keyv as { get: unknown }).get = async (...args: unknown[]) => {
              await gate.wait();
              return get(...args);
            };
          }
          return keyv;
        };
      }
      const value = Reflect.get(target, prop) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  }) as StateStore;
}

interface Raw {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
  json(): any;
}

/** One raw request to /mcp (JSON body), read to the end. */
function raw(url: string, options: { method?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const target = new URL(`${url}/mcp`);
    const body = options.body === undefined ? undefined : typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
    const req = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: options.method ?? 'POST',
        headers: {
          'x-api-key': ADMIN_KEY,
          accept: 'application/json, text/event-stream',
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...options.headers,
        },
        agent: false,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** The JSON-RPC messages of a JSON or SSE answer. */
function messages(res: Raw): any[] {
  if (String(res.headers['content-type']).includes('text/event-stream')) {
    return res.text
      .split('\n')
      .filter((l) => l.startsWith('data:') && l.slice(5).trim() !== '')
      .map((l) => JSON.parse(l.slice(5)));
  }
  return [res.json()];
}

/** A 2025 session opened with raw requests: its id and headers. */
async function rawSession(url: string, key = ADMIN_KEY): Promise<Record<string, string>> {
  const init = await raw(url, {
    headers: { 'x-api-key': key },
    body: { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } },
  });
  expect(init.status).toBe(200);
  const headers = { 'x-api-key': key, 'mcp-session-id': String(init.headers['mcp-session-id']), 'mcp-protocol-version': '2025-11-25' };
  expect((await raw(url, { headers, body: { jsonrpc: '2.0', method: 'notifications/initialized' } })).status).toBe(202);
  return headers;
}

/** Headers of a 2026-07-28 request. */
function modernHeaders(method: string, name?: string): Record<string, string> {
  return { 'mcp-protocol-version': '2026-07-28', 'mcp-method': method, ...(name !== undefined ? { 'mcp-name': name } : {}) };
}

/** Start a request and keep it open; resolves with the request (to abort) once it is sent. */
function openRequest(url: string, headers: Record<string, string>, body: unknown): { req: ClientRequest; done: Promise<string> } {
  const target = new URL(`${url}/mcp`);
  let req!: ClientRequest;
  const done = new Promise<string>((resolve) => {
    req = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: 'POST',
        headers: { 'x-api-key': ADMIN_KEY, accept: 'application/json, text/event-stream', 'content-type': 'application/json', ...headers },
        agent: false,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d));
        res.on('end', () => resolve(text));
        res.on('error', () => resolve(text));
      },
    );
    req.on('error', () => resolve(''));
    req.end(JSON.stringify(body));
  });
  return { req, done };
}

const shift = (canary: number, id: string | number = 7) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'shift_traffic', arguments: { route: 'twin', stable: 100 - canary, canary, reason: 'http test' } } });

describe('/mcp serves 2026-07-28 and 2025-11-25 on one URL', () => {
  it('an SDK 2 client pinned to 2026-07-28 and an SDK 1.x client each list the tools and call list_routes', async () => {
    const g = await startInProcess({ yaml: SPLIT_YAML });
    const modern = await modernClient(g.url);
    closers.push(() => modern.close());
    const { client: legacy } = await legacyClient(g.url);
    closers.push(() => legacy.close());
    for (const client of [modern, legacy] as const) {
      const tools = (await client.listTools()).tools.map((t) => t.name);
      expect(tools).toEqual(expect.arrayContaining(['list_routes', 'get_metrics', 'shift_traffic']));
      const routes = await client.callTool({ name: 'list_routes', arguments: {} });
      expect((routes.structuredContent as { routes: Array<{ id: string }> }).routes.map((r) => r.id)).toContain('twin');
    }
    expect(g.audits().filter((a) => a.tool === 'list_routes' && a.phase === 'ended').map((a) => [a.era, a.result])).toEqual([
      ['modern', 'ok'],
      ['legacy', 'ok'],
    ]);
  });

  it('server/discover and initialize claim only what is sent (no listChanged, no logging), and lists carry cache hints on 2026-07-28 only', async () => {
    const g = await startInProcess();
    const discover = await raw(g.url, { headers: modernHeaders('server/discover'), body: { jsonrpc: '2.0', id: 1, method: 'server/discover', params: { _meta: envelope() } } });
    const discovered = messages(discover)[0].result;
    expect(discovered.supportedVersions).toEqual(['2026-07-28']);
    expect(discovered.capabilities).toEqual({ tools: { listChanged: false }, resources: { subscribe: true, listChanged: false }, prompts: { listChanged: false } });
    const initialize = await raw(g.url, { body: { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } } });
    expect(messages(initialize)[0].result.capabilities).toEqual(discovered.capabilities);

    const list = async (method: string) =>
      messages(await raw(g.url, { headers: modernHeaders(method), body: { jsonrpc: '2.0', id: 2, method, params: { _meta: envelope() } } }))[0].result;
    expect(await list('tools/list')).toMatchObject({ cacheScope: 'private', ttlMs: 60_000 });
    for (const method of ['prompts/list', 'resources/list', 'resources/templates/list']) expect(await list(method)).toMatchObject({ cacheScope: 'public', ttlMs: 300_000 });
    const read = await raw(g.url, { headers: modernHeaders('resources/read', 'gateway://routes'), body: { jsonrpc: '2.0', id: 3, method: 'resources/read', params: { uri: 'gateway://routes', _meta: envelope() } } });
    expect(messages(read)[0].result).toMatchObject({ cacheScope: 'private', ttlMs: 0 });

    const session = await rawSession(g.url);
    const legacyList = messages(await raw(g.url, { headers: session, body: { jsonrpc: '2.0', id: 4, method: 'tools/list' } }))[0].result;
    expect(legacyList.tools.length).toBeGreaterThan(0);
    expect(legacyList).not.toHaveProperty('ttlMs');
    expect(legacyList).not.toHaveProperty('cacheScope');
  });

  it('answers an unknown tool and a missing resource as each revision specifies', async () => {
    const g = await startInProcess();
    const modernCall = await raw(g.url, { headers: modernHeaders('tools/call', 'nope'), body: { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'nope', arguments: {}, _meta: envelope() } } });
    expect(messages(modernCall)[0].error).toMatchObject({ code: -32602 });
    const modernRead = await raw(g.url, { headers: modernHeaders('resources/read', 'gateway://nope'), body: { jsonrpc: '2.0', id: 2, method: 'resources/read', params: { uri: 'gateway://nope', _meta: envelope() } } });
    expect(messages(modernRead)[0].error).toMatchObject({ code: -32602, data: { uri: 'gateway://nope' } });

    const session = await rawSession(g.url);
    const legacyCall = await raw(g.url, { headers: session, body: { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'nope', arguments: {} } } });
    expect(messages(legacyCall)[0].error).toMatchObject({ code: -32602 });
    const legacyRead = await raw(g.url, { headers: session, body: { jsonrpc: '2.0', id: 4, method: 'resources/read', params: { uri: 'gateway://nope' } } });
    expect(messages(legacyRead)[0].error).toEqual({ code: -32002, message: 'Resource not found', data: { uri: 'gateway://nope' } });
    // An unknown tool is audited as failed, not as a tool result.
    expect(g.audits().filter((a) => a.tool === 'nope' && a.phase === 'ended').map((a) => a.result)).toEqual(['failed', 'failed']);
  });

  it('the protocol version header must match what the session negotiated or what the envelope says', async () => {
    const g = await startInProcess();
    const session = await rawSession(g.url);
    const mismatch = await raw(g.url, { headers: { ...session, 'mcp-protocol-version': '2025-06-18' }, body: { jsonrpc: '2.0', id: 1, method: 'tools/list' } });
    expect(mismatch.status).toBe(400);
    expect(mismatch.json()).toMatchObject({ jsonrpc: '2.0', id: 1, error: { code: -32000, data: { code: 'GW_MCP_PROTOCOL_VERSION_MISMATCH' } } });
    const modern = await raw(g.url, { headers: { ...modernHeaders('tools/list'), 'mcp-protocol-version': '2025-11-25' }, body: { jsonrpc: '2.0', id: 2, method: 'tools/list', params: { _meta: envelope() } } });
    expect(modern.status).toBe(400);
    expect(modern.json().error.code).toBe(-32020);
  });
});

describe('/mcp refuses what the gateway refuses with JSON-RPC error bodies', () => {
  it('a 2026-07-28 tools/call with a broken envelope or headers that contradict the body is refused by the revision, counted and audited, and runs nothing', async () => {
    const g = await startInProcess({ yaml: SPLIT_YAML });
    const call = (id: number, meta: Record<string, unknown>, headers = modernHeaders('tools/call', 'shift_traffic')) =>
      raw(g.url, { headers, body: { jsonrpc: '2.0', id, method: 'tools/call', params: { ...shift(40).params, _meta: meta } } });
    const broken = await call(1, { ...envelope(), 'io.modelcontextprotocol/clientInfo': 'not an object' });
    const wrongMethod = await call(2, envelope(), modernHeaders('tools/list'));
    const wrongVersion = await call(3, envelope(), { ...modernHeaders('tools/call', 'shift_traffic'), 'mcp-protocol-version': '2025-11-25' });
    for (const [res, id] of [[broken, 1], [wrongMethod, 2], [wrongVersion, 3]] as const) {
      expect(res.status).toBe(400);
      expect([id, res.json()]).toMatchObject([id, { jsonrpc: '2.0', error: { code: expect.any(Number), message: expect.any(String) } }]);
    }
    const ended = g.audits().filter((a) => a.tool === 'shift_traffic' && a.phase === 'ended');
    expect(ended.map((a) => a.result)).toEqual(['failed', 'failed', 'failed']);
    expect(ended.every((a) => a.toolEnded === undefined)).toBe(true);
    const metrics = await g.gateway.metrics.registry.getSingleMetricAsString('gateway_mcp_requests_total');
    expect(metrics).toContain('method="tools/call",tool="shift_traffic",status="error"} 3');
    const split = await raw(g.url, { headers: modernHeaders('tools/call', 'get_traffic_split'), body: { jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'get_traffic_split', arguments: { route: 'twin' }, _meta: envelope() } } });
    expect(messages(split)[0].result.structuredContent.splits[0].weights).toEqual({ stable: 100, canary: 0 });
  });

  it('a JSON-RPC batch gets 400 and -32600, and nothing in it runs or is audited', async () => {
    const g = await startInProcess({ yaml: SPLIT_YAML });
    const session = await rawSession(g.url);
    const res = await raw(g.url, { headers: session, body: [shift(50), { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 7 } }] });
    expect(res.status).toBe(400);
    expect(res.json()).toEqual({
      jsonrpc: '2.0',
      id: null,
      error: { code: -32600, message: expect.stringContaining('batches'), data: { code: 'GW_MCP_BATCH_UNSUPPORTED', requestId: expect.any(String) } },
    });
    const split = await raw(g.url, { headers: session, body: { jsonrpc: '2.0', id: 8, method: 'tools/call', params: { name: 'get_traffic_split', arguments: { route: 'twin' } } } });
    expect(messages(split)[0].result.structuredContent.splits[0].weights).toEqual({ stable: 100, canary: 0 });
    expect(g.audits().filter((a) => a.tool === 'shift_traffic')).toEqual([]);
  });

  it('Host and Origin of a rebinding page are refused (403) before anything else; the localhost ones pass', async () => {
    const g = await startInProcess();
    const body = { jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: envelope() } };
    const host = await raw(g.url, { headers: { ...modernHeaders('tools/list'), host: 'evil.example.com' }, body });
    expect([host.status, host.json().error.data.code, host.json().jsonrpc]).toEqual([403, 'GW_MCP_HOST_FORBIDDEN', '2.0']);
    const origin = await raw(g.url, { headers: { ...modernHeaders('tools/list'), origin: 'http://evil.example.com' }, body });
    expect([origin.status, origin.json().error.data.code]).toEqual([403, 'GW_MCP_ORIGIN_FORBIDDEN']);
    const port = new URL(g.url).port;
    for (const name of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`]) {
      expect((await raw(g.url, { headers: { ...modernHeaders('tools/list'), host: name, origin: `http://${name}` }, body })).status).toBe(200);
    }
  });

  it('mcp.allowedHosts replaces the default Host list (localhost included): only the names listed pass', async () => {
    const g = await startInProcess({ yaml: 'mcp:\n  allowedHosts: [gw.example.org]\n' });
    const body = { jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: envelope() } };
    const listed = await raw(g.url, { headers: { ...modernHeaders('tools/list'), host: 'GW.example.org:8443' }, body });
    expect(listed.status).toBe(200);
    for (const host of [`127.0.0.1:${new URL(g.url).port}`, 'gw.example.org.evil.example', 'evil.example']) {
      const refused = await raw(g.url, { headers: { ...modernHeaders('tools/list'), host }, body });
      expect([host, refused.status, refused.json().error.data.code]).toEqual([host, 403, 'GW_MCP_HOST_FORBIDDEN']);
    }
  });

  it('authentication, session and method refusals are JSON-RPC errors with the status of the catalogue', async () => {
    const g = await startInProcess();
    const anonymous = await raw(g.url, { headers: { 'x-api-key': '' }, body: { jsonrpc: '2.0', id: 5, method: 'tools/list', params: { _meta: envelope() } } });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(anonymous.json()).toMatchObject({ jsonrpc: '2.0', error: { code: -32000, data: { code: 'GW_AUTH_MISSING_CREDENTIALS' } } });
    const noSession = await raw(g.url, { body: { jsonrpc: '2.0', id: 6, method: 'tools/list' } });
    expect([noSession.status, noSession.json().id, noSession.json().error.data.code]).toEqual([400, 6, 'GW_MCP_SESSION_REQUIRED']);
    // A call the gateway refuses before any server instance sees it is on record as failed, not as cancelled.
    const callNoSession = await raw(g.url, { body: { jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'list_routes', arguments: {} } } });
    expect(callNoSession.status).toBe(400);
    const ended = await waitFor(() => g.audits().find((a) => a.phase === 'ended' && a.tool === 'list_routes'), 2000, 'the ended line');
    expect(ended.result).toBe('failed');
    const unknown = await raw(g.url, { headers: { 'mcp-session-id': 'x'.repeat(43) }, body: { jsonrpc: '2.0', id: 7, method: 'tools/list' } });
    expect([unknown.status, unknown.json().error.code, unknown.json().error.data.code]).toEqual([404, -32001, 'GW_MCP_SESSION_NOT_FOUND']);
    const get = await raw(g.url, { method: 'GET', headers: { accept: 'text/event-stream' } });
    expect([get.status, get.headers.allow, get.json().error.data.code]).toEqual([405, 'POST', 'GW_MCP_METHOD_NOT_ALLOWED']);
    const notJson = await raw(g.url, { body: '{"jsonrpc": "2.0", "id": 1, ', headers: modernHeaders('tools/list') });
    expect([notJson.status, notJson.json().error.code]).toEqual([400, -32700]);
  });
});

describe('every tools/call is audited when it arrives and when it ends, cancelled included', () => {
  it('2025: notifications/cancelled ends the call at once; the line says cancelled and that the shift was applied', async () => {
    const gate = new Gate();
    const g = await startInProcess({ yaml: SPLIT_YAML, build: { state: sharedStore(gate) } });
    const session = await rawSession(g.url);
    gate.armed = true;
    const call = openRequest(g.url, session, shift(30, 41));
    await waitFor(() => (gate.waiting > 0 ? true : undefined), 5000, 'the shift to wait inside its tool');
    expect(g.audits().filter((a) => a.tool === 'shift_traffic').map((a) => a.phase)).toEqual(['arrived']);
    const cancel = await raw(g.url, { headers: session, body: { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 41, reason: 'user gave up' } } });
    expect(cancel.status).toBe(202);
    // The call's own response ends without an answer.
    expect(await call.done).not.toContain('"result"');
    gate.release();
    const ended = await waitFor(() => g.audits().find((a) => a.tool === 'shift_traffic' && a.phase === 'ended'), 5000, 'the ended line');
    expect(ended).toMatchObject({ result: 'cancelled', toolEnded: 'ok', principal: 'key:env-api-key', era: 'legacy' });
    expect(ended.call).toBe(g.audits().find((a) => a.phase === 'arrived')!.call);
    const metrics = await g.gateway.metrics.registry.getSingleMetricAsString('gateway_mcp_requests_total');
    expect(metrics).toContain('method="tools/call",tool="shift_traffic",status="cancelled"} 1');
  });

  it('2026-07-28: closing the response stream cancels the call; it is audited as cancelled', async () => {
    const gate = new Gate();
    const g = await startInProcess({ yaml: SPLIT_YAML, build: { state: sharedStore(gate) } });
    gate.armed = true;
    const body = { ...shift(20, 'c-1'), params: { ...shift(20).params, _meta: envelope() } };
    const call = openRequest(g.url, modernHeaders('tools/call', 'shift_traffic'), body);
    await waitFor(() => (gate.waiting > 0 ? true : undefined), 5000, 'the shift to wait inside its tool');
    call.req.destroy();
    await call.done;
    gate.release();
    const ended = await waitFor(() => g.audits().find((a) => a.tool === 'shift_traffic' && a.phase === 'ended'), 5000, 'the ended line');
    expect(ended).toMatchObject({ result: 'cancelled', era: 'modern' });
  });

  it('a refusal, a failure and a success each end with their own result', async () => {
    const g = await startInProcess({ yaml: SPLIT_YAML });
    const reader = await raw(g.url, { headers: { 'x-api-key': READER_KEY, ...modernHeaders('tools/call', 'shift_traffic') }, body: { ...shift(10, 1), params: { ...shift(10).params, _meta: envelope() } } });
    expect(messages(reader)[0].result).toMatchObject({ isError: true, content: [{ text: expect.stringMatching(/^GW_AUTH_INSUFFICIENT_SCOPE/) }] });
    const bad = await raw(g.url, { headers: modernHeaders('tools/call', 'shift_traffic'), body: { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'shift_traffic', arguments: { route: 'twin', stable: 1, canary: 1, reason: 'no' }, _meta: envelope() } } });
    expect(messages(bad)[0].result.isError).toBe(true);
    const good = await raw(g.url, { headers: modernHeaders('tools/call', 'shift_traffic'), body: { ...shift(10, 3), params: { ...shift(10).params, _meta: envelope() } } });
    expect(messages(good)[0].result.structuredContent).toMatchObject({ applied: true });
    const ended = g.audits().filter((a) => a.phase === 'ended');
    expect(ended.map((a) => [a.principal, a.result])).toEqual([
      ['key:reader', 'refused'],
      ['key:env-api-key', 'failed'],
      ['key:env-api-key', 'ok'],
    ]);
    for (const line of g.audits()) {
      expect(line.argsHash).toMatch(/^[0-9a-f]{16}$/);
      expect(JSON.stringify(line)).not.toContain('http test');
    }
  });
});

describe('MCP_REQUIRE_AUTH=false: credentials are optional, not ignored', () => {
  it('anonymous gets the read tools; a valid admin key gets and runs the admin tools; an invalid key is refused', async () => {
    const g = await startInProcess({ yaml: SPLIT_YAML, env: { MCP_REQUIRE_AUTH: 'false' } });
    const anonymous = await modernClient(g.url, {});
    closers.push(() => anonymous.close());
    expect((await anonymous.listTools()).tools.map((t) => t.name)).not.toContain('shift_traffic');
    const admin = await modernClient(g.url, { 'x-api-key': ADMIN_KEY });
    closers.push(() => admin.close());
    expect((await admin.listTools()).tools.map((t) => t.name)).toContain('shift_traffic');
    const shifted = await admin.callTool({ name: 'shift_traffic', arguments: { route: 'twin', stable: 60, canary: 40, reason: 'optional auth' } });
    expect(shifted.structuredContent).toMatchObject({ applied: true, by: 'key:env-api-key' });
    const wrong = await raw(g.url, { headers: { 'x-api-key': 'not-a-key', ...modernHeaders('tools/list') }, body: { jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: envelope() } } });
    expect([wrong.status, wrong.json().error.data.code]).toEqual([401, 'GW_AUTH_INVALID_CREDENTIALS']);
  });
});

describe('2025 sessions on two replicas sharing the state store', () => {
  async function twoReplicas() {
    const store = sharedStore();
    const a = await startInProcess({ yaml: SPLIT_YAML, build: { state: store } });
    const b = await startInProcess({ yaml: SPLIT_YAML, build: { state: store } });
    return { a, b };
  }

  /** A GET stream read as it arrives. */
  function listen(g: InProcessGateway, session: Record<string, string>, lastEventId?: string) {
    const target = new URL(`${g.url}/mcp`);
    const frames: string[] = [];
    let ended = false;
    const req = httpRequest({
      host: target.hostname,
      port: target.port,
      path: target.pathname,
      method: 'GET',
      headers: { ...session, accept: 'text/event-stream', ...(lastEventId !== undefined ? { 'last-event-id': lastEventId } : {}) },
      agent: false,
    });
    req.on('response', (res) => {
      let buffer = '';
      res.setEncoding('utf8').on('data', (d: string) => {
        buffer += d;
        const parts = buffer.split('\n\n');
        buffer = parts.pop()!;
        frames.push(...parts);
      });
      res.on('end', () => (ended = true));
      res.on('error', () => (ended = true));
    });
    req.on('error', () => (ended = true));
    req.end();
    closers.push(async () => req.destroy());
    const updates = () => frames.filter((f) => f.includes('notifications/resources/updated')).map((f) => ({ id: /^id: (.*)$/m.exec(f)?.[1], uri: JSON.parse(/^data: (.*)$/m.exec(f)![1]!).params.uri as string }));
    return { frames, updates, ended: () => ended, close: () => req.destroy() };
  }

  it('a subscription made through B is heard on the stream held by A, from a shift made anywhere', async () => {
    const { a, b } = await twoReplicas();
    const session = await rawSession(a.url);
    const stream = listen(a, session);
    await waitFor(() => (stream.frames.length > 0 ? true : undefined), 2000, 'the priming event');
    expect(stream.frames[0]).toMatch(/^id: \S+\nretry: 1000\ndata: $/);
    const subscribe = await raw(b.url, { headers: session, body: { jsonrpc: '2.0', id: 1, method: 'resources/subscribe', params: { uri: 'gateway://routes' } } });
    expect(messages(subscribe)[0].result).toEqual({});
    await new Promise((r) => setTimeout(r, 50));
    await raw(b.url, { headers: session, body: shift(25, 2) });
    await waitFor(() => (stream.updates().length > 0 ? true : undefined), 2000, 'the update on A');
    expect(stream.updates().map((u) => u.uri)).toEqual(['gateway://routes']);
  });

  it('a client reconnecting with Last-Event-ID (to the other replica) gets what it missed', async () => {
    const { a, b } = await twoReplicas();
    const session = await rawSession(a.url);
    await raw(a.url, { headers: session, body: { jsonrpc: '2.0', id: 1, method: 'resources/subscribe', params: { uri: 'gateway://routes' } } });
    const first = listen(a, session);
    await raw(a.url, { headers: session, body: shift(10, 2) });
    await waitFor(() => (first.updates().length === 1 ? true : undefined), 2000, 'the first update');
    const lastId = first.updates()[0]!.id!;
    first.close();
    // Missed while no stream was open.
    await raw(b.url, { headers: session, body: shift(20, 3) });
    await raw(b.url, { headers: session, body: shift(30, 4) });
    await new Promise((r) => setTimeout(r, 50));
    const resumed = listen(b, session, lastId);
    await waitFor(() => (resumed.updates().length === 2 ? true : undefined), 2000, 'the two missed updates');
    expect(resumed.updates().every((u) => u.uri === 'gateway://routes' && u.id !== lastId)).toBe(true);
    // An id this replica cannot place: every subscribed resource that may have changed is announced.
    const unknown = listen(b, session, 'not-an-event-id');
    await waitFor(() => (unknown.updates().length === 1 ? true : undefined), 2000, 'the catch-up update');
  });

  it('one GET stream per session across replicas: a newer one closes the older', async () => {
    const { a, b } = await twoReplicas();
    const session = await rawSession(a.url);
    const onA = listen(a, session);
    await waitFor(() => (onA.frames.length > 0 ? true : undefined), 2000, 'A to prime');
    const onB = listen(b, session);
    await waitFor(() => (onA.ended() ? true : undefined), 2000, "A's stream to end");
    expect(onB.ended()).toBe(false);
  });

  it('DELETE through B ends the session on A too (its stream closes, its id is 404 everywhere), for good', async () => {
    const { a, b } = await twoReplicas();
    const session = await rawSession(a.url);
    const onA = listen(a, session);
    await waitFor(() => (onA.frames.length > 0 ? true : undefined), 2000, 'A to prime');
    const deleted = await raw(b.url, { method: 'DELETE', headers: session });
    expect(deleted.status).toBe(200);
    await waitFor(() => (onA.ended() ? true : undefined), 2000, "A's stream to end");
    for (const g of [a, b]) {
      const res = await raw(g.url, { headers: session, body: { jsonrpc: '2.0', id: 1, method: 'tools/list' } });
      expect([res.status, res.json().error.data.code]).toEqual([404, 'GW_MCP_SESSION_NOT_FOUND']);
    }
  });

  it("another principal presenting the session's id is answered as if it did not exist", async () => {
    const { a, b } = await twoReplicas();
    const session = await rawSession(a.url);
    for (const g of [a, b]) {
      const res = await raw(g.url, { headers: { ...session, 'x-api-key': READER_KEY }, body: { jsonrpc: '2.0', id: 1, method: 'tools/list' } });
      expect([res.status, res.json().error.data.code]).toEqual([404, 'GW_MCP_SESSION_NOT_FOUND']);
    }
  });

  it('notifications/cancelled through B cancels the call running on A', async () => {
    const gate = new Gate();
    const store = sharedStore(gate);
    const a = await startInProcess({ yaml: SPLIT_YAML, build: { state: store } });
    const b = await startInProcess({ yaml: SPLIT_YAML, build: { state: store } });
    const session = await rawSession(a.url);
    gate.armed = true;
    const call = openRequest(a.url, session, shift(35, 'x-9'));
    await waitFor(() => (gate.waiting > 0 ? true : undefined), 5000, 'the shift to wait inside its tool');
    expect((await raw(b.url, { headers: session, body: { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 'x-9' } } })).status).toBe(202);
    expect(await call.done).not.toContain('"result"');
    gate.release();
    const ended = await waitFor(() => a.audits().find((l) => l.phase === 'ended' && l.tool === 'shift_traffic'), 5000, 'the ended line on A');
    expect(ended).toMatchObject({ result: 'cancelled', toolEnded: 'ok' });
  });

  it('an SDK 1.x client subscribed on A hears a shift made by a 2026-07-28 client on B', async () => {
    const { a, b } = await twoReplicas();
    const { client, transport } = await legacyClient(a.url);
    closers.push(() => client.close());
    const updates: string[] = [];
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void updates.push(n.params.uri));
    await client.subscribeResource({ uri: 'gateway://routes' });
    await waitFor(async () => ((await a.gateway.metrics.registry.getSingleMetricAsString('gateway_mcp_requests_total')).length > 0 ? true : undefined), 1000, 'metrics');
    await new Promise((r) => setTimeout(r, 100));
    const modern = await modernClient(b.url);
    closers.push(() => modern.close());
    await modern.callTool({ name: 'shift_traffic', arguments: { route: 'twin', stable: 0, canary: 100, reason: 'cross replica' } });
    await waitFor(() => (updates.length > 0 ? true : undefined), 1000, 'the update on A');
    expect(transport.sessionId).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});
