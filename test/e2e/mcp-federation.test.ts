import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client as Client2, StreamableHTTPClientTransport as Transport2 } from '@modelcontextprotocol/client';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CreateMessageRequestSchema, ElicitRequestSchema, ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, E2E_API_KEY, onCleanup, startGateway, type GatewayProcess } from '../helpers/gateway.js';
import { connectMcp, mcpMessages, mcpRaw, type McpTestClient } from '../helpers/mcp.js';

/*
 * Federation on /mcp, end to end: the built gateway federating real MCP servers from npm over
 * stdio (memory, sequential-thinking, the everything server), called by agents of both eras
 * (SDK 1.x client at 2025-11-25, SDK 2 client at 2026-07-28) without credentials
 * (MCP_REQUIRE_AUTH=false: read and write tools, never admin ones).
 */

afterAll(cleanup);

const require = createRequire(import.meta.url);
const EVERYTHING = join(require.resolve('@modelcontextprotocol/server-everything/package.json'), '..', 'dist', 'index.js');

async function until<T>(check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function processes(needle: string): { pid: number; args: string }[] {
  const out = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((line) => /^\s*(\d+)\s+(.*)$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null && m[2]!.includes(needle) && !m[2]!.startsWith('ps '))
    .map((m) => ({ pid: Number(m[1]), args: m[2]! }));
}

interface Health {
  mcpServers?: Record<string, { state: string; toolCount: number }>;
}

const text = (r: unknown) => (((r as { content?: unknown }).content as Array<{ type: string; text?: string }> | undefined) ?? []).map((c) => c.text ?? '').join('\n');

let gw: GatewayProcess;
let dataDir: string;
const marker = `fed-${process.pid}-${Date.now()}`;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'ugw-fed-data-'));
  onCleanup(() => rmSync(dataDir, { recursive: true, force: true }));
  const yaml = [
    'mcp:',
    `  dataDir: ${JSON.stringify(dataDir)}`,
    '  servers:',
    '    memory:',
    '      preset: memory',
    "      scopes: { 'delete_*': admin }",
    '    thinking:',
    '      preset: sequential-thinking',
    '      rateLimit: { requests: 3, windowSeconds: 60 }',
    '    everything:',
    `      command: ${JSON.stringify(process.execPath)}`,
    `      args: [${JSON.stringify(EVERYTHING)}, stdio, ${JSON.stringify(marker)}]`,
    "      tools: { deny: ['get-env'] }",
    '',
  ].join('\n');
  gw = await startGateway({ env: { MCP_REQUIRE_AUTH: 'false' }, yaml });
  await until(
    async () => {
      const h = (await (await fetch(`${gw.url}/healthz`)).json()) as Health;
      return ['memory', 'thinking', 'everything'].every((s) => h.mcpServers?.[s]?.state === 'ready');
    },
    30_000,
    'the three upstream servers connected',
  );
}, 60_000);

