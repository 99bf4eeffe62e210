import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Client as Client2, StreamableHTTPClientTransport as Transport2 } from '@modelcontextprotocol/client';
import { Client as Client1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as Transport1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { pino } from 'pino';
import { sha256Hex as sha256 } from '../../src/auth/api-keys.js';
import { loadConfig } from '../../src/config/index.js';
import { buildGateway, type BuildOptions, type Gateway } from '../../src/server/app.js';

/*
 * A whole gateway in this process on a free loopback port, for the /mcp suites that need to
 * see inside it (audit lines, an injected state store) or to be fast: the real Fastify app,
 * real HTTP, real SDK clients of both eras.
 */

export const ADMIN_KEY = 'mcp-inproc-admin-key-0123456789';
export const READER_KEY = 'mcp-inproc-reader-key-0123456789';

export interface InProcessGateway {
  readonly gateway: Gateway;
  readonly url: string;
  /** Every JSON log line the gateway wrote. */
  readonly logs: Array<Record<string, any>>;
  /** The audit entries (`{audit: …}` lines). */
  audits(): Array<Record<string, any>>;
  close(): Promise<void>;
}

const running = new Set<InProcessGateway>();

/** Stop every in-process gateway started by this file. */
export async function closeInProcess(): Promise<void> {
  await Promise.all([...running].map((g) => g.close()));
}

export async function startInProcess(
  options: { env?: Record<string, string>; yaml?: string; build?: BuildOptions } = {},
): Promise<InProcessGateway> {
  const yaml = `auth:\n  apiKeys:\n    - { name: reader, sha256: ${sha256(READER_KEY)}, scopes: [read] }\n${options.yaml ?? ''}`;
  const file = join(mkdtempSync(join(tmpdir(), 'ugw-mcp-inproc-')), 'gateway.yaml');
  writeFileSync(file, yaml);
  const result = loadConfig(
    { GATEWAY_HOST: '127.0.0.1', GATEWAY_PORT: '0', API_KEY: ADMIN_KEY, ENABLE_AGENT_FORGE: 'false', ENABLE_P2P_FOG: 'false', ...options.env },
    { file },
  );
  if (!result.ok) throw new Error(result.problems.join('\n'));
  const logs: Array<Record<string, any>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() === '') continue;
        try {
          logs.push(JSON.parse(line) as Record<string, any>);
        } catch {
          // not a log line
        }
      }
      done();
    },
  });
  const gateway = await buildGateway(result.config, { logger: pino({ level: 'info' }, sink), processMetrics: false, ...options.build });
  const url = await gateway.listen();
  let closed: Promise<void> | undefined;
  const handle: InProcessGateway = {
    gateway,
    url,
    logs,
    audits: () => logs.filter((l) => l.audit !== undefined).map((l) => l.audit as Record<string, any>),
    close: () => {
      closed ??= gateway.close().finally(() => running.delete(handle));
      return closed;
    },
  };
  running.add(handle);
  return handle;
}


/** An SDK 2 client pinned to 2026-07-28 (connected: server/discover done). */
export async function modernClient(url: string, headers: Record<string, string> = { 'x-api-key': ADMIN_KEY }): Promise<Client2> {
  const client = new Client2({ name: 'test-modern', version: '1.0.0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
  await client.connect(new Transport2(new URL(`${url}/mcp`), { requestInit: { headers } }));
  return client;
}

/** An SDK 1.x client (2025-11-25, a session), connected. */
export async function legacyClient(url: string, headers: Record<string, string> = { 'x-api-key': ADMIN_KEY }): Promise<{ client: Client1; transport: Transport1 }> {
  const transport = new Transport1(new URL(`${url}/mcp`), { requestInit: { headers } });
  const client = new Client1({ name: 'test-legacy', version: '1.0.0' });
  await client.connect(transport);
  return { client, transport };
}

/** The request metadata a 2026-07-28 request carries, for raw requests. */
export function envelope(protocolVersion = '2026-07-28'): Record<string, unknown> {
  return {
    'io.modelcontextprotocol/protocolVersion': protocolVersion,
    'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1.0.0' },
    'io.modelcontextprotocol/clientCapabilities': {},
  };
}
