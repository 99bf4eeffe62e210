import crypto = require('node:crypto');
import http = require('node:http');
import workerThreads = require('node:worker_threads');
import type { AddressInfo } from 'node:net';
import type { ProbeState, ProbeThreadData, ProbeThreadMessage } from './probe-listener.js' with { 'resolution-mode': 'import' };

/*
 * The probe listener's thread (src/server/probe-listener.ts): /livez, /readyz and /healthz
 * answered from the last state the gateway's event loop posted, so a probe never waits behind
 * proxied requests or their GC. A state older than `stallMs` means that loop has stopped
 * reporting: /livez and /readyz then answer 503.
 *
 * CommonJS on purpose, with nothing but node: imports: a thread's isolate that loads an ES
 * module sets up the ESM loader too, which measured 9 MiB of RSS more for the same listener
 * (28 against 19 MiB for the thread; issue 18's RSS target). The error bodies therefore repeat
 * the shape of `errorBody` in src/errors.ts; test/e2e/probe-listener.test.ts compares them.
 */

const data = workerThreads.workerData as ProbeThreadData;
let state: ProbeState | undefined;
const port = workerThreads.parentPort!;
port.on('message', (message: ProbeState) => {
  state = message;
});

const JSON_TYPE = 'application/json; charset=utf-8';

function send(res: http.ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': JSON_TYPE, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

function errorJson(code: 'GW_ROUTE_NOT_FOUND' | 'GW_ROUTE_METHOD_NOT_ALLOWED', message: string): string {
  return JSON.stringify({ error: { code, message, requestId: crypto.randomUUID() } });
}

const server = http.createServer((req, res) => {
  req.resume();
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  const stalled = state === undefined || Date.now() - state.sentAt > data.stallMs;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD');
    send(res, 405, errorJson('GW_ROUTE_METHOD_NOT_ALLOWED', 'The probe listener accepts GET and HEAD'));
    return;
  }
  switch (path) {
    case '/livez':
      send(res, stalled ? 503 : 200, stalled ? '{"status":"stalled","reason":"the gateway\'s event loop stopped reporting"}' : '{"status":"ok"}');
      return;
    case '/readyz':
      if (stalled || state === undefined) send(res, 503, '{"status":"not-ready","reason":"the gateway\'s event loop stopped reporting"}');
      else send(res, state.readyz.status, state.readyz.body);
      return;
    case '/healthz':
      if (state === undefined) send(res, 503, '{"status":"unknown"}');
      else send(res, state.healthz.status, state.healthz.body);
      return;
    default:
      send(res, 404, errorJson('GW_ROUTE_NOT_FOUND', `No route for ${req.method} ${path} on the probe listener`));
  }
});
server.keepAliveTimeout = 5000;
server.on('error', (err) => port.postMessage({ type: 'error', message: err.message } satisfies ProbeThreadMessage));
// reusePort: under WORKER_THREADS every worker's probe thread binds the same port (Linux spreads connections).
server.listen({ host: data.host, port: data.port, reusePort: data.port !== 0 }, () => {
  port.postMessage({ type: 'listening', port: (server.address() as AddressInfo).port } satisfies ProbeThreadMessage);
});