describe('federated tools of real servers (2025-11-25 agent)', () => {
  let agent: McpTestClient;
  beforeAll(async () => {
    agent = await connectMcp(gw.url);
  });

  it('lists upstream tools with the server prefix next to the gateway’s own, with titles, annotations and output schemas kept; denied and admin-scoped ones left out', async () => {
    const { tools } = await agent.client.listTools();
    const names = tools.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(['list_routes', 'memory__create_entities', 'memory__read_graph', 'thinking__sequentialthinking', 'everything__echo']));
    expect(names).not.toContain('everything__get-env');
    expect(names).not.toContain('memory__delete_entities');
    const structured = tools.find((t) => t.name === 'everything__get-structured-content');
    expect(structured?.outputSchema).toBeDefined();
    const sampling = tools.find((t) => t.name === 'everything__trigger-sampling-request');
    expect(sampling?.title).toBe('Trigger Sampling Request Tool');
    expect(sampling?.annotations).toMatchObject({ openWorldHint: true, readOnlyHint: false });
  });

  it('memory: entities created through the gateway are in the memory file and in read_graph', async () => {
    const name = `Gateway-${Date.now()}`;
    const created = await agent.client.callTool({ name: 'memory__create_entities', arguments: { entities: [{ name, entityType: 'service', observations: ['federated through /mcp'] }] } });
    expect(created.isError ?? false).toBe(false);
    const graph = await agent.client.callTool({ name: 'memory__read_graph', arguments: {} });
    expect(text(graph)).toContain(name);
    const files = execFileSync('ls', [dataDir], { encoding: 'utf8' }).trim().split('\n');
    const file = files.map((f) => join(dataDir, f)).find((f) => readFileSync(f, 'utf8').includes(name));
    expect(file, `memory file in ${dataDir} (${files.join(', ')})`).toBeDefined();
    expect(readFileSync(file!, 'utf8')).toContain('federated through /mcp');
  });

  it('an admin-scoped tool is refused to a caller without admin, naming the scope', async () => {
    const r = await agent.client.callTool({ name: 'memory__delete_entities', arguments: { entityNames: ['x'] } });
    expect(r.isError).toBe(true);
    expect(text(r)).toContain('GW_AUTH_INSUFFICIENT_SCOPE');
  });

  it('sequential-thinking: a chain of thoughts, then the per-caller quota of the server', async () => {
    const results = [];
    for (let n = 1; n <= 3; n++) {
      const r = await agent.client.callTool({
        name: 'thinking__sequentialthinking',
        arguments: { thought: `step ${n} of the routing analysis`, thoughtNumber: n, totalThoughts: 3, nextThoughtNeeded: n < 3 },
      });
      expect(r.isError ?? false, text(r)).toBe(false);
      results.push(JSON.parse(text(r)) as { thoughtNumber: number; thoughtHistoryLength: number });
    }
    expect(results.map((r) => r.thoughtNumber)).toEqual([1, 2, 3]);
    expect(results[2]!.thoughtHistoryLength).toBeGreaterThanOrEqual(3);
    // rateLimit: 3 per minute per caller and tool.
    const limited = await agent.client.callTool({ name: 'thinking__sequentialthinking', arguments: { thought: 'one too many', thoughtNumber: 4, totalThoughts: 4, nextThoughtNeeded: false } });
    expect(limited.isError).toBe(true);
    expect(text(limited)).toContain('GW_MCP_TOOL_RATE_LIMITED');
  });

  it('everything: progress and log messages of the upstream call reach the agent', async () => {
    const progress: number[] = [];
    await agent.client.setLoggingLevel('debug');
    const r = await agent.client.callTool({ name: 'everything__trigger-long-running-operation', arguments: { duration: 1, steps: 4 } }, undefined, {
      onprogress: (p) => progress.push(p.progress),
    });
    expect(r.isError ?? false).toBe(false);
    expect(progress.length).toBeGreaterThanOrEqual(3);
    expect([...progress].sort((a, b) => a - b)).toEqual(progress);
  });

  it('everything: resources (namespaced URIs, templates) and prompts (with arguments) through the gateway', async () => {
    const { resources } = await agent.client.listResources();
    const upstream = resources.filter((r) => r.uri.startsWith('ugw.everything.'));
    expect(upstream.length).toBeGreaterThan(0);
    const first = upstream[0]!;
    const read = await agent.client.readResource({ uri: first.uri });
    expect(read.contents[0]?.uri).toBe(first.uri);
    const { resourceTemplates } = await agent.client.listResourceTemplates();
    expect(resourceTemplates.some((t) => t.uriTemplate.startsWith('ugw.everything.'))).toBe(true);
    const { prompts } = await agent.client.listPrompts();
    const names = prompts.map((p) => p.name);
    expect(names).toEqual(expect.arrayContaining(['diagnose_service', 'everything__simple-prompt']));
    const simple = await agent.client.getPrompt({ name: 'everything__simple-prompt' });
    expect(simple.messages.length).toBeGreaterThan(0);
    const withArgs = prompts.find((p) => (p.arguments ?? []).some((a) => a.required));
    expect(withArgs).toBeDefined();
    const args = Object.fromEntries((withArgs!.arguments ?? []).map((a) => [a.name, 'Paris']));
    const got = await agent.client.getPrompt({ name: withArgs!.name, arguments: args });
    expect(JSON.stringify(got.messages)).toContain('Paris');
  });

  it('cancellation: an agent giving up on a call cancels it upstream', async () => {
    const abort = new AbortController();
    const pending = agent.client.callTool({ name: 'everything__trigger-long-running-operation', arguments: { duration: 20, steps: 20 } }, undefined, { signal: abort.signal });
    await new Promise((r) => setTimeout(r, 500));
    abort.abort();
    await expect(pending).rejects.toThrow();
    const cancelled = await until(
      async () => {
        const text = await (await fetch(`${gw.url}/metrics`)).text();
        return /gateway_mcp_upstream_calls_total\{[^}]*server="everything"[^}]*tool="trigger-long-running-operation"[^}]*status="cancelled"[^}]*\} [1-9]/.test(text) || /gateway_mcp_upstream_calls_total\{[^}]*status="cancelled"[^}]*server="everything"/.test(text);
      },
      10_000,
      'the upstream call counted as cancelled',
    );
    expect(cancelled).toBe(true);
  });

  it('the audit line of a federated call names the server', async () => {
    await agent.client.callTool({ name: 'everything__echo', arguments: { message: 'audit me' } });
    const line = await until(
      () => gw.logs.find((l) => (l.audit as { tool?: string; phase?: string } | undefined)?.tool === 'everything__echo' && (l.audit as { phase?: string }).phase === 'ended'),
      5000,
      'audit line',
    );
    expect(line.audit).toMatchObject({ server: 'everything', result: 'ok' });
    expect(JSON.stringify(line)).not.toContain('audit me');
  });
});

