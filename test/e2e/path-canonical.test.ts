import type { IncomingHttpHeaders } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/auth/api-keys.js';
import { cleanup, startGateway, type GatewayProcess } from '../helpers/gateway.js';
import { rawRequest } from '../helpers/raw-http.js';
import { testServer } from '../helpers/upstreams.js';

/*
 * Route policies against path tricks (issue 11, item 2). A route /v1/legacyapp/admin (scope
 * admin) sits above /v1/legacyapp (scope read); a READ key sends every form of "admin" that
 * some upstream framework normalises into /v1/legacyapp/admin (WSGI and uvicorn decode %2F,
 * Tomcat drops ;params and resolves ..;, IIS folds case and `\`, ...). The assertions are on
 * what the recording upstream RECEIVED: the read key never gets a request there that any of
 * those normalisations turns into the admin path. Requests go out as raw request lines.
 */

const READER_KEY = 'reader-key-0123456789';
const BOSS_KEY = 'boss-key-0123456789ab';

interface Received {
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
}

let gw: GatewayProcess;
let upstreamUrl: string;
const received: Received[] = [];

const apiKeysYaml = `
auth:
  apiKeys:
    - { name: reader, sha256: ${sha256Hex(READER_KEY)}, scopes: [read] }
    - { name: boss, sha256: ${sha256Hex(BOSS_KEY)}, scopes: [admin] }`;

beforeAll(async () => {
  const upstream = await testServer((req, res) => {
    received.push({ url: req.url ?? '', headers: req.headers });
    req.resume();
    req.on('end', () => {
      const body = JSON.stringify({ url: req.url });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
    });
  });
  upstreamUrl = upstream.url;
  gw = await startGateway({
    yaml: `
services:
  legacy: { urls: ["${upstream.url}"] }
${apiKeysYaml}
routes:
  - { id: legacy-admin, prefix: /v1/legacyapp/admin, service: legacy, auth: { scope: admin } }
  - { id: legacy, prefix: /v1/legacyapp, service: legacy, auth: { scope: read } }
  - { id: legacy-rewrite, prefix: /v1/rewrite, service: legacy, rewritePrefix: /legacy, auth: { scope: read } }
`,
  });
});
afterAll(cleanup);

/**
 * What an upstream that normalises as much as any framework does would route: every escape
 * decoded (repeatedly), NFKC, `\` as `/`, `;params` dropped, empty segments collapsed, dot
 * segments resolved, lowercase.
 */
