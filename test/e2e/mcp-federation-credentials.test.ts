import { spawn } from 'node:child_process';
import { createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, expect, it } from 'vitest';
import { cleanup, E2E_API_KEY, onCleanup, ROOT, startGateway } from '../helpers/gateway.js';
import { connectMcp } from '../helpers/mcp.js';

/*
 * Never the caller's token upstream (the MCP spec forbids token passthrough): an agent calls a
 * federated tool with its API key; the upstream (the conformance fixture over Streamable HTTP,
 * behind a recording proxy) sees the server's own configured header, never the agent's
 * credential.
 */

afterAll(cleanup);

it('a federated call carries the server’s configured credentials upstream, never the agent’s', async () => {
  // The fixture over HTTP.
  const fixture = spawn(process.execPath, [join(ROOT, 'test/fixtures/conformance-server.ts'), '--http', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  onCleanup(() => void fixture.kill('SIGKILL'));
  const fixtureUrl = new URL(await new Promise<string>((resolve) => createInterface({ input: fixture.stdout! }).once('line', resolve)));
  // A proxy in front of it that records every request's headers.
  const seen: IncomingHttpHeaders[] = [];
  const proxy = createServer((req, res) => {
    seen.push(req.headers);
    const up = httpRequest({ host: fixtureUrl.hostname, port: fixtureUrl.port, path: req.url, method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    req.pipe(up);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  onCleanup(() => new Promise<void>((resolve) => proxy.close(() => resolve())));
  const address = proxy.address() as { port: number };

  const gw = await startGateway({
    env: { UPSTREAM_FIXTURE_TOKEN: 'fixture-own-token-0123456789' },
    yaml: `mcp:\n  servers:\n    fx:\n      url: http://127.0.0.1:${address.port}/mcp\n      headers: { authorization: 'Bearer \${UPSTREAM_FIXTURE_TOKEN}' }\n`,
  });
  const deadline = Date.now() + 20_000;
  for (;;) {
    const h = (await (await fetch(`${gw.url}/healthz`)).json()) as { mcpServers?: Record<string, { state: string }> };
    if (h.mcpServers?.fx?.state === 'ready') break;
    if (Date.now() > deadline) throw new Error(`fx did not connect: ${JSON.stringify(h.mcpServers)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const agent = await connectMcp(gw.url, { 'x-api-key': E2E_API_KEY });
  seen.length = 0;
  const r = await agent.client.callTool({ name: 'fx__test_simple_text', arguments: {} });
  expect(JSON.stringify(r.content)).toContain('simple text response');
  expect(seen.length).toBeGreaterThan(0);
  for (const headers of seen) {
    expect(JSON.stringify(headers)).not.toContain(E2E_API_KEY);
    expect(headers['x-api-key']).toBeUndefined();
    expect(headers.authorization).toBe('Bearer fixture-own-token-0123456789');
  }
  await agent.client.close();
}, 60_000);