describe('2026-07-28 agent: sampling and elicitation of a push-style upstream come back as input_required', () => {
  it('the agent’s client answers the relayed sampling request and the upstream gets the answer', async () => {
    const agent = new Client2({ name: 'e2e-modern', version: '1.0.0' }, { capabilities: { sampling: {}, elicitation: { form: {} } }, versionNegotiation: { mode: { pin: '2026-07-28' } } });
    const asked: string[] = [];
    agent.setRequestHandler('sampling/createMessage', async (request) => {
      asked.push(JSON.stringify(request.params.messages));
      return { model: 'e2e-model', role: 'assistant', content: { type: 'text', text: 'sampled by the agent' } };
    });
    agent.setRequestHandler('elicitation/create', async () => ({ action: 'accept', content: { color: 'blue', number: 7, pets: 'Cats' } }));
    await agent.connect(new Transport2(new URL(`${gw.url}/mcp`)));
    onCleanup(() => agent.close());
    const r = await agent.callTool({ name: 'everything__trigger-sampling-request', arguments: { prompt: 'say hi', maxTokens: 5 } });
    expect(asked.join()).toContain('say hi');
    expect(text(r)).toContain('sampled by the agent');
    const e = await agent.callTool({ name: 'everything__trigger-elicitation-request', arguments: {} });
    expect(e.isError ?? false, text(e)).toBe(false);
  });

  it('an agent that declared no sampling capability: the upstream gets the method-not-found error naming the missing capability, and answers with its tool error', async () => {
    const agent = new Client2({ name: 'e2e-plain', version: '1.0.0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
    await agent.connect(new Transport2(new URL(`${gw.url}/mcp`)));
    onCleanup(() => agent.close());
    const r = await agent.callTool({ name: 'everything__trigger-sampling-request', arguments: { prompt: 'say hi', maxTokens: 5 } });
    expect(r.isError).toBe(true);
    expect(text(r)).toContain('-32601');
    expect(text(r)).toContain('did not declare the sampling capability');
  });
});

describe('2026-07-28 requests of one federated tool in turn and at once (the gateway reuses its server instances across them)', () => {
  let id = 1000;
  /** One 2026-07-28 tools/call as raw HTTP: its JSON-RPC answer. */
  const call = async (name: string, args: Record<string, unknown>, who: 'anonymous' | 'admin', capabilities: Record<string, unknown> = {}) => {
    const requestId = ++id;
    const res = await mcpRaw(gw.url, {
      anonymous: who === 'anonymous',
      headers: { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': name, ...(who === 'admin' ? { 'x-api-key': E2E_API_KEY } : {}) },
      body: {
        jsonrpc: '2.0',
        id: requestId,
        method: 'tools/call',
        params: {
          name,
          arguments: args,
          _meta: {
            'io.modelcontextprotocol/protocolVersion': '2026-07-28',
            'io.modelcontextprotocol/clientInfo': { name: `e2e-${who}`, version: '1.0.0' },
            'io.modelcontextprotocol/clientCapabilities': capabilities,
          },
        },
      },
    });
    expect(res.status).toBe(200);
    return mcpMessages(res).find((m) => m.id === requestId)!;
  };

  it('each call is checked with its own principal: an admin-scoped tool alternately refused to an anonymous caller and run for the admin key, each audited under its caller', async () => {
    // Only this test's audit lines: earlier tests' lines of the same tool may still be arriving (logs are buffered).
    const from = await gw.logMark();
    for (let round = 0; round < 3; round++) {
      const refused = await call('memory__delete_entities', { entityNames: [`nobody-${round}`] }, 'anonymous');
      expect(refused.result?.isError).toBe(true);
      expect(text(refused.result)).toContain('GW_AUTH_INSUFFICIENT_SCOPE');
      const allowed = await call('memory__delete_entities', { entityNames: [`nobody-${round}`] }, 'admin');
      expect(allowed.result?.isError ?? false, text(allowed.result)).toBe(false);
    }
    const ended = await until(
      () => {
        const lines = gw.logs
          .slice(from)
          .map((l) => l.audit as { tool?: string; phase?: string; principal?: string; result?: string } | undefined)
          .filter((a) => a?.tool === 'memory__delete_entities' && a.phase === 'ended' && a.principal !== undefined);
        return lines.length >= 6 ? lines : undefined;
      },
      5000,
      'six audit lines',
    );
    expect(ended.map((a) => a!.result)).toEqual(['refused', 'ok', 'refused', 'ok', 'refused', 'ok']);
    expect(ended.map((a) => a!.principal === 'anonymous')).toEqual([true, false, true, false, true, false]);
  });

  it('each call sees its own client capabilities: a sampling-capable and a plain agent in turn on the same tool', async () => {
    const capable = new Client2({ name: 'e2e-capable', version: '1.0.0' }, { capabilities: { sampling: {} }, versionNegotiation: { mode: { pin: '2026-07-28' } } });
    capable.setRequestHandler('sampling/createMessage', async () => ({ model: 'e2e-model', role: 'assistant', content: { type: 'text', text: 'sampled in turn' } }));
    await capable.connect(new Transport2(new URL(`${gw.url}/mcp`)));
    onCleanup(() => capable.close());
    for (let round = 0; round < 2; round++) {
      const sampled = await capable.callTool({ name: 'everything__trigger-sampling-request', arguments: { prompt: 'hi', maxTokens: 5 } });
      expect(text(sampled)).toContain('sampled in turn');
      const plain = await call('everything__trigger-sampling-request', { prompt: 'hi', maxTokens: 5 }, 'anonymous');
      expect(plain.result?.isError, JSON.stringify(plain)).toBe(true);
      expect(text(plain.result)).toContain('did not declare the sampling capability');
    }
  });

  it('concurrent calls each get their own answer, and calls after a cancelled one still run and are audited', async () => {
    const answers = await Promise.all(Array.from({ length: 12 }, (_, n) => call('everything__echo', { message: `concurrent-${n}` }, n % 2 === 0 ? 'anonymous' : 'admin')));
    answers.forEach((a, n) => expect(text(a.result)).toBe(`Echo: concurrent-${n}`));
    // A call given up on mid-way (its exchange ends without an answer), then more calls of the same tool.
    const gaveUp = new AbortController();
    const slow = fetch(`${gw.url}/mcp`, {
      method: 'POST',
      signal: gaveUp.signal,
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'everything__trigger-long-running-operation' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 'slow-1',
        method: 'tools/call',
        params: {
          name: 'everything__trigger-long-running-operation',
          arguments: { duration: 2, steps: 2 },
          _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientInfo': { name: 'e2e-slow', version: '1.0.0' }, 'io.modelcontextprotocol/clientCapabilities': {} },
        },
      }),
    }).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 300));
    gaveUp.abort();
    await slow;
    const after = await call('everything__trigger-long-running-operation', { duration: 0.2, steps: 1 }, 'anonymous');
    expect(after.result?.isError ?? false, JSON.stringify(after)).toBe(false);
    expect(text(after.result)).toContain('completed');
  });
});

