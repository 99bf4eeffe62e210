import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/auth/api-keys.js';
import { cleanup, E2E_API_KEY, runCli, sleep, startGateway, type GatewayProcess, type LogLine } from '../helpers/gateway.js';
import { call } from '../helpers/http.js';
import { connectMcp, initializeMessage, mcpClient, mcpMessages, mcpRaw, toolNames, type McpTestClient } from '../helpers/mcp.js';
import { parsePrometheusText } from '../helpers/prometheus.js';
import { standIns } from '../helpers/upstreams.js';

/*
 * The security of the gateway's MCP endpoint (/mcp), against real gateway processes with the
 * SDK's own client: authentication, Origin (DNS-rebinding) checks, which tools a principal is
 * offered and may run, MFA for the mutating tools, the audit line and metric of every call,
 * MCP_REQUIRE_AUTH=false (and its refusal in production), RFC 9728 metadata, that a
 * session belongs to the principal that opened it, and that each request is authorised by its
 * own credential rather than the one the session was opened with.
 */

const JWT_SECRET = 'e2e-mcp-jwt-secret-0123456789-abcdefghij';
const hsKey = new TextEncoder().encode(JWT_SECRET);
const ISSUER = 'https://issuer.example';
const READER_KEY = 'mcp-sec-reader-key-0123456789';
/** The principal of the env API_KEY (E2E_API_KEY), an admin key without MFA. */
const ADMIN_SUBJECT = 'key:env-api-key';

/** The tools behind the admin access rule (admin scope, MFA when configured), as the REST /admin endpoints. */
const ADMIN_TOOLS = ['shift_traffic', 'unblock_client', 'reset_circuit_breaker', 'list_blocked_clients', 'validate_routing_model'];
const READ_TOOLS = ['list_routes', 'get_route', 'list_services', 'get_service_health', 'get_metrics', 'query_metric', 'get_traffic_split'];

const SPLIT_ROUTE =
  'routes:\n' +
  '  - id: canary-twin\n' +
  '    prefix: /v1/twin\n' +
  '    service: twin\n' +
  '    split: { canary: { service: knowledge }, weights: { stable: 100, canary: 0 } }\n';

const admin = { 'x-api-key': E2E_API_KEY };
const reader = { 'x-api-key': READER_KEY };
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** An HS256 token signed with the gateway's JWT_SECRET_KEY. */
function jwt(sub: string, claims: Record<string, unknown>, issuer?: string): Promise<string> {
  const token = new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime('5m');
  if (issuer !== undefined) token.setIssuer(issuer);
  return token.sign(hsKey);
}

/** A JSON-RPC request on an existing session with the given credentials; its one answer. */
async function rpcOn(gw: GatewayProcess, sessionId: string, headers: Record<string, string>, method: string, params: Record<string, unknown>, id: number) {
  const res = await mcpRaw(gw.url, { sessionId, headers, body: { jsonrpc: '2.0', id, method, params } });
  expect(res.status).toBe(200);
  const answer = mcpMessages(res).find((m) => m.id === id);
  expect(answer).toBeDefined();
  return answer!;
}

/** The text of a raw tools/call answer's content. */
const rawText = (answer: Record<string, any>): string => (answer.result?.content ?? []).map((c: { text?: string }) => c.text ?? '').join('\n');

/** The text of a tool result's first content block. */
function text(result: Awaited<ReturnType<McpTestClient['client']['callTool']>>): string {
  const content = result.content as Array<{ type: string; text?: string }>;
  return content.map((c) => c.text ?? '').join('\n');
}

async function weightsOf(c: McpTestClient, route = 'canary-twin'): Promise<{ stable: number; canary: number }> {
  const res = await c.client.callTool({ name: 'get_traffic_split', arguments: { route } });
  expect(res.isError).toBeFalsy();
  return (res.structuredContent as { splits: Array<{ weights: { stable: number; canary: number } }> }).splits[0]!.weights;
}

type Audit = { tool: string; principal: string; argsHash: string; result: string };
/** The `ended` audit lines (one per call, with its result; an `arrived` line came first). */
const audits = (gw: GatewayProcess, from = 0): Audit[] =>
  gw.logs.slice(from).filter((l: LogLine) => l.msg === 'mcp tool call ended' && typeof l.audit === 'object' && l.audit !== null).map((l) => l.audit as Audit);

/** Waits for the audit line of the `n`-th call (1-based) of `tool` by `principal`. */
async function auditOf(gw: GatewayProcess, tool: string, principal: string, n = 1, timeoutMs = 5000): Promise<Audit> {
  let seen = 0;
  const line = await gw.waitForLog((l) => {
    const a = l.audit as Audit | undefined;
    if (l.msg !== 'mcp tool call ended' || a?.tool !== tool || a.principal !== principal) return false;
    seen++;
    return seen >= n;
  }, timeoutMs);
  return line.audit as Audit;
}

/** The value of one sample of gateway_mcp_requests_total (0 when absent). */
async function mcpRequestCount(gw: GatewayProcess, labels: { method: string; tool: string; status: string }): Promise<number> {
  const res = await call(`${gw.url}/metrics`, { headers: admin });
  expect(res.status).toBe(200);
  const family = parsePrometheusText(res.text).get('gateway_mcp_requests_total');
  const sample = family?.samples.find(
    (s) => s.name === 'gateway_mcp_requests_total' && s.labels.method === labels.method && s.labels.tool === labels.tool && s.labels.status === labels.status,
  );
  return sample?.value ?? 0;
}

afterAll(cleanup);

