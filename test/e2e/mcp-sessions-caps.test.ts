import { request as httpRequest, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/auth/api-keys.js';
import { cleanup, E2E_API_KEY, onCleanup, startGateway, type GatewayProcess } from '../helpers/gateway.js';
import { initializeMessage } from '../helpers/mcp.js';

/*
 * Who may fill the MCP session slots (one replica): per-principal and per-address caps well
 * under the total, a share of the total only admins may use, and anonymous sessions
 * (MCP_REQUIRE_AUTH=false) capped per address. Clients come from several loopback addresses
 * (127.0.0.0/8 all reach a gateway listening on 127.0.0.1), so "one address" and "another
 * address" are real client addresses as the gateway sees them.
 */

afterAll(cleanup);

const readerKey = (n: number) => `caps-reader-${n}-0123456789abcdef`;
const READERS_YAML =
  'auth:\n  apiKeys:\n' +
  Array.from({ length: 8 }, (_, n) => `    - { name: reader${n}, sha256: ${sha256Hex(readerKey(n))}, scopes: [read] }\n`).join('') +
  `    - { name: second-admin, sha256: ${sha256Hex('caps-second-admin-0123456789abcdef')}, scopes: [admin] }\n` +
  // Many requests from loopback: keep the per-IP quota out of the picture.
  'rateLimit:\n  allowList:\n    cidrs: [127.0.0.0/8]\n';

interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/** One /mcp request from `localAddress`; resolves when the answer has ended. */
function mcpFrom(
  gw: GatewayProcess,
  localAddress: string,
  options: { method?: 'POST' | 'GET'; headers?: Record<string, string>; body?: unknown; sessionId?: string },
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = openFrom(gw, localAddress, options, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

function openFrom(
  gw: GatewayProcess,
  localAddress: string,
  options: { method?: 'POST' | 'GET'; headers?: Record<string, string>; body?: unknown; sessionId?: string },
  onResponse: (res: IncomingMessage) => void,
): ClientRequest {
  const method = options.method ?? 'POST';
  const body = options.body !== undefined ? JSON.stringify(options.body) : undefined;
  const req = httpRequest(
    {
      host: '127.0.0.1',
      port: gw.port,
      path: '/mcp',
      method,
      localAddress,
      agent: false,
      headers: {
        accept: method === 'GET' ? 'text/event-stream' : 'application/json, text/event-stream',
        ...(body !== undefined ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } : {}),
        ...(options.sessionId !== undefined ? { 'mcp-session-id': options.sessionId, 'mcp-protocol-version': LATEST_PROTOCOL_VERSION } : {}),
        ...options.headers,
      },
    },
    onResponse,
  );
  req.setTimeout(10_000, () => req.destroy(new Error('timed out')));
  req.end(body);
  return req;
}

/** initialize from `localAddress`: the session id, or the refusal's status and code. */
async function initialize(gw: GatewayProcess, localAddress: string, headers: Record<string, string> = {}): Promise<{ status: number; sessionId?: string; code?: string }> {
  const res = await mcpFrom(gw, localAddress, { headers, body: initializeMessage() });
  const sessionId = res.headers['mcp-session-id'];
  if (res.status === 200 && typeof sessionId === 'string') return { status: 200, sessionId };
  return { status: res.status, code: (JSON.parse(res.body) as { error: { code: string } }).error.code };
}

/** Whether a session is still open (a tools/list on it answers 200, not 404). */
async function alive(gw: GatewayProcess, localAddress: string, sessionId: string, headers: Record<string, string> = {}): Promise<boolean> {
  const res = await mcpFrom(gw, localAddress, { headers, sessionId, body: { jsonrpc: '2.0', id: 2, method: 'tools/list' } });
  if (res.status !== 200 && res.status !== 404) throw new Error(`unexpected ${res.status}: ${res.body}`);
  return res.status === 200;
}

/** Opens the session's standalone SSE stream and keeps it open (a busy session) until cleanup. */
function holdStream(gw: GatewayProcess, localAddress: string, sessionId: string, headers: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = openFrom(gw, localAddress, { method: 'GET', headers, sessionId }, (res) => {
      if (res.statusCode !== 200) reject(new Error(`GET stream: ${res.statusCode}`));
      else resolve();
    });
    req.setTimeout(0);
    req.on('error', () => {});
    onCleanup(() => {
      req.destroy();
    });
  });
}