describe('2025-11-25 agent: sampling and elicitation of an upstream are asked on the call’s own stream', () => {
  it('the agent answers and the upstream gets the answer', async () => {
    const agent = new Client({ name: 'e2e-legacy', version: '1.0.0' }, { capabilities: { sampling: {}, elicitation: {} } });
    const asked: string[] = [];
    agent.setRequestHandler(CreateMessageRequestSchema, async (request) => {
      asked.push(JSON.stringify(request.params.messages));
      return { model: 'e2e-model', role: 'assistant', content: { type: 'text', text: 'sampled by the 2025 agent' } };
    });
    agent.setRequestHandler(ElicitRequestSchema, async () => ({ action: 'decline' }));
    await agent.connect(new StreamableHTTPClientTransport(new URL(`${gw.url}/mcp`)));
    onCleanup(() => agent.close());
    const r = await agent.callTool({ name: 'everything__trigger-sampling-request', arguments: { prompt: 'legacy hi', maxTokens: 5 } });
    expect(asked.join()).toContain('legacy hi');
    expect(text(r)).toContain('sampled by the 2025 agent');
    const e = await agent.callTool({ name: 'everything__trigger-elicitation-request', arguments: {} });
    expect(text(e)).toMatch(/decline/i);
  });

  it('a 2025 agent without the capability is not asked: the upstream gets -32601', async () => {
    const agent = await connectMcp(gw.url);
    const r = await agent.client.callTool({ name: 'everything__trigger-sampling-request', arguments: { prompt: 'x', maxTokens: 5 } });
    expect(r.isError).toBe(true);
    expect(text(r)).toContain('did not declare the sampling capability');
  });
});