function normalisedByUpstream(url: string): string {
  let path = url.split('?', 1)[0]!;
  for (let i = 0; i < 8; i++) {
    const next = path.replace(/%([0-9a-f]{2})/gi, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
    if (next === path) break;
    path = next;
  }
  path = Buffer.from(path, 'latin1').toString('utf8').normalize('NFKC').replace(/\\/g, '/');
  const out: string[] = [];
  for (const raw of path.split('/')) {
    const seg = raw.split(';', 1)[0]!;
    if (seg === '' || seg === '.') continue;
    if (seg === '..') out.pop();
    else out.push(seg.toLowerCase());
  }
  return `/${out.join('/')}`;
}

function reachesAdmin(url: string): boolean {
  const p = normalisedByUpstream(url);
  return p === '/v1/legacyapp/admin' || p.startsWith('/v1/legacyapp/admin/');
}

async function send(target: string, key: string, id: string, on: GatewayProcess = gw) {
  const res = await rawRequest(on.url, target, { headers: { 'x-api-key': key, 'x-request-id': id } });
  const got = received.filter((r) => r.headers['x-request-id'] === id);
  return { res, got };
}

type Expect = { status: 400 } | { status: 403 } | { status: 404 } | { status: 200; upstream: string };

// [what is sent, what must happen]
const READ_CASES: Array<[string, Expect]> = [
  ['/v1/legacyapp/admin%2fusers', { status: 400 }],
  ['/v1/legacyapp/admin%2Fusers', { status: 400 }],
  ['/v1/legacyapp/admin%5cusers', { status: 400 }],
  ['/v1/legacyapp/admin%5Cusers', { status: 400 }],
  ['/v1/legacyapp/%2fadmin', { status: 400 }],
  ['/v1/legacyapp/admin%252fusers', { status: 400 }],
  ['/v1/legacyapp/admin%25252Fusers', { status: 400 }],
  ['/v1/legacyapp/admin%255cusers', { status: 400 }],
  ['/v1/legacyapp/admin%EF%BC%8Fusers', { status: 400 }],
  ['/v1/legacyapp/admin\\users', { status: 400 }],
  ['/v1/legacyapp\\admin', { status: 400 }],
  ['/v1/legacyapp//admin', { status: 403 }],
  ['//v1//legacyapp//admin//users', { status: 403 }],
  ['/v1/legacyapp/./admin', { status: 400 }],
  ['/v1/legacyapp/x/../admin', { status: 400 }],
  ['/v1/legacyapp/x/%2e%2e/admin', { status: 400 }],
  ['/v1/legacyapp/x/%2E%2E/admin', { status: 400 }],
  ['/v1/legacyapp/x/.%2e/admin', { status: 400 }],
  ['/v1/legacyapp/%2e/admin', { status: 400 }],
  ['/v1/legacyapp/x/%252e%252e/admin', { status: 400 }],
  ['/v1/legacyapp/x/..;/admin', { status: 400 }],
  ['/v1/legacyapp/x/%E2%80%A5/admin', { status: 400 }],
  ['/v1/legacyapp/admin;x=1', { status: 400 }],
  ['/v1/legacyapp/admin;x=1/users', { status: 400 }],
  ['/v1/legacyapp;x=1/admin', { status: 400 }],
  ['/v1/legacyapp/admin%3bx=1', { status: 400 }],
  ['/v1/legacyapp/admin%00', { status: 400 }],
  ['/v1/legacyapp/admin%0d%0aX-Injected:%201', { status: 400 }],
  ['/v1/legacyapp/%61dmin', { status: 403 }],
  ['/v1/legacyapp/%61%64%6d%69%6e/users', { status: 403 }],
  ['/v1/legacyapp/ADMIN', { status: 400 }],
  ['/v1/legacyapp/Admin/users', { status: 400 }],
  ['/v1/legacyapp/%41DMIN', { status: 400 }],
  ['/v1/legacyapp/%EF%BD%81dmin', { status: 400 }],
  ['/V1/legacyapp/admin', { status: 404 }],
  ['/v1/LEGACYAPP/admin', { status: 404 }],
  ['/v1/legacyapp/%c0%afadmin', { status: 400 }],
  ['/v1/legacyapp/%e0%80%afadmin', { status: 400 }],
  ['/v1/legacyapp/%c3', { status: 400 }],
  ['/v1/legacyapp/admin#x', { status: 400 }],
  ['http://evil.example/v1/legacyapp/admin', { status: 403 }],
  ['http://evil.example/v1/legacyapp/x/../admin', { status: 400 }],
  ['HTTP://evil.example:8080/v1/legacyapp/users?a=1', { status: 200, upstream: '/v1/legacyapp/users?a=1' }],
  ['*', { status: 400 }],
  // what reads the same either way goes through, canonical
  ['/v1/legacyapp/users', { status: 200, upstream: '/v1/legacyapp/users' }],
  ['/v1/legacyapp/administrators', { status: 200, upstream: '/v1/legacyapp/administrators' }],
  ['/v1/legacyapp/%75sers/%7Eme', { status: 200, upstream: '/v1/legacyapp/users/~me' }],
  ['/v1/legacyapp/caf%c3%a9', { status: 200, upstream: '/v1/legacyapp/caf%C3%A9' }],
  ['/v1/legacyapp/%E6%97%A5%E6%9C%AC', { status: 200, upstream: '/v1/legacyapp/%E6%97%A5%E6%9C%AC' }],
  ['/v1/legacyapp/a%20b%3fc', { status: 200, upstream: '/v1/legacyapp/a%20b%3Fc' }],
  ['/v1/legacyapp//users//', { status: 200, upstream: '/v1/legacyapp/users/' }],
  ['/v1/legacyapp/users?_method=DELETE&x=1', { status: 200, upstream: '/v1/legacyapp/users?x=1' }],
  // rewritePrefix applies to the canonical path
  ['/v1/rewrite//x/%79', { status: 200, upstream: '/legacy/x/y' }],
  ['http://evil.example/v1/rewrite/x?q=1', { status: 200, upstream: '/legacy/x?q=1' }],
  ['/v1/rewrite/../legacyapp/admin', { status: 400 }],
];

describe('one canonical path: a read token never reaches the admin path upstream', () => {
  it.each(READ_CASES.map(([target, want], i) => [target, want, i] as const))('%s', async (target, want, i) => {
    const { res, got } = await send(target, READER_KEY, `read-${i}`);
    // The invariant, whatever the answer: nothing the read key sent reads as the admin path upstream.
    for (const r of got) expect(reachesAdmin(r.url), `upstream received ${r.url}`).toBe(false);
    expect(res.status, res.text).toBe(want.status);
    if (want.status === 200) {
      expect(got.map((r) => r.url)).toEqual([want.upstream]);
      // The Host of an absolute-form target is never taken from it.
      expect(got[0]!.headers['x-forwarded-host']).toBe(new URL(gw.url).host);
    } else {
      expect(got).toEqual([]);
      const code = res.json<{ error: { code: string } }>().error.code;
      expect(code).toBe({ 400: 'GW_REQUEST_PATH_INVALID', 403: 'GW_AUTH_INSUFFICIENT_SCOPE', 404: 'GW_ROUTE_NOT_FOUND' }[want.status]);
    }
  });

  it('an admin key reaches the admin route with the canonical path', async () => {
    const { res, got } = await send('/v1/legacyapp//admin/%75sers', BOSS_KEY, 'boss-1');
    expect(res.status).toBe(200);
    expect(got.map((r) => r.url)).toEqual(['/v1/legacyapp/admin/users']);
  });

  it('says why in a stable error, without echoing the path', async () => {
    const res = await rawRequest(gw.url, '/v1/legacyapp/admin%2f%3Cscript%3E', { headers: { 'x-api-key': READER_KEY } });
    expect(res.status).toBe(400);
    const body = res.json<{ error: { code: string; message: string; requestId: string } }>();
    expect(body.error.code).toBe('GW_REQUEST_PATH_INVALID');
    expect(body.error.message).toMatch(/encoded \/ or \\/);
    expect(body.error.message).not.toContain('script');
    expect(body.error.requestId).toBe(res.headers['x-request-id']);
  });

  it('refuses a bad target before authentication (no 401 first)', async () => {
    const res = await rawRequest(gw.url, '/v1/legacyapp/x/../admin');
    expect(res.status).toBe(400);
    expect(res.json().error.code).toBe('GW_REQUEST_PATH_INVALID');
  });
});

describe('routes that opt in to encoded slashes and ;', () => {
  let files: GatewayProcess;
  beforeAll(async () => {
    files = await startGateway({
      yaml: `
services:
  legacy: { urls: ["${upstreamUrl}"] }
${apiKeysYaml}
routes:
  - { id: files, prefix: /v1/files, service: legacy, allowEncodedSlashes: true, allowSemicolons: true, auth: { scope: read } }
  - { id: files-private, prefix: /v1/files/private, service: legacy, auth: { scope: admin } }
`,
    });
  });

  it('forward %2F and ; untouched, never as separators', async () => {
    const slash = await send('/v1/files/Documents%2fWork', READER_KEY, 'files-a', files);
    expect(slash.res.status).toBe(200);
    expect(slash.got.map((r) => r.url)).toEqual(['/v1/files/Documents%2FWork']);
    const semi = await send('/v1/files/report;v=2', READER_KEY, 'files-b', files);
    expect(semi.res.status).toBe(200);
    expect(semi.got.map((r) => r.url)).toEqual(['/v1/files/report;v=2']);
  });

  it('never become a way into a route below them', async () => {
    for (const [i, target] of ['/v1/files/private%2Fx', '/v1/files/private;v=1', '/v1/files/PRIVATE/x', '/v1/files/x%2F..%2Fprivate', '/v1/files/%2e%2e%2fprivate'].entries()) {
      const { res, got } = await send(target, READER_KEY, `files-${i}`, files);
      expect(res.status, target).toBe(400);
      expect(res.json().error.code).toBe('GW_REQUEST_PATH_INVALID');
      expect(got).toEqual([]);
    }
  });
});
