import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, startGateway, type GatewayProcess } from '../helpers/gateway.js';
import { call } from '../helpers/http.js';
import { standIns, testServer, type StandIn } from '../helpers/upstreams.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

/** What the stand-in answers: what it received. */
interface Echo {
  service: string;
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  bodyBytes: number;
  bodySha256: string | null;
  body?: string;
}

let gw: GatewayProcess;
let twin: StandIn;
let knowledge: StandIn;

beforeAll(async () => {
  const { byName, env } = await standIns(['twin', 'knowledge', 'fog', 'p2p']);
  twin = byName.twin;
  knowledge = byName.knowledge;
  // agent-controller: an upstream that sets response headers of its own, hop-by-hop ones included.
  const agents = await testServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(req.url === '/health' ? 200 : 201, {
        'content-type': 'text/plain; charset=utf-8',
        'x-upstream-header': 'from-upstream',
        'set-cookie': ['a=1; Path=/', 'b=2; Path=/'],
        'cache-control': 'private, max-age=7',
        connection: 'x-drop-me',
        'x-drop-me': 'hop-secret',
        'keep-alive': 'timeout=5',
      });
      res.end('created by agents');
    });
  });
  gw = await startGateway({ env: { ...env, AGENT_CONTROLLER_URL: agents.url } });
});

afterAll(cleanup);