// ---------------------------------------------------------------------------------------------
// Gateway A: JWT issuer configured (RFC 9728 metadata), a read-only API key, a split route, no MFA.
// ---------------------------------------------------------------------------------------------
describe('/mcp with an issuer, a read-only key and default Origin policy', () => {
  let gw: GatewayProcess;

  beforeAll(async () => {
    const ups = await standIns(['twin', 'knowledge']);
    gw = await startGateway({
      env: { ...ups.env, JWT_SECRET_KEY: JWT_SECRET },
      yaml:
        'auth:\n' +
        `  jwt: { issuer: ${ISSUER} }\n` +
        `  apiKeys:\n    - { name: reader, sha256: ${sha256Hex(READER_KEY)}, scopes: [read] }\n` +
        SPLIT_ROUTE,
    });
  });

  describe('authentication', () => {
    it('401 GW_AUTH_MISSING_CREDENTIALS without credentials, and the SDK client cannot connect', async () => {
      const res = await mcpRaw(gw.url, { body: initializeMessage(), anonymous: true });
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toMatch(/^Bearer realm="unified-gateway"/);
      // A JSON-RPC error body (no id: the request was refused before its body was read).
      expect(res.json()).toEqual({ jsonrpc: '2.0', id: null, error: { code: -32000, message: expect.any(String), data: { code: 'GW_AUTH_MISSING_CREDENTIALS', requestId: res.headers['x-request-id'] } } });
      expect(res.headers['mcp-session-id']).toBeUndefined();

      const c = mcpClient(gw.url);
      const err = await c.client.connect(c.transport).then(
        () => null,
        (e: unknown) => e as { code?: number; message: string },
      );
      expect(err).not.toBeNull();
      expect(err!.code).toBe(401);
      expect(err!.message).toContain('GW_AUTH_MISSING_CREDENTIALS');
    });

    it.each([
      ['a malformed bearer token', async () => bearer('not-a-jwt')],
      ['a token signed with another secret', async () => bearer(await new SignJWT({ scope: 'admin' }).setProtectedHeader({ alg: 'HS256' }).setSubject('mallory').setIssuer(ISSUER).setExpirationTime('5m').sign(new TextEncoder().encode('another-secret-another-secret-0000')))],
      ['a token from another issuer', async () => bearer(await jwt('mallory', { scope: 'admin' }, 'https://evil.example'))],
      ['an expired token', async () => bearer(await new SignJWT({ scope: 'admin' }).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setIssuer(ISSUER).setExpirationTime(Math.floor(Date.now() / 1000) - 600).sign(hsKey))],
      ['an unknown API key', async () => ({ 'x-api-key': 'no-such-key-0123456789abcdef' })],
    ])('401 GW_AUTH_INVALID_CREDENTIALS for %s, and the SDK client cannot connect', async (_name, headers) => {
      const h = await headers();
      const res = await mcpRaw(gw.url, { body: initializeMessage(), headers: h });
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toContain('error="invalid_token"');
      expect(res.json().error).toEqual({ code: -32000, message: expect.any(String), data: { code: 'GW_AUTH_INVALID_CREDENTIALS', requestId: res.headers['x-request-id'] } });
      expect(res.headers['mcp-session-id']).toBeUndefined();

      const c = mcpClient(gw.url, h);
      const err = await c.client.connect(c.transport).then(
        () => null,
        (e: unknown) => e as { code?: number; message: string },
      );
      expect(err?.code).toBe(401);
      expect(err?.message).toContain('GW_AUTH_INVALID_CREDENTIALS');
    });
  });

  describe('Origin (DNS-rebinding protection), default policy: CORS origins plus localhost', () => {
    it.each(['http://evil.example', 'null', 'http://localhost.evil.example', 'file://', 'https://127.0.0.1.evil.example:443'])(
      '403 GW_MCP_ORIGIN_FORBIDDEN for Origin %s, even with valid credentials, and no session is opened',
      async (origin) => {
        const res = await mcpRaw(gw.url, { body: initializeMessage(), headers: { ...admin, origin } });
        expect(res.status).toBe(403);
        expect(res.json()).toEqual({ jsonrpc: '2.0', id: null, error: { code: -32000, message: expect.any(String), data: { code: 'GW_MCP_ORIGIN_FORBIDDEN', requestId: res.headers['x-request-id'] } } });
        expect(res.headers['mcp-session-id']).toBeUndefined();
      },
    );

    it.each([['http://localhost:1234'], ['http://127.0.0.1:9999'], ['http://[::1]:8080'], [undefined]])('accepts Origin %s', async (origin) => {
      const res = await mcpRaw(gw.url, { body: initializeMessage(), headers: { ...admin, ...(origin !== undefined ? { origin } : {}) } });
      expect(res.status).toBe(200);
      const sessionId = res.headers['mcp-session-id'] as string;
      expect(sessionId).toMatch(/^[A-Za-z0-9_-]{43}$/);
      const [message] = mcpMessages(res);
      expect(message).toMatchObject({ jsonrpc: '2.0', id: 1, result: { serverInfo: { name: 'unified-gateway' } } });
      const end = await mcpRaw(gw.url, { method: 'DELETE', sessionId, headers: admin });
      expect(end.status).toBe(200);
    });

    it('checks Origin on every request of a session, not only on initialize', async () => {
      const c = await connectMcp(gw.url, admin);
      const sessionId = c.transport.sessionId!;
      const res = await mcpRaw(gw.url, {
        sessionId,
        headers: { ...admin, origin: 'http://evil.example' },
        body: { jsonrpc: '2.0', id: 7, method: 'tools/list' },
      });
      expect(res.status).toBe(403);
      expect(res.json().error.data.code).toBe('GW_MCP_ORIGIN_FORBIDDEN');
      // The session itself is untouched.
      expect(await toolNames(c)).toContain('list_routes');
      await c.transport.terminateSession();
      await c.client.close();
    });
  });

  describe('tools by scope', () => {
    it('a read-only API key is offered the read tools but not the admin ones; an admin is offered both', async () => {
      const r = await connectMcp(gw.url, reader);
      const readerTools = await toolNames(r);
      expect(readerTools).toEqual(expect.arrayContaining(READ_TOOLS));
      for (const t of ADMIN_TOOLS) expect(readerTools).not.toContain(t);
      await r.client.close();

      const a = await connectMcp(gw.url, admin);
      const adminTools = await toolNames(a);
      expect(adminTools).toEqual(expect.arrayContaining([...READ_TOOLS, ...ADMIN_TOOLS]));
      await a.client.close();
    });

    it('a read-only JWT (scope "read") is offered the read tools only', async () => {
      const r = await connectMcp(gw.url, bearer(await jwt('jwt-reader', { scope: 'read' }, ISSUER)));
      const tools = await toolNames(r);
      expect(tools).toEqual(expect.arrayContaining(READ_TOOLS));
      for (const t of ADMIN_TOOLS) expect(tools).not.toContain(t);
      await r.client.close();
    });

    it('a read principal calling admin tools by name gets a tool error, and nothing changes', async () => {
      const r = await connectMcp(gw.url, reader);
      expect(await weightsOf(r)).toEqual({ stable: 100, canary: 0 });
      const reason = `reader-attempt-${randomBytes(6).toString('hex')}`;

      const shift = await r.client.callTool({ name: 'shift_traffic', arguments: { route: 'canary-twin', stable: 0, canary: 100, reason } });
      expect(shift.isError).toBe(true);
      expect(text(shift)).toMatch(/Tool shift_traffic not found|"admin" scope/);
      expect(shift.structuredContent).toBeUndefined();

      const unblock = await r.client.callTool({ name: 'unblock_client', arguments: { client: '198.51.100.23' } });
      expect(unblock.isError).toBe(true);
      expect(text(unblock)).toMatch(/Tool unblock_client not found|"admin" scope/);
      const reset = await r.client.callTool({ name: 'reset_circuit_breaker', arguments: { service: 'twin' } });
      expect(reset.isError).toBe(true);
      expect(text(reset)).toMatch(/Tool reset_circuit_breaker not found|"admin" scope/);

      // The weights did not move: not for this session, and not for an admin's.
      expect(await weightsOf(r)).toEqual({ stable: 100, canary: 0 });
      const a = await connectMcp(gw.url, admin);
      const split = (await a.client.callTool({ name: 'get_traffic_split', arguments: { route: 'canary-twin' } })).structuredContent as {
        splits: Array<{ weights: unknown; version: number; reason: string }>;
      };
      expect(split.splits[0]!.weights).toEqual({ stable: 100, canary: 0 });
      expect(split.splits[0]!.reason).not.toContain(reason);
      await a.client.close();
      // Whatever is logged of the attempt, never the arguments.
      expect(gw.stdoutLines.join('\n')).not.toContain(reason);
      await r.client.close();
    });

    it('an admin (no MFA required here) can shift traffic, and get_traffic_split shows it', async () => {
      const a = await connectMcp(gw.url, admin);
      const dry = await a.client.callTool({ name: 'shift_traffic', arguments: { route: 'canary-twin', stable: 50, canary: 50, reason: 'dry run first', dry_run: true } });
      expect(dry.isError).toBeFalsy();
      expect(dry.structuredContent).toMatchObject({ applied: false, before: { stable: 100, canary: 0 }, after: { stable: 50, canary: 50 }, by: ADMIN_SUBJECT });
      expect(await weightsOf(a)).toEqual({ stable: 100, canary: 0 });

      const real = await a.client.callTool({ name: 'shift_traffic', arguments: { route: 'canary-twin', stable: 90, canary: 10, reason: 'start the canary' } });
      expect(real.structuredContent).toMatchObject({ applied: true, after: { stable: 90, canary: 10 } });
      expect(await weightsOf(a)).toEqual({ stable: 90, canary: 10 });
      const back = await a.client.callTool({ name: 'shift_traffic', arguments: { route: 'canary-twin', stable: 100, canary: 0, reason: 'roll back' } });
      expect(back.structuredContent).toMatchObject({ applied: true, after: { stable: 100, canary: 0 } });
      expect((await auditOf(gw, 'shift_traffic', ADMIN_SUBJECT, 3)).result).toBe('ok');
      await a.client.close();
    });
  });

  // docs/mcp.md: "Admin tools are not listed for sessions without admin scope; called
  // anyway they are refused with a tool error naming the missing scope or MFA. Every tool call
  // is audited". The two tests below hold the gateway to that.
  describe('docs/mcp.md contract: every tool call is audited, refusals name the scope', () => {
    it('a read principal calling a hidden admin tool gets a tool error naming the "admin" scope, audited as refused', async () => {
      const r = await connectMcp(gw.url, reader);
      const res = await r.client.callTool({ name: 'shift_traffic', arguments: { route: 'canary-twin', stable: 0, canary: 100, reason: 'escalation attempt' } });
      expect(res.isError).toBe(true);
      expect(await weightsOf(r)).toEqual({ stable: 100, canary: 0 });
      await r.client.close();
      expect(text(res)).toMatch(/"admin" scope/);
      const audit = await auditOf(gw, 'shift_traffic', 'key:reader', 1, 1500);
      expect(audit).toMatchObject({ result: 'refused', argsHash: expect.stringMatching(/^[0-9a-f]{16}$/) });
    });

    it('a tool call whose arguments fail validation is audited too', async () => {
      const a = await connectMcp(gw.url, admin);
      const res = await a.client.callTool({ name: 'shift_traffic', arguments: { route: 'canary-twin', stable: 150, canary: -50, reason: 'out of range' } });
      expect(res.isError).toBe(true);
      expect(text(res)).toMatch(/Input validation error/);
      expect(await weightsOf(a)).toEqual({ stable: 100, canary: 0 });
      await a.client.close();
      const audit = await gw
        .waitForLog((l) => {
          const x = l.audit as Audit | undefined;
          return l.msg === 'mcp tool call ended' && x?.tool === 'shift_traffic' && x.principal === ADMIN_SUBJECT && x.result !== 'ok';
        }, 1500)
        .then((l) => l.audit as Audit);
      expect(['failed', 'refused']).toContain(audit.result);
    });
  });

  describe('RFC 9728 protected-resource metadata', () => {
    it.each(['/.well-known/oauth-protected-resource', '/.well-known/oauth-protected-resource/mcp'])('%s answers 200 JSON without credentials', async (path) => {
      const res = await call(`${gw.url}${path}`, { anonymous: true });
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      const body = res.json();
      expect(body.resource).toBe(`${gw.url}/mcp`);
      expect(body.resource).toMatch(/\/mcp$/);
      expect(body.authorization_servers).toEqual([ISSUER]);
      expect(body.scopes_supported).toEqual(expect.arrayContaining(['read', 'write', 'admin']));
      expect(body.bearer_methods_supported).toEqual(['header']);
    });

    it('a 401 from /mcp points at the metadata in WWW-Authenticate (missing and invalid credentials)', async () => {
      const expected = `resource_metadata="${gw.url}/.well-known/oauth-protected-resource/mcp"`;
      const missing = await mcpRaw(gw.url, { body: initializeMessage(), anonymous: true });
      expect(missing.status).toBe(401);
      expect(missing.headers['www-authenticate']).toMatch(/^Bearer /);
      expect(missing.headers['www-authenticate']).toContain(expected);
      const invalid = await mcpRaw(gw.url, { body: initializeMessage(), headers: bearer('not-a-jwt') });
      expect(invalid.status).toBe(401);
      expect(invalid.headers['www-authenticate']).toContain('error="invalid_token"');
      expect(invalid.headers['www-authenticate']).toContain(expected);
      // A resource_metadata parameter appears once.
      expect(invalid.headers['www-authenticate']!.split('resource_metadata=').length).toBe(2);
    });

    it('a 401 from a proxied route does not name the MCP metadata', async () => {
      const res = await call(`${gw.url}/v1/twin/notes`, { anonymous: true });
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).not.toContain('resource_metadata');
    });
  });

  describe('session ownership', () => {
    it("another principal presenting a session's id gets 404 GW_MCP_SESSION_NOT_FOUND (POST, GET and DELETE)", async () => {
      const a = await connectMcp(gw.url, admin);
      const sessionId = a.transport.sessionId!;
      expect(sessionId).toMatch(/^[A-Za-z0-9_-]{43}$/);
      const readerJwt = bearer(await jwt('jwt-reader', { scope: 'read' }, ISSUER));
      const adminJwt = bearer(await jwt('someone-else', { scope: 'admin' }, ISSUER));

      for (const headers of [reader, readerJwt, adminJwt]) {
        const post = await mcpRaw(gw.url, { sessionId, headers, body: { jsonrpc: '2.0', id: 2, method: 'tools/list' } });
        expect(post.status).toBe(404);
        expect(post.json()).toEqual({ jsonrpc: '2.0', id: 2, error: { code: -32001, message: expect.any(String), data: { code: 'GW_MCP_SESSION_NOT_FOUND', requestId: post.headers['x-request-id'] } } });
        const call2 = await mcpRaw(gw.url, {
          sessionId,
          headers,
          body: { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'list_routes', arguments: {} } },
        });
        expect(call2.status).toBe(404);
        const get = await mcpRaw(gw.url, { method: 'GET', sessionId, headers });
        expect(get.status).toBe(404);
        expect(get.json().error.data.code).toBe('GW_MCP_SESSION_NOT_FOUND');
        const del = await mcpRaw(gw.url, { method: 'DELETE', sessionId, headers });
        expect(del.status).toBe(404);
        expect(del.json().error.data.code).toBe('GW_MCP_SESSION_NOT_FOUND');
      }

      // The owner's session survived the foreign DELETEs.
      expect(await toolNames(a)).toContain('shift_traffic');
      const own = await mcpRaw(gw.url, { sessionId, headers: admin, body: { jsonrpc: '2.0', id: 4, method: 'tools/list' } });
      expect(own.status).toBe(200);
      expect(mcpMessages(own)[0]).toMatchObject({ id: 4, result: { tools: expect.any(Array) } });
      await a.client.close();
    });

    it('DELETE ends a session; its id then gives 404 GW_MCP_SESSION_NOT_FOUND', async () => {
      const init = await mcpRaw(gw.url, { body: initializeMessage(), headers: reader });
      expect(init.status).toBe(200);
      const sessionId = init.headers['mcp-session-id'] as string;
      const notified = await mcpRaw(gw.url, { sessionId, headers: reader, body: { jsonrpc: '2.0', method: 'notifications/initialized' } });
      expect(notified.status).toBe(202);
      const list = await mcpRaw(gw.url, { sessionId, headers: reader, body: { jsonrpc: '2.0', id: 2, method: 'tools/list' } });
      expect(list.status).toBe(200);

      const del = await mcpRaw(gw.url, { method: 'DELETE', sessionId, headers: reader });
      expect(del.status).toBe(200);
      for (const method of ['POST', 'DELETE'] as const) {
        const again = await mcpRaw(gw.url, { method, sessionId, headers: reader, ...(method === 'POST' ? { body: { jsonrpc: '2.0', id: 3, method: 'tools/list' } } : {}) });
        expect(again.status).toBe(404);
        expect(again.json().error.data.code).toBe('GW_MCP_SESSION_NOT_FOUND');
      }

      // The same through the SDK client.
      const c = await connectMcp(gw.url, admin);
      const id = c.transport.sessionId!;
      await c.transport.terminateSession();
      await c.client.close();
      const after = await mcpRaw(gw.url, { sessionId: id, headers: admin, body: { jsonrpc: '2.0', id: 5, method: 'tools/list' } });
      expect(after.status).toBe(404);
      expect(after.json().error.data.code).toBe('GW_MCP_SESSION_NOT_FOUND');
    });

    it('a made-up session id gives 404, not a new session', async () => {
      const res = await mcpRaw(gw.url, { sessionId: 'A'.repeat(43), headers: admin, body: initializeMessage() });
      expect(res.status).toBe(404);
      expect(res.json().error.data.code).toBe('GW_MCP_SESSION_NOT_FOUND');
      expect(res.headers['mcp-session-id']).toBeUndefined();
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Gateway B: MFA required for admin tools, an explicit mcp.allowedOrigins, no JWT issuer.
// ---------------------------------------------------------------------------------------------
describe('/mcp with requireMfaForAdmin and mcp.allowedOrigins', () => {
  let gw: GatewayProcess;

  beforeAll(async () => {
    const ups = await standIns(['twin', 'knowledge']);
    gw = await startGateway({
      env: { ...ups.env, JWT_SECRET_KEY: JWT_SECRET },
      yaml:
        'auth:\n  requireMfaForAdmin: true\n' +
        `  apiKeys:\n    - { name: reader, sha256: ${sha256Hex(READER_KEY)}, scopes: [read] }\n` +
        'mcp:\n  allowedOrigins: [https://app.example.org]\n' +
        SPLIT_ROUTE,
    });
  });

  describe('Origin with mcp.allowedOrigins', () => {
    it.each([['https://app.example.org'], ['HTTPS://APP.EXAMPLE.ORG'], [undefined]])('accepts Origin %s', async (origin) => {
      const res = await mcpRaw(gw.url, { body: initializeMessage(), headers: { ...admin, ...(origin !== undefined ? { origin } : {}) } });
      expect(res.status).toBe(200);
      const sessionId = res.headers['mcp-session-id'] as string;
      expect(sessionId).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect((await mcpRaw(gw.url, { method: 'DELETE', sessionId, headers: admin })).status).toBe(200);
    });

    it.each(['http://localhost:1234', 'http://127.0.0.1:8000', 'http://app.example.org', 'https://app.example.org:8443', 'https://evil.example'])(
      '403 GW_MCP_ORIGIN_FORBIDDEN for Origin %s (localhost is no longer implied)',
      async (origin) => {
        const res = await mcpRaw(gw.url, { body: initializeMessage(), headers: { ...admin, origin } });
        expect(res.status).toBe(403);
        expect(res.json().error.data.code).toBe('GW_MCP_ORIGIN_FORBIDDEN');
        expect(res.headers['mcp-session-id']).toBeUndefined();
      },
    );
  });

  describe('MFA for the admin tools', () => {
    it('an admin key without MFA is offered the admin tools, but each call is refused naming MFA, audited as refused, and nothing changes', async () => {
      const a = await connectMcp(gw.url, admin);
      const tools = await toolNames(a);
      expect(tools).toEqual(expect.arrayContaining([...READ_TOOLS, ...ADMIN_TOOLS]));
      expect(await weightsOf(a)).toEqual({ stable: 100, canary: 0 });

      const shift = await a.client.callTool({ name: 'shift_traffic', arguments: { route: 'canary-twin', stable: 0, canary: 100, reason: 'no mfa here' } });
      expect(shift.isError).toBe(true);
      expect(text(shift)).toMatch(/second factor|mfa/i);
      expect(shift.structuredContent).toBeUndefined();
      expect((await auditOf(gw, 'shift_traffic', ADMIN_SUBJECT)).result).toBe('refused');

      const unblock = await a.client.callTool({ name: 'unblock_client', arguments: { client: '198.51.100.24' } });
      expect(unblock.isError).toBe(true);
      expect(text(unblock)).toMatch(/second factor|mfa/i);
      expect((await auditOf(gw, 'unblock_client', ADMIN_SUBJECT)).result).toBe('refused');

      const reset = await a.client.callTool({ name: 'reset_circuit_breaker', arguments: { service: 'twin' } });
      expect(reset.isError).toBe(true);
      expect(text(reset)).toMatch(/second factor|mfa/i);
      expect((await auditOf(gw, 'reset_circuit_breaker', ADMIN_SUBJECT)).result).toBe('refused');

      expect(await weightsOf(a)).toEqual({ stable: 100, canary: 0 });
      // Read tools still work for this principal.
      const routes = await a.client.callTool({ name: 'list_routes', arguments: {} });
      expect(routes.isError).toBeFalsy();
      await a.client.close();
    });

    it('an admin JWT with amr mfa may shift traffic', async () => {
      const sub = 'mfa-admin';
      const c = await connectMcp(gw.url, bearer(await jwt(sub, { scope: 'admin', amr: ['pwd', 'mfa'] })));
      const dry = await c.client.callTool({ name: 'shift_traffic', arguments: { route: 'canary-twin', stable: 80, canary: 20, reason: 'check first', dry_run: true } });
      expect(dry.isError).toBeFalsy();
      expect(dry.structuredContent).toMatchObject({ applied: false, after: { stable: 80, canary: 20 }, by: sub });
      expect((await auditOf(gw, 'shift_traffic', sub)).result).toBe('ok');
      expect(await weightsOf(c)).toEqual({ stable: 100, canary: 0 });
      await c.client.close();
    });

    it('an admin JWT without amr is refused like the key', async () => {
      const sub = 'pwd-admin';
      const c = await connectMcp(gw.url, bearer(await jwt(sub, { scope: 'admin', amr: ['pwd'] })));
      const res = await c.client.callTool({ name: 'shift_traffic', arguments: { route: 'canary-twin', stable: 0, canary: 100, reason: 'no second factor' } });
      expect(res.isError).toBe(true);
      expect((await auditOf(gw, 'shift_traffic', sub)).result).toBe('refused');
      expect(await weightsOf(c)).toEqual({ stable: 100, canary: 0 });
      await c.client.close();
    });
  });

  describe('each request is authorised by its own credential, not by the one that opened the session', () => {
    it('a session opened with an MFA admin token runs no admin tool for a same-subject token without MFA, or with read scope', async () => {
      const sub = 'rotating-admin';
      const withMfa = bearer(await jwt(sub, { scope: 'admin', amr: ['pwd', 'mfa'] }));
      const withoutMfa = bearer(await jwt(sub, { scope: 'admin', amr: ['pwd'] }));
      const readOnly = bearer(await jwt(sub, { scope: 'read', amr: ['pwd', 'mfa'] }));
      const c = await connectMcp(gw.url, withMfa);
      const sessionId = c.transport.sessionId!;
      expect(await toolNames(c)).toEqual(expect.arrayContaining(ADMIN_TOOLS));
      expect(await weightsOf(c)).toEqual({ stable: 100, canary: 0 });
      const calls: Array<[string, Record<string, unknown>]> = [
        ['shift_traffic', { route: 'canary-twin', stable: 0, canary: 100, reason: 'session opened with mfa' }],
        ['reset_circuit_breaker', { service: 'twin' }],
        ['unblock_client', { client: '198.51.100.41' }],
        ['list_blocked_clients', {}],
      ];
      let id = 100;
      for (const [headers, code] of [
        [withoutMfa, 'GW_AUTH_MFA_REQUIRED'],
        [readOnly, 'GW_AUTH_INSUFFICIENT_SCOPE'],
      ] as const) {
        for (const [name, args] of calls) {
          const answer = await rpcOn(gw, sessionId, headers, 'tools/call', { name, arguments: args }, id++);
          expect(answer.result?.isError, `${name} with ${code}`).toBe(true);
          expect(rawText(answer)).toContain(code);
          expect(answer.result?.structuredContent).toBeUndefined();
        }
      }
      // What a request is offered follows its credential too.
      const listedRead = (await rpcOn(gw, sessionId, readOnly, 'tools/list', {}, id++)).result.tools.map((t: { name: string }) => t.name);
      expect(listedRead).toEqual(expect.arrayContaining(READ_TOOLS));
      for (const t of ADMIN_TOOLS) expect(listedRead).not.toContain(t);
      const listedNoMfa = (await rpcOn(gw, sessionId, withoutMfa, 'tools/list', {}, id++)).result.tools.map((t: { name: string }) => t.name);
      expect(listedNoMfa).toEqual(expect.arrayContaining(ADMIN_TOOLS));

      // Nothing changed, the refusals are audited under the subject, and the MFA credential still works on the session.
      expect(await weightsOf(c)).toEqual({ stable: 100, canary: 0 });
      expect((await auditOf(gw, 'shift_traffic', sub, 2)).result).toBe('refused');
      const dry = await c.client.callTool({ name: 'shift_traffic', arguments: { route: 'canary-twin', stable: 70, canary: 30, reason: 'mfa again', dry_run: true } });
      expect(dry.isError).toBeFalsy();
      expect(dry.structuredContent).toMatchObject({ applied: false, by: sub });
      await c.transport.terminateSession();
      await c.client.close();
    });

    it('the session does not outlive its token: an expired token of the same subject gets 401, and a GET stream ends when its token expires', async () => {
      const sub = 'expiring-admin';
      const c = await connectMcp(gw.url, bearer(await jwt(sub, { scope: 'admin', amr: ['mfa'] })));
      const sessionId = c.transport.sessionId!;
      const expired = await new SignJWT({ scope: 'admin', amr: ['mfa'] })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject(sub)
        .setIssuedAt(Math.floor(Date.now() / 1000) - 700)
        .setExpirationTime(Math.floor(Date.now() / 1000) - 600)
        .sign(hsKey);
      const res = await mcpRaw(gw.url, {
        sessionId,
        headers: bearer(expired),
        body: { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'shift_traffic', arguments: { route: 'canary-twin', stable: 0, canary: 100, reason: 'expired' } } },
      });
      expect(res.status).toBe(401);
      expect(res.json().error.data.code).toBe('GW_AUTH_INVALID_CREDENTIALS');
      expect(await weightsOf(c)).toEqual({ stable: 100, canary: 0 });
      await c.transport.terminateSession();
      await c.client.close();

      // A standalone SSE stream opened with a token that expires in ~2 s is ended by then.
      const init = await mcpRaw(gw.url, { body: initializeMessage(), headers: bearer(await jwt(sub, { scope: 'read' })) });
      const streamSession = init.headers['mcp-session-id'] as string;
      const shortLived = await new SignJWT({ scope: 'read' })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject(sub)
        .setIssuedAt()
        .setExpirationTime(Math.floor(Date.now() / 1000) + 2)
        .sign(hsKey);
      const started = Date.now();
      const stream = await mcpRaw(gw.url, { method: 'GET', sessionId: streamSession, headers: bearer(shortLived) });
      const took = Date.now() - started;
      expect(stream.status).toBe(200);
      expect(stream.headers['content-type']).toMatch(/^text\/event-stream/);
      expect(took).toBeLessThan(4000);
    });
  });

  describe('list_blocked_clients: one rule on REST and MCP (admin scope, and MFA here)', () => {
    it('readers and admins without MFA see no blocked client on either face; an MFA admin sees them on both', async () => {
      const mfaAdmin = bearer(await jwt('blocks-admin', { scope: 'admin', amr: ['mfa'] }));
      const blockedIp = `198.51.100.${100 + Math.floor(Math.random() * 100)}`;
      const block = await call(`${gw.url}/admin/blocked-clients`, {
        method: 'POST',
        headers: { ...mfaAdmin, 'content-type': 'application/json' },
        body: JSON.stringify({ client: blockedIp, seconds: 120, reason: 'one rule test' }),
      });
      expect(block.status).toBe(201);

      // REST.
      const restReader = await call(`${gw.url}/admin/blocked-clients`, { headers: reader });
      expect([restReader.status, restReader.json().error.code]).toEqual([403, 'GW_AUTH_INSUFFICIENT_SCOPE']);
      const restNoMfa = await call(`${gw.url}/admin/blocked-clients`, { headers: admin });
      expect([restNoMfa.status, restNoMfa.json().error.code]).toEqual([403, 'GW_AUTH_MFA_REQUIRED']);
      const restMfa = await call(`${gw.url}/admin/blocked-clients`, { headers: mfaAdmin });
      expect(restMfa.status).toBe(200);
      expect(restMfa.json().clients.map((c: { client: string }) => c.client)).toContain(blockedIp);

      // MCP, the same answers.
      const r = await connectMcp(gw.url, reader);
      expect(await toolNames(r)).not.toContain('list_blocked_clients');
      const mcpReader = await r.client.callTool({ name: 'list_blocked_clients', arguments: {} });
      expect(mcpReader.isError).toBe(true);
      expect(text(mcpReader)).toContain('GW_AUTH_INSUFFICIENT_SCOPE');
      expect(JSON.stringify(mcpReader)).not.toContain(blockedIp);
      await r.client.close();
      const a = await connectMcp(gw.url, admin);
      const mcpNoMfa = await a.client.callTool({ name: 'list_blocked_clients', arguments: {} });
      expect(mcpNoMfa.isError).toBe(true);
      expect(text(mcpNoMfa)).toContain('GW_AUTH_MFA_REQUIRED');
      expect(JSON.stringify(mcpNoMfa)).not.toContain(blockedIp);
      await a.client.close();
      const m = await connectMcp(gw.url, mfaAdmin);
      const mcpMfa = await m.client.callTool({ name: 'list_blocked_clients', arguments: {} });
      expect(mcpMfa.isError).toBeFalsy();
      expect((mcpMfa.structuredContent as { clients: Array<{ client: string }> }).clients.map((c) => c.client)).toContain(blockedIp);
      await m.client.close();

      const unblock = await call(`${gw.url}/admin/blocked-clients/${blockedIp}`, { method: 'DELETE', headers: mfaAdmin });
      expect(unblock.status).toBe(200);
    });
  });

  describe('audit lines and gateway_mcp_requests_total', () => {
    it('audits every call with principal, tool, a 16-hex hash of the arguments and the result, never the arguments', async () => {
      const secretReason = `secret-reason-${randomBytes(8).toString('hex')}`;
      const h = () => randomBytes(2).toString('hex');
      // A valid client (an IPv6 address): invalid arguments never reach the tool (see below).
      const secretClient = `2001:db8:${h()}:${h()}::${h()}`;
      const before = {
        routesOk: await mcpRequestCount(gw, { method: 'tools/call', tool: 'list_routes', status: 'ok' }),
        init: await mcpRequestCount(gw, { method: 'initialize', tool: '', status: 'ok' }),
        shiftRefused: await mcpRequestCount(gw, { method: 'tools/call', tool: 'shift_traffic', status: 'tool_error' }),
      };
      // Lines of the tests before this one may still be in the gateway's log buffer: count from a mark.
      const mark = await gw.logMark();
      const auditsBefore = audits(gw, mark).length;
      const arrivedBefore = gw.logs.slice(mark).filter((l) => l.msg === 'mcp tool call').length;

      const a = await connectMcp(gw.url, admin);
      const routes = await a.client.callTool({ name: 'list_routes', arguments: {} });
      expect(routes.isError).toBeFalsy();
      const args = { route: 'canary-twin', stable: 10, canary: 90, reason: secretReason };
      const refused1 = await a.client.callTool({ name: 'shift_traffic', arguments: args });
      const refused2 = await a.client.callTool({ name: 'shift_traffic', arguments: args });
      const refused3 = await a.client.callTool({ name: 'shift_traffic', arguments: { ...args, reason: `${secretReason}-other` } });
      expect([refused1.isError, refused2.isError, refused3.isError]).toEqual([true, true, true]);
      await a.client.callTool({ name: 'unblock_client', arguments: { client: secretClient } });
      await a.client.close();

      await gw.waitForLog((l) => (l.audit as Audit | undefined)?.tool === 'unblock_client' && audits(gw, mark).length >= auditsBefore + 5, 5000);
      const lines = audits(gw, mark).slice(auditsBefore);
      expect(lines.map((l) => [l.tool, l.result])).toEqual([
        ['list_routes', 'ok'],
        ['shift_traffic', 'refused'],
        ['shift_traffic', 'refused'],
        ['shift_traffic', 'refused'],
        ['unblock_client', 'refused'],
      ]);
      // Each call has an `arrived` line (written before the tool runs) and an `ended` one, tied by `call`.
      const arrived = gw.logs.slice(mark).filter((l) => l.msg === 'mcp tool call').map((l) => l.audit as Audit & { call: string; phase: string });
      expect(arrived.length - arrivedBefore).toBeGreaterThanOrEqual(5);
      for (const l of lines) {
        expect(Object.keys(l).sort()).toEqual(['argsHash', 'call', 'durationMs', 'era', 'phase', 'principal', 'result', 'tool']);
        expect(arrived.filter((x) => x.call === (l as Audit & { call: string }).call).map((x) => [x.phase, x.tool, x.argsHash])).toEqual([['arrived', l.tool, l.argsHash]]);
        expect(l.principal).toBe(ADMIN_SUBJECT);
        expect(l.argsHash).toMatch(/^[0-9a-f]{16}$/);
      }
      // Same arguments, same hash; other arguments, another hash.
      expect(lines[1]!.argsHash).toBe(lines[2]!.argsHash);
      expect(lines[3]!.argsHash).not.toBe(lines[1]!.argsHash);
      // The raw audit lines are at info level with the fixed messages.
      const raw = gw.logs.filter((l) => l.msg === 'mcp tool call' || l.msg === 'mcp tool call ended').slice(-10);
      expect(raw).toHaveLength(10);
      for (const l of raw) expect(l.level).toBe(30);

      // Never the arguments themselves, anywhere in the gateway's output.
      const output = gw.stdoutLines.join('\n') + gw.stderr();
      expect(output).not.toContain(secretReason);
      expect(output).not.toContain(secretClient);

      const after = {
        routesOk: await mcpRequestCount(gw, { method: 'tools/call', tool: 'list_routes', status: 'ok' }),
        init: await mcpRequestCount(gw, { method: 'initialize', tool: '', status: 'ok' }),
        shiftRefused: await mcpRequestCount(gw, { method: 'tools/call', tool: 'shift_traffic', status: 'tool_error' }),
      };
      expect(after.routesOk).toBeGreaterThanOrEqual(1);
      expect(after.routesOk - before.routesOk).toBe(1);
      expect(after.init).toBeGreaterThanOrEqual(1);
      expect(after.init - before.init).toBe(1);
      expect(after.shiftRefused - before.shiftRefused).toBe(3);
    });
  });

  it('without an issuer there is no RFC 9728 metadata, and the 401 does not point at any', async () => {
    for (const path of ['/.well-known/oauth-protected-resource', '/.well-known/oauth-protected-resource/mcp']) {
      const res = await call(`${gw.url}${path}`, { anonymous: true });
      expect(res.status).toBe(404);
      expect(res.json().error.code).toBe('GW_ROUTE_NOT_FOUND');
    }
    const unauth = await mcpRaw(gw.url, { body: initializeMessage(), anonymous: true });
    expect(unauth.status).toBe(401);
    expect(unauth.headers['www-authenticate']).toBe('Bearer realm="unified-gateway"');
  });
});

// ---------------------------------------------------------------------------------------------
// MCP_REQUIRE_AUTH=false: anonymous sessions with read tools only; refused in production.
// ---------------------------------------------------------------------------------------------
describe('MCP_REQUIRE_AUTH=false', () => {
  it('accepts an SDK client without credentials, offers read tools only, and warns at start-up', async () => {
    const ups = await standIns(['twin', 'knowledge']);
    const gw = await startGateway({ env: { ...ups.env, MCP_REQUIRE_AUTH: 'false' }, yaml: SPLIT_ROUTE });
    const warning = await gw.waitForLog((l) => l.level === 40 && String(l.msg).includes('MCP_REQUIRE_AUTH=false'), 2000);
    const listening = gw.logs.findIndex((l) => l.msg === 'gateway listening');
    expect(gw.logs.indexOf(warning)).toBeLessThan(listening);

    const c = await connectMcp(gw.url);
    const tools = await toolNames(c);
    expect(tools).toEqual(expect.arrayContaining(READ_TOOLS));
    for (const t of ADMIN_TOOLS) expect(tools).not.toContain(t);
    const routes = await c.client.callTool({ name: 'list_routes', arguments: {} });
    expect(routes.isError).toBeFalsy();
    expect((await auditOf(gw, 'list_routes', 'anonymous')).result).toBe('ok');
    const shift = await c.client.callTool({ name: 'shift_traffic', arguments: { route: 'canary-twin', stable: 0, canary: 100, reason: 'anonymous' } });
    expect(shift.isError).toBe(true);
    expect(await weightsOf(c)).toEqual({ stable: 100, canary: 0 });
    await gw.waitForLog((l) => l.level === 40 && String(l.msg).startsWith('mcp: a session opened without authentication'), 2000);
    await c.transport.terminateSession();
    await c.client.close();

    // The rest of the gateway still needs credentials.
    expect((await call(`${gw.url}/v1/twin/notes`, { anonymous: true })).status).toBe(401);
    // Origin is still checked.
    const evil = await mcpRaw(gw.url, { body: initializeMessage(), anonymous: true, headers: { origin: 'http://evil.example' } });
    expect(evil.status).toBe(403);
    expect(evil.json().error.data.code).toBe('GW_MCP_ORIGIN_FORBIDDEN');
    await gw.stop();
  });

  const productionEnv = {
    ENVIRONMENT: 'production',
    SECRET_KEY: 'prod-secret-key-0123456789abcdefghijklmnop',
    JWT_SECRET_KEY: 'prod-jwt-secret-0123456789abcdefghijklmnop',
    API_KEY: 'prod-api-key-0123456789abcdefghijklmnopqr',
  };

  it('is refused in production with one problem naming MCP_REQUIRE_AUTH (config check and serve)', async () => {
    const control = await runCli(['config', 'check'], productionEnv);
    expect(control.stdout.trim()).toBe('ok');
    expect(control.code).toBe(0);

    const check = await runCli(['config', 'check'], { ...productionEnv, MCP_REQUIRE_AUTH: 'false' });
    expect(check.code).toBe(1);
    const lines = check.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^MCP_REQUIRE_AUTH: /);

    const serve = await runCli(['serve'], { ...productionEnv, MCP_REQUIRE_AUTH: 'false' }, 10_000);
    expect(serve.code).toBe(1);
    expect(serve.stderr).toContain('configuration problems (1)');
    expect(serve.stderr).toMatch(/^\s+MCP_REQUIRE_AUTH: .*production/m);
    expect(serve.stdout).not.toContain('gateway listening');
  });
});

// ---------------------------------------------------------------------------------------------
// Origin in production: only configured origins, no implicit localhost.
// ---------------------------------------------------------------------------------------------
describe('Origin in production', () => {
  const prodKey = 'prod-origin-api-key-0123456789abcdefghijkl';
  const env = {
    ENVIRONMENT: 'production',
    SECRET_KEY: 'prod-secret-key-0123456789abcdefghijklmnop',
    JWT_SECRET_KEY: 'prod-jwt-secret-0123456789abcdefghijklmnop',
    API_KEY: prodKey,
  };

  it('accepts the CORS origins and requests without Origin, refuses every localhost origin that is not configured', async () => {
    const gw = await startGateway({ env, yaml: 'cors:\n  origins: [https://console.example.org]\n' });
    const init = (origin?: string) => mcpRaw(gw.url, { body: initializeMessage(), headers: { 'x-api-key': prodKey, ...(origin !== undefined ? { origin } : {}) } });
    for (const origin of ['http://localhost:1234', 'https://localhost', 'http://127.0.0.1:8000', 'http://[::1]:8080', 'http://LOCALHOST:3000']) {
      const res = await init(origin);
      expect([origin, res.status, res.json().error.data.code]).toEqual([origin, 403, 'GW_MCP_ORIGIN_FORBIDDEN']);
      expect(res.headers['mcp-session-id']).toBeUndefined();
    }
    for (const origin of ['https://console.example.org', undefined]) {
      const res = await init(origin);
      expect([origin, res.status]).toEqual([origin, 200]);
    }
    await gw.stop();
  });

  it('a localhost origin listed in mcp.allowedOrigins is accepted', async () => {
    const gw = await startGateway({ env, yaml: 'mcp:\n  allowedOrigins: [http://localhost:5173]\n' });
    const ok = await mcpRaw(gw.url, { body: initializeMessage(), headers: { 'x-api-key': prodKey, origin: 'http://localhost:5173' } });
    expect(ok.status).toBe(200);
    const other = await mcpRaw(gw.url, { body: initializeMessage(), headers: { 'x-api-key': prodKey, origin: 'http://localhost:5174' } });
    expect(other.status).toBe(403);
    await gw.stop();
  });
});

// ---------------------------------------------------------------------------------------------
// Availability: an agent holding a session (and its SSE stream) must not stall a graceful stop.
// ---------------------------------------------------------------------------------------------
describe('shutdown with an MCP session open', () => {
  it('SIGTERM ends the open MCP streams and exits well before server.shutdownTimeoutMs', async () => {
    const gw = await startGateway({ yaml: 'server:\n  shutdownTimeoutMs: 3000\n', waitReady: false });
    const c = await connectMcp(gw.url, admin);
    expect(await toolNames(c)).toContain('list_routes');
    // Let the client open its standalone SSE stream (GET /mcp), as a live agent does.
    await sleep(200);
    const started = Date.now();
    const exit = await gw.stop('SIGTERM', 10_000);
    const took = Date.now() - started;
    await c.client.close().catch(() => {});
    expect(exit.code).toBe(0);
    expect(gw.logs.some((l) => l.msg === 'shutdown deadline reached; closing remaining connections')).toBe(false);
    expect(took).toBeLessThan(1500);
  });
  it('a 2025 GET stream ends with a notice before the gateway stops, so the client knows to reconnect elsewhere', async () => {
    const gw = await startGateway({ waitReady: false });
    const init = await mcpRaw(gw.url, { body: initializeMessage(), headers: admin });
    const sessionId = init.headers['mcp-session-id'] as string;
    expect(init.status).toBe(200);
    await mcpRaw(gw.url, { body: { jsonrpc: '2.0', method: 'notifications/initialized' }, headers: admin, sessionId });
    // The stream's headers (and its priming event) arrive as soon as it is open; its end only at shutdown.
    const opened = new Promise<{ status: number; ended: Promise<string> }>((resolve, reject) => {
      const req = httpRequest(`${gw.url}/mcp`, { headers: { ...admin, accept: 'text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': init.json().result.protocolVersion } }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d));
        resolve({ status: res.statusCode ?? 0, ended: new Promise((done) => res.on('end', () => done(text)).on('error', () => done(text))) });
      });
      req.on('error', reject).end();
    });
    const stream = await opened;
    expect(stream.status).toBe(200);
    expect((await gw.stop('SIGTERM', 10_000)).code).toBe(0);
    expect(await stream.ended).toContain(': gateway shutting down: reconnect with Last-Event-ID');
  });
});
