import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { onCleanup } from '../helpers/gateway.js';

/** An upgrade the server refused: its status and JSON body. */
export interface Refused {
  readonly status: number;
  readonly body: { error?: { code: string; message: string } } | undefined;
}

/** Open a WebSocket; resolves with the open socket or with the HTTP answer that refused the upgrade. */
export function connect(url: string, options: { headers?: Record<string, string>; protocols?: string[]; autoPong?: boolean } = {}): Promise<WebSocket | Refused> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options.protocols ?? [], { headers: options.headers ?? {}, perMessageDeflate: false, autoPong: options.autoPong ?? true });
    onCleanup(() => ws.terminate());
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        let body: Refused['body'];
        try {
          body = JSON.parse(text) as Refused['body'];
        } catch {
          body = undefined;
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    ws.once('error', reject);
  });
}

export function isRefused(v: WebSocket | Refused): v is Refused {
  return !(v instanceof WebSocket);
}

export function nextMessage(ws: WebSocket): Promise<{ data: Buffer; isBinary: boolean }> {
  return new Promise((resolve) => ws.once('message', (data: Buffer, isBinary: boolean) => resolve({ data, isBinary })));
}

export function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  if (ws.readyState === ws.CLOSED) return Promise.resolve({ code: -1, reason: 'already closed' });
  return new Promise((resolve) => ws.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() })));
}

/** A WebSocket upstream under the test's control: every connection and its handshake are recorded. */
export interface WsUpstream {
  readonly url: string;
  readonly server: Server;
  readonly connections: Array<{ ws: WebSocket; url: string; headers: IncomingHttpHeaders; protocol: string }>;
  /** Called for each new connection (default: echo). */
  onConnection: (ws: WebSocket, url: string) => void;
  nextConnection(): Promise<{ ws: WebSocket; url: string; headers: IncomingHttpHeaders }>;
}

export async function wsUpstream(): Promise<WsUpstream> {
  const server = createServer((_req, res) => res.end('{"status":"ok"}'));
  const wss = new WebSocketServer({ server, perMessageDeflate: false });
  const waiters: Array<(c: WsUpstream['connections'][number]) => void> = [];
  const up: WsUpstream = {
    url: '',
    server,
    connections: [],
    onConnection: (ws) => ws.on('message', (data, isBinary) => ws.send(data as Buffer, { binary: isBinary })),
    nextConnection: () => new Promise((resolve) => waiters.push(resolve)),
  };
  wss.on('connection', (ws, req) => {
    ws.on('error', () => {});
    const c = { ws, url: req.url ?? '', headers: req.headers, protocol: ws.protocol };
    up.connections.push(c);
    up.onConnection(ws, c.url);
    waiters.shift()?.(c);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  (up as { url: string }).url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  onCleanup(
    () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  return up;
}