describe('forwarding methods, paths, queries and bodies', () => {
  it('GET keeps path and query and sets the forwarding headers', async () => {
    const res = await call(`${gw.url}/v1/twin/conversations/42?limit=5&q=a%20b&empty=`);
    expect(res.status).toBe(200);
    const echo = res.json<Echo>();
    expect(echo.service).toBe('twin');
    expect(echo.method).toBe('GET');
    expect(echo.path).toBe('/v1/twin/conversations/42');
    expect(echo.query).toEqual({ limit: '5', q: 'a b', empty: '' });
    expect(echo.bodyBytes).toBe(0);
    expect(echo.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(echo.headers['x-forwarded-proto']).toBe('http');
    expect(echo.headers['x-forwarded-host']).toBe(`127.0.0.1:${gw.port}`);
  });

  it('POST streams a JSON body with its content type', async () => {
    const body = JSON.stringify({ query: 'fog pricing', k: 3, note: 'ünïcödé' });
    const res = await call(`${gw.url}/v1/knowledge/search?lang=en`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    expect(res.status).toBe(200);
    const echo = res.json<Echo>();
    expect(echo).toMatchObject({ service: 'knowledge', method: 'POST', path: '/v1/knowledge/search', query: { lang: 'en' } });
    expect(echo.body).toBe(body);
    expect(echo.bodyBytes).toBe(Buffer.byteLength(body));
    expect(echo.bodySha256).toBe(sha256(body));
    expect(echo.headers['content-type']).toBe('application/json');
  });

  it('PUT forwards a binary body larger than the echo limit intact', async () => {
    const body = randomBytes(300 * 1024);
    const res = await call(`${gw.url}/v1/fog/jobs/7`, {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream' },
      body,
    });
    expect(res.status).toBe(200);
    const echo = res.json<Echo>();
    expect(echo).toMatchObject({ service: 'fog', method: 'PUT', path: '/v1/fog/jobs/7' });
    expect(echo.bodyBytes).toBe(body.length);
    expect(echo.bodySha256).toBe(sha256(body));
  });

  it('DELETE forwards its query and body', async () => {
    const body = '{"reason":"gone"}';
    const res = await call(`${gw.url}/v1/p2p/peers/abc?force=true`, {
      method: 'DELETE',
      headers: { 'content-type': 'application/json' },
      body,
    });
    expect(res.status).toBe(200);
    const echo = res.json<Echo>();
    expect(echo).toMatchObject({ service: 'p2p', method: 'DELETE', path: '/v1/p2p/peers/abc', query: { force: 'true' }, body });
    expect(echo.bodySha256).toBe(sha256(body));
  });

  it("replaces an incoming X-Forwarded-For from an untrusted client with the gateway's view", async () => {
    const res = await call(`${gw.url}/v1/twin/x`, { headers: { 'x-forwarded-for': '203.0.113.7' } });
    expect(res.json<Echo>().headers['x-forwarded-for']).toBe('127.0.0.1');
  });
});

describe('request ids', () => {
  it('generates one when absent, returns it and sends it upstream', async () => {
    const res = await call(`${gw.url}/v1/twin/notes`);
    const id = res.headers['x-request-id'];
    expect(id).toMatch(UUID);
    expect(res.json<Echo>().headers['x-request-id']).toBe(id);
    const again = await call(`${gw.url}/v1/twin/notes`);
    expect(again.headers['x-request-id']).not.toBe(id);
  });

  it('keeps a sane client id', async () => {
    const res = await call(`${gw.url}/v1/twin/notes`, { headers: { 'x-request-id': 'client-req.42:abc_Z' } });
    expect(res.headers['x-request-id']).toBe('client-req.42:abc_Z');
    expect(res.json<Echo>().headers['x-request-id']).toBe('client-req.42:abc_Z');
  });

  it('replaces an id that is not a sane token', async () => {
    const res = await call(`${gw.url}/v1/twin/notes`, { headers: { 'x-request-id': 'bad id <script>' } });
    expect(res.headers['x-request-id']).toMatch(UUID);
    expect(res.json<Echo>().headers['x-request-id']).toBe(res.headers['x-request-id']);
  });
});

describe('W3C traceparent', () => {
  it('keeps the trace id and flags with a new parent span id', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const parent = '00f067aa0ba902b7';
    const res = await call(`${gw.url}/v1/twin/t`, { headers: { traceparent: `00-${traceId}-${parent}-01` } });
    const sent = res.json<Echo>().headers.traceparent ?? '';
    const m = TRACEPARENT.exec(sent);
    expect(m, sent).not.toBeNull();
    expect(m![1]).toBe(traceId);
    expect(m![2]).not.toBe(parent);
    expect(m![2]).not.toMatch(/^0+$/);
    expect(m![3]).toBe('01');
  });

  it('starts a new valid trace when the header is absent or invalid', async () => {
    for (const headers of [{}, { traceparent: 'not-a-trace' }, { traceparent: `00-${'0'.repeat(32)}-00f067aa0ba902b7-01` }]) {
      const res = await call(`${gw.url}/v1/twin/t`, { headers });
      const sent = res.json<Echo>().headers.traceparent ?? '';
      const m = TRACEPARENT.exec(sent);
      expect(m, `${JSON.stringify(headers)} -> ${sent}`).not.toBeNull();
      expect(m![1]).not.toMatch(/^0+$/);
      expect(m![2]).not.toMatch(/^0+$/);
    }
  });
});

describe('hop-by-hop headers', () => {
  it('drops headers named in Connection, and Connection/TE/Keep-Alive themselves', async () => {
    const res = await call(`${gw.url}/v1/twin/hop`, {
      headers: { connection: 'x-custom', 'x-custom': 'must-not-pass', te: 'trailers', 'keep-alive': 'timeout=5' },
    });
    expect(res.status).toBe(200);
    const { headers } = res.json<Echo>();
    expect(headers['x-custom']).toBeUndefined();
    expect(headers.te).toBeUndefined();
    // The upstream connection header is undici's own, never the client's.
    expect(headers.connection ?? '').not.toContain('x-custom');
  });

  it('passes an ordinary header that Connection does not name (control)', async () => {
    const res = await call(`${gw.url}/v1/twin/hop`, { headers: { 'x-custom': 'passes' } });
    expect(res.json<Echo>().headers['x-custom']).toBe('passes');
  });
});

describe('upstream responses', () => {
  it('returns upstream status, body and headers, minus hop-by-hop ones', async () => {
    const res = await call(`${gw.url}/v1/agents/create`, { method: 'POST', body: 'x' });
    expect(res.status).toBe(201);
    expect(res.text).toBe('created by agents');
    expect(res.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(res.headers['x-upstream-header']).toBe('from-upstream');
    expect(res.headers['cache-control']).toBe('private, max-age=7');
    expect(res.headers['set-cookie']).toEqual(['a=1; Path=/', 'b=2; Path=/']);
    expect(res.headers['x-drop-me']).toBeUndefined();
    expect(res.headers['keep-alive']).toBeUndefined();
    expect(res.headers['x-request-id']).toMatch(UUID);
  });

  it('passes an upstream error status through unchanged', async () => {
    knowledge.behaviour.failStatus = 418;
    try {
      const res = await call(`${gw.url}/v1/knowledge/teapot`);
      expect(res.status).toBe(418);
      const echo = res.json<Echo>();
      expect(echo.service).toBe('knowledge');
      expect(echo.path).toBe('/v1/knowledge/teapot');
    } finally {
      knowledge.behaviour.failStatus = null;
    }
  });

  it('answers GW_ROUTE_NOT_FOUND for a path no route covers, without calling an upstream', async () => {
    const before = twin.requestCount;
    const res = await call(`${gw.url}/v1/twinx/a`);
    expect(res.status).toBe(404);
    expect(res.json().error.code).toBe('GW_ROUTE_NOT_FOUND');
    expect(twin.requestCount).toBe(before);
  });
});

describe('behind a trusted proxy', () => {
  it('keeps the X-Forwarded-For chain and appends the peer that connected, once', async () => {
    const behind = await startGateway({ env: { TWIN_SERVICE_URL: twin.url }, yaml: 'server:\n  trustProxy: [127.0.0.1]\n' });
    const res = await call(`${behind.url}/v1/twin/xff`, { headers: { 'x-forwarded-for': '203.0.113.7' } });
    expect(res.status).toBe(200);
    expect(res.json().headers['x-forwarded-for']).toBe('203.0.113.7, 127.0.0.1');
  });
});
