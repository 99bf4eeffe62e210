import { connect, type Socket } from 'node:net';

/*
 * Raw TCP clients that send a request slowly (slowloris and slow-body attacks), from a chosen
 * loopback source address (Linux routes all of 127/8 to lo, so 127.0.0.2 is "another client").
 */

export interface SlowClientOptions {
  readonly port: number;
  readonly host?: string;
  /** Source address of the connection (e.g. 127.0.0.2). */
  readonly localAddress?: string;
  /** Sent at once when connected (e.g. the request line and some headers). */
  readonly head: string | Buffer;
  /** Then one `bytes` every `everyMs` until the server answers or closes (or `maxDrips` were sent). */
  readonly drip?: { readonly bytes: string; readonly everyMs: number; readonly maxDrips?: number };
}

export interface SlowClientResult {
  /** ms from the start of connect() to the connection being established (null: never connected). */
  readonly connectedMs: number | null;
  /** ms from being connected (or from the start, when never connected) to the socket closing. */
  readonly openMs: number;
  /** Everything the server sent. */
  readonly received: string;
  /** The status of the first response, or null when nothing was answered. */
  readonly status: number | null;
  /** The `error.code` of the first response body, when it is the gateway's JSON error shape. */
  readonly code: string | null;
  /** Closed by the server without a single byte: refused (connection cap). */
  readonly refused: boolean;
  readonly error?: string;
}

export interface SlowClient {
  readonly socket: Socket;
  /** Resolves when the socket has closed. */
  readonly done: Promise<SlowClientResult>;
}

export function slowClient(options: SlowClientOptions): SlowClient {
  const started = performance.now();
  let connectedAt: number | null = null;
  let received = '';
  let error: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  const socket = connect({ port: options.port, host: options.host ?? '127.0.0.1', ...(options.localAddress ? { localAddress: options.localAddress } : {}) });
  socket.setEncoding('latin1');
  socket.on('connect', () => {
    connectedAt = performance.now();
    socket.write(options.head);
    const drip = options.drip;
    if (drip === undefined) return;
    let sent = 0;
    timer = setInterval(() => {
      if (received !== '' || socket.destroyed || !socket.writable || (drip.maxDrips !== undefined && sent >= drip.maxDrips)) {
        clearInterval(timer);
        return;
      }
      sent += 1;
      socket.write(drip.bytes);
    }, drip.everyMs);
  });
  socket.on('data', (d: string) => {
    received += d;
  });
  socket.on('error', (err: NodeJS.ErrnoException) => {
    error ??= err.code ?? err.message;
  });
  const done = new Promise<SlowClientResult>((resolve) => {
    socket.on('close', () => {
      clearInterval(timer);
      const closedAt = performance.now();
      const status = /^HTTP\/1\.1 (\d{3})/.exec(received);
      const code = /"code":"([A-Z_]+)"/.exec(received);
      resolve({
        connectedMs: connectedAt === null ? null : connectedAt - started,
        openMs: closedAt - (connectedAt ?? started),
        received,
        status: status ? Number(status[1]) : null,
        code: code ? code[1]! : null,
        refused: received === '',
        ...(error !== undefined ? { error } : {}),
      });
    });
  });
  return { socket, done };
}

/** Resolves once the socket is connected (rejects if it closes first). */
export function connected(client: SlowClient): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!client.socket.connecting && !client.socket.destroyed) resolve();
    client.socket.once('connect', () => resolve());
    client.socket.once('close', () => reject(new Error('closed before connecting')));
  });
}