describe('a failing upstream never breaks the session', () => {
  it('kill -9 of the everything server: its tools leave the list (list_changed), calls get a tool error naming it, the rest works, and they come back', async () => {
    const agent = await connectMcp(gw.url);
    let changes = 0;
    agent.client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      changes += 1;
    });
    // The session's GET stream carries list_changed.
    await until(async () => (await agent.client.listTools()).tools.length > 0, 5000, 'tools');
    // The server itself, not its supervisor (whose command line names it too).
    const victim = processes(marker).find((p) => !p.args.includes('watchdog'));
    expect(victim, 'the everything server process').toBeDefined();
    const listedBefore = (await agent.client.listTools()).tools.filter((t) => t.name.startsWith('everything__')).length;
    expect(listedBefore).toBeGreaterThan(0);
    process.kill(victim!.pid, 'SIGKILL');
    // While it is down: not listed, and a call answers a tool error naming it (it restarts within a second or so).
    const down = await until(
      async () => {
        const listed = (await agent.client.listTools()).tools.some((t) => t.name.startsWith('everything__'));
        const r = await agent.client.callTool({ name: 'everything__echo', arguments: { message: 'x' } });
        return !listed && r.isError === true ? r : undefined;
      },
      5000,
      'everything tools left the list and answer a tool error',
    );
    expect(text(down)).toContain('GW_MCP_UPSTREAM_FAILED: MCP server "everything"');
    const graph = await agent.client.callTool({ name: 'memory__read_graph', arguments: {} });
    expect(graph.isError ?? false).toBe(false);
    await until(async () => (await agent.client.listTools()).tools.some((t) => t.name === 'everything__echo'), 20_000, 'everything tools back after the restart');
    await until(() => changes >= 2, 5000, 'two tools/list_changed notifications (gone, back)');
    const echo = await agent.client.callTool({ name: 'everything__echo', arguments: { message: 'back' } });
    expect(text(echo)).toContain('back');
  }, 40_000);
});
