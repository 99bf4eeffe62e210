/**
 * The bare WebSocket relay the gateway is compared with (`npm run bench:ws`, the "bare-relay"
 * row), as bench/bare-proxy.ts is for HTTP: a Node http server and `ws`, each upgrade relayed
 * frame by frame to the same path on UPSTREAM_URL with close codes passed through, nothing
 * else (no auth, no limits, no backpressure accounting, no metrics, no pings). What it adds
 * over "direct" is what any Node relay adds on this machine (a third process, two more socket
 * hops, its own GC); what the gateway adds over it is the gateway's own.
 * Usage: node --import tsx bench/ws-bare-relay.ts UPSTREAM_URL
 */
import { createServer } from 'node:http';
import { WebSocket, WebSocketServer } from 'ws';

const upstream = process.argv[2]?.replace(/^http/, 'ws');
if (upstream === undefined) {
  process.stderr.write('usage: ws-bare-relay UPSTREAM_URL\n');
  process.exit(2);
}
const sendable = (code: number) => (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999);
const closeLike = (ws: WebSocket, code: number, reason: Buffer) => {
  if (ws.readyState === ws.CLOSED || ws.readyState === ws.CLOSING) return;
  if (sendable(code)) ws.close(code, reason);
  else ws.close();
};

const server = createServer((_req, res) => res.writeHead(426).end());
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
server.on('upgrade', (req, socket, head) => {
  socket.on('error', () => socket.destroy());
  // The upstream first, as the gateway does: the client is upgraded only once it is open.
  const up = new WebSocket(`${upstream}${req.url ?? '/'}`, { perMessageDeflate: false });
  up.once('unexpected-response', () => socket.destroy());
  up.on('error', () => socket.destroy());
  up.once('open', () => {
    up.pause();
    wss.handleUpgrade(req, socket, head, (client) => {
      client.on('message', (data: Buffer, isBinary) => up.send(data, { binary: isBinary }));
      up.on('message', (data: Buffer, isBinary) => client.send(data, { binary: isBinary }));
      client.on('error', () => client.terminate());
      client.on('close', (code, reason) => closeLike(up, code, reason));
      up.on('close', (code, reason) => closeLike(client, code, reason));
      up.resume();
    });
  });
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  process.stdout.write(`listening on http://127.0.0.1:${port}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => process.exit(0));
