import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';

/**
 * A small stand-in for one backend service: the demo runs five of them, and the tests and
 * the benchmark use the same code as a real upstream on loopback. It answers JSON naming
 * itself and echoing what it received, streams request bodies through a hash (never holds
 * them), and can be told to fail, slow down or report itself unhealthy. WebSocket upgrades
 * on any path are accepted and every message is echoed back as it came (text or binary).
 */

export const DEMO_SERVICES = {
  twin: { port: 8001, description: 'personal digital-twin assistant: conversation, notes, preferences, reminders' },
  'agent-controller': { port: 8002, description: 'Agent Forge: create, train, evaluate, deploy and run agents' },
  knowledge: { port: 8003, description: 'RAG: questions answered from documents, search, ingest' },
  fog: { port: 8004, description: 'fog computing: compute jobs, capacity, nodes, pricing' },
  p2p: { port: 8005, description: 'peer network: peers, mesh links, messages, sync, NAT traversal' },
} as const;

export interface StandInBehaviour {
  /** Wait this long before answering (not applied to /health). */
  delayMs: number;
  /** Answer every non-health request with this status instead of 200. */
  failStatus: number | null;
  /** Status of GET /health. */
  healthStatus: number;
}

export interface StandIn {
  readonly name: string;
  readonly url: string;
  readonly port: number;
  readonly behaviour: StandInBehaviour;
  /** Requests answered so far (health probes excluded). */
  readonly requestCount: number;
  close(): Promise<void>;
}

const ECHO_BODY_LIMIT = 64 * 1024;
const ECHOED_HEADERS = ['x-request-id', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'traceparent', 'content-type', 'connection', 'te', 'x-custom'];

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export async function startStandIn(options: { name: string; port?: number; host?: string; description?: string }): Promise<StandIn> {
  const behaviour: StandInBehaviour = { delayMs: 0, failStatus: null, healthStatus: 200 };
  let requestCount = 0;
  const description = options.description ?? 'stand-in service';

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const [path = '/', query = ''] = (req.url ?? '/').split('?', 2);
    if (path === '/health') {
      req.resume();
      sendJson(res, behaviour.healthStatus, { status: behaviour.healthStatus < 300 ? 'ok' : 'unhealthy', service: options.name });
      return;
    }
    requestCount += 1;
    const hash = createHash('sha256');
    const echoed: Buffer[] = [];
    let bodyBytes = 0;
    req.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      if (bodyBytes < ECHO_BODY_LIMIT) echoed.push(chunk.subarray(0, ECHO_BODY_LIMIT - bodyBytes));
      bodyBytes += chunk.length;
    });
    req.on('end', () => {
      const answer = () => {
        if (res.destroyed) return;
        const headers: Record<string, string> = {};
        for (const h of ECHOED_HEADERS) {
          const v = req.headers[h];
          if (v !== undefined) headers[h] = Array.isArray(v) ? v.join(', ') : v;
        }
        sendJson(res, behaviour.failStatus ?? 200, {
          service: options.name,
          description,
          method: req.method,
          path,
          query: Object.fromEntries(new URLSearchParams(query)),
          headers,
          bodyBytes,
          bodySha256: bodyBytes > 0 ? hash.digest('hex') : null,
          ...(bodyBytes > 0 && bodyBytes <= ECHO_BODY_LIMIT ? { body: Buffer.concat(echoed).toString('utf8') } : {}),
        });
      };
      if (behaviour.delayMs > 0) setTimeout(answer, behaviour.delayMs);
      else answer();
    });
  };

  const server: Server = createServer({ keepAliveTimeout: 65_000 }, handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  // WebSocket echo on any path (the demo's "try it" line, the WebSocket tests and bench).
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  server.on('upgrade', (req, socket, head) => {
    socket.on('error', () => socket.destroy());
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('error', () => ws.terminate());
      ws.on('message', (data, isBinary) => ws.send(data as Buffer, { binary: isBinary }));
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    name: options.name,
    url: `http://${options.host ?? '127.0.0.1'}:${port}`,
    port,
    behaviour,
    get requestCount() {
      return requestCount;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const ws of wss.clients) ws.terminate();
        wss.close();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