describe('MCP session slots with the default caps (maxSessions 100)', () => {
  it('five read principals x 20 sessions each cannot fill the slots: each keeps at most maxSessionsPerPrincipal, and an admin still gets a session', async () => {
    const gw = await startGateway({ yaml: READERS_YAML });
    const ids: string[][] = [];
    for (let n = 0; n < 5; n++) {
      const key = { 'x-api-key': readerKey(n) };
      const mine: string[] = [];
      for (let i = 0; i < 20; i++) {
        const res = await initialize(gw, `127.0.0.${10 + n}`, key);
        // Past its cap a principal trades its own least recently used idle session for the new one.
        expect(res.status).toBe(200);
        mine.push(res.sessionId!);
      }
      ids.push(mine);
    }
    for (let n = 0; n < 5; n++) {
      const key = { 'x-api-key': readerKey(n) };
      const open: boolean[] = [];
      for (const id of ids[n]!) open.push(await alive(gw, `127.0.0.${10 + n}`, id, key));
      // Default maxSessionsPerPrincipal: 10; the oldest ten were closed.
      expect(open).toEqual([...Array<boolean>(10).fill(false), ...Array<boolean>(10).fill(true)]);
    }
    const adminSession = await initialize(gw, '127.0.0.99', { 'x-api-key': E2E_API_KEY });
    expect(adminSession.status).toBe(200);
    // And another reader, from an address of its own.
    expect((await initialize(gw, '127.0.0.98', { 'x-api-key': readerKey(6) })).status).toBe(200);
    await gw.stop();
  }, 60_000);

  it('read principals sharing one address hold at most maxSessionsPerAddress; an admin from that address is not capped by it', async () => {
    const gw = await startGateway({ yaml: READERS_YAML });
    const address = '127.0.0.20';
    for (const n of [0, 1]) {
      for (let i = 0; i < 10; i++) expect((await initialize(gw, address, { 'x-api-key': readerKey(n) })).status).toBe(200);
    }
    // 20 non-admin sessions from this address (default maxSessionsPerAddress), none of reader 2's.
    const refused = await initialize(gw, address, { 'x-api-key': readerKey(2) });
    expect(refused).toEqual({ status: 503, code: 'GW_MCP_TOO_MANY_SESSIONS' });
    expect((await initialize(gw, '127.0.0.21', { 'x-api-key': readerKey(2) })).status).toBe(200);
    expect((await initialize(gw, address, { 'x-api-key': E2E_API_KEY })).status).toBe(200);
    await gw.stop();
  }, 60_000);
});

describe('MCP session slots: the admin reserve, and busy sessions', () => {
  it('non-admins stop at maxSessions - adminReservedSessions even when every session is busy; admins get the rest', async () => {
    const gw = await startGateway({
      yaml: READERS_YAML + 'mcp:\n  maxSessions: 12\n  adminReservedSessions: 4\n  maxSessionsPerPrincipal: 3\n',
    });
    // Readers 0-2 hold 3 sessions each with an open stream (busy, never reclaimed): 9 > 12 - 4.
    let held = 0;
    const results: number[] = [];
    for (let n = 0; n < 3; n++) {
      const key = { 'x-api-key': readerKey(n) };
      for (let i = 0; i < 3; i++) {
        const res = await initialize(gw, `127.0.0.${30 + n}`, key);
        results.push(res.status);
        if (res.status !== 200) {
          expect(res.code).toBe('GW_MCP_TOO_MANY_SESSIONS');
          continue;
        }
        await holdStream(gw, `127.0.0.${30 + n}`, res.sessionId!, key);
        held += 1;
      }
    }
    expect(held).toBe(8);
    expect(results.at(-1)).toBe(503);
    expect(await initialize(gw, '127.0.0.40', { 'x-api-key': readerKey(5) })).toEqual({ status: 503, code: 'GW_MCP_TOO_MANY_SESSIONS' });
    // The reserve: two admin principals take the 4 remaining slots.
    for (let i = 0; i < 3; i++) expect((await initialize(gw, '127.0.0.41', { 'x-api-key': E2E_API_KEY })).status).toBe(200);
    expect((await initialize(gw, '127.0.0.42', { 'x-api-key': 'caps-second-admin-0123456789abcdef' })).status).toBe(200);
    await gw.stop();
  }, 60_000);
});

describe('MCP session slots: an initialize the transport refuses holds no slot', () => {
  it('a refused initialize (406, wrong Accept) gives its slot back at once', async () => {
    const gw = await startGateway({ yaml: READERS_YAML + 'mcp:\n  maxSessions: 2\n  adminReservedSessions: 1\n' });
    for (let i = 0; i < 3; i++) {
      const res = await mcpFrom(gw, '127.0.0.60', { headers: { 'x-api-key': readerKey(0), accept: 'application/json' }, body: initializeMessage() });
      expect(res.status).toBe(406);
      expect(res.headers['mcp-session-id']).toBeUndefined();
    }
    // The one non-admin slot is free for someone else.
    expect((await initialize(gw, '127.0.0.61', { 'x-api-key': readerKey(1) })).status).toBe(200);
    expect(await initialize(gw, '127.0.0.62', { 'x-api-key': readerKey(2) })).toEqual({ status: 503, code: 'GW_MCP_TOO_MANY_SESSIONS' });
    await gw.stop();
  }, 30_000);
});

describe('MCP session slots with MCP_REQUIRE_AUTH=false', () => {
  it('one anonymous address cannot exhaust the slots: it keeps at most maxSessionsPerAddress, others still connect', async () => {
    const gw = await startGateway({ env: { MCP_REQUIRE_AUTH: 'false' }, yaml: READERS_YAML });
    const ids: string[] = [];
    for (let i = 0; i < 120; i++) {
      const res = await initialize(gw, '127.0.0.50');
      expect(res.status).toBe(200);
      ids.push(res.sessionId!);
    }
    let open = 0;
    for (const id of ids) if (await alive(gw, '127.0.0.50', id)) open += 1;
    expect(open).toBe(20);
    expect((await initialize(gw, '127.0.0.51')).status).toBe(200);
    expect((await initialize(gw, '127.0.0.52', { 'x-api-key': E2E_API_KEY })).status).toBe(200);

    // An anonymous address whose sessions are all busy gets 503 past its cap.
    for (let i = 0; i < 20; i++) {
      const res = await initialize(gw, '127.0.0.53');
      expect(res.status).toBe(200);
      await holdStream(gw, '127.0.0.53', res.sessionId!, {});
    }
    expect(await initialize(gw, '127.0.0.53')).toEqual({ status: 503, code: 'GW_MCP_TOO_MANY_SESSIONS' });
    expect((await initialize(gw, '127.0.0.54')).status).toBe(200);
    await gw.stop();
  }, 90_000);
});
