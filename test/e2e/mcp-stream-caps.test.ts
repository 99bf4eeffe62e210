import { request as httpRequest, type IncomingMessage } from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/auth/api-keys.js';
import { cleanup, E2E_API_KEY, onCleanup, startGateway, waitFor, type GatewayProcess } from '../helpers/gateway.js';
import { initializeMessage } from '../helpers/mcp.js';

/*
 * Who may hold a replica's long-lived MCP streams: 2025 GET streams and 2026-07-28
 * subscriptions/listen streams, the only MCP state a replica keeps between requests (2025
 * sessions are records in the state store and cost a replica nothing). Per-principal and
 * per-address caps (a caller's newer stream closes its own oldest), a share only admins may
 * use, anonymous streams (MCP_REQUIRE_AUTH=false) capped per address. Clients come from
 * several loopback addresses (127.0.0.0/8 all reach a gateway on 127.0.0.1).
 */

afterAll(cleanup);

const readerKey = (n: number) => `caps-reader-${n}-0123456789abcdef`;
const YAML =
  'auth:\n  apiKeys:\n' +
  Array.from({ length: 4 }, (_, n) => `    - { name: reader${n}, sha256: ${sha256Hex(readerKey(n))}, scopes: [read] }\n`).join('') +
  'rateLimit:\n  allowList:\n    cidrs: [127.0.0.0/8]\n' +
  'mcp:\n  maxStreams: 8\n  maxStreamsPerPrincipal: 3\n  maxStreamsPerAddress: 4\n  adminReservedStreams: 2\n';

interface Stream {
  readonly status: number;
  /** The refusal's catalogue code (JSON-RPC error data.code). */
  readonly code?: string;
  ended(): boolean;
}

/** Open a stream and keep it: a 2025 GET stream of a new session, or a 2026-07-28 listen stream. */
async function openStream(gw: GatewayProcess, kind: 'get' | 'listen', localAddress: string, headers: Record<string, string>): Promise<Stream> {
  let sessionHeaders: Record<string, string> = {};
  if (kind === 'get') {
    const init = await send(gw, localAddress, 'POST', headers, initializeMessage());
    expect(init.status).toBe(200);
    sessionHeaders = { 'mcp-session-id': String(init.headers['mcp-session-id']), 'mcp-protocol-version': '2025-11-25' };
  }
  const body =
    kind === 'listen'
      ? {
          jsonrpc: '2.0',
          id: 1,
          method: 'subscriptions/listen',
          params: {
            notifications: { resourceSubscriptions: ['gateway://routes'] },
            _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} },
          },
        }
      : undefined;
  const extra = kind === 'listen' ? { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'subscriptions/listen' } : {};
  return new Promise((resolve, reject) => {
    let ended = false;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port: gw.port,
        path: '/mcp',
        method: kind === 'get' ? 'GET' : 'POST',
        localAddress,
        agent: false,
        headers: {
          accept: kind === 'get' ? 'text/event-stream' : 'application/json, text/event-stream',
          ...(payload !== undefined ? { 'content-type': 'application/json' } : {}),
          ...headers,
          ...sessionHeaders,
          ...extra,
        },
      },
      (res: IncomingMessage) => {
        res.on('end', () => (ended = true));
        res.on('close', () => (ended = true));
        if (res.statusCode !== 200) {
          let text = '';
          res.setEncoding('utf8').on('data', (d: string) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, code: (JSON.parse(text) as { error: { data: { code: string } } }).error.data.code, ended: () => true }));
          return;
        }
        // Open once the first frame (priming event, or the listen acknowledgement) arrives.
        res.once('data', () => resolve({ status: 200, ended: () => ended }));
        res.resume();
      },
    );
    req.on('error', reject);
    onCleanup(() => void req.destroy());
    req.end(payload);
  });
}

function send(gw: GatewayProcess, localAddress: string, method: string, headers: Record<string, string>, body: unknown): Promise<{ status: number; headers: IncomingMessage['headers'] }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port: gw.port,
        path: '/mcp',
        method,
        localAddress,
        agent: false,
        headers: { accept: 'application/json, text/event-stream', 'content-type': 'application/json', ...headers },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

describe('MCP stream slots (maxStreams 8, per principal 3, per address 4, admin reserve 2)', () => {
  it('a principal keeps at most 3 (its newest closes its oldest), readers stop at 6, an admin still opens one', async () => {
    const gw = await startGateway({ yaml: YAML });
    const key = (n: number) => ({ 'x-api-key': readerKey(n) });
    // Reader 0, from three addresses, with both kinds of stream.
    const first = await openStream(gw, 'get', '127.0.0.10', key(0));
    const second = await openStream(gw, 'listen', '127.0.0.11', key(0));
    const third = await openStream(gw, 'get', '127.0.0.12', key(0));
    const fourth = await openStream(gw, 'listen', '127.0.0.10', key(0));
    expect([first, second, third, fourth].map((s) => s.status)).toEqual([200, 200, 200, 200]);
    await waitFor(() => (first.ended() ? true : undefined), 2000, 'the oldest stream of reader 0 to end');
    expect([second.ended(), third.ended(), fourth.ended()]).toEqual([false, false, false]);
    // Three more readers from their own addresses: together they reach maxStreams - adminReservedStreams = 6.
    await openStream(gw, 'get', '127.0.0.20', key(1));
    await openStream(gw, 'listen', '127.0.0.21', key(1));
    await openStream(gw, 'get', '127.0.0.30', key(2));
    const refused = await openStream(gw, 'listen', '127.0.0.40', key(3));
    expect([refused.status, refused.code]).toEqual([503, 'GW_MCP_TOO_MANY_STREAMS']);
    // Nobody's stream was closed for reader 3.
    expect([second.ended(), third.ended(), fourth.ended()]).toEqual([false, false, false]);
    // The reserve: an admin opens both kinds.
    expect((await openStream(gw, 'listen', '127.0.0.50', { 'x-api-key': E2E_API_KEY })).status).toBe(200);
    expect((await openStream(gw, 'get', '127.0.0.50', { 'x-api-key': E2E_API_KEY })).status).toBe(200);
  });

  it('anonymous streams (MCP_REQUIRE_AUTH=false) are capped per address: the newest closes the oldest there, other addresses still open', async () => {
    const gw = await startGateway({ yaml: YAML, env: { MCP_REQUIRE_AUTH: 'false' } });
    const streams: Stream[] = [];
    for (let i = 0; i < 4; i++) streams.push(await openStream(gw, i % 2 === 0 ? 'get' : 'listen', '127.0.0.60', {}));
    expect(streams.map((s) => s.status)).toEqual([200, 200, 200, 200]);
    const fifth = await openStream(gw, 'listen', '127.0.0.60', {});
    expect(fifth.status).toBe(200);
    await waitFor(() => (streams[0]!.ended() ? true : undefined), 2000, 'the oldest anonymous stream to end');
    expect((await openStream(gw, 'get', '127.0.0.61', {})).status).toBe(200);
  });
});
