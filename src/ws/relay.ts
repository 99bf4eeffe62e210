import type { WebSocket } from 'ws';
import type { WebsocketsConfig } from '../config/index.js';
import type { GatewayMetrics } from '../metrics/registry.js';

/*
 * One proxied WebSocket: frames both ways between the client and its upstream, with the
 * per-connection limits (message rate from the client, idle timeout, pings to both peers;
 * message size is the sockets' maxPayload) and backpressure: bytes handed to one side's
 * socket and not yet written out count against `bufferBytes`; past it the other side is
 * paused (its socket is no longer read, so TCP flow control pushes back on its sender) and
 * resumed below half. What the gateway holds for a slow reader is thereby bounded by
 * bufferBytes plus one message and the rest of the read under way (ws parses a read whole),
 * whatever the other side sends.
 *
 * Close codes and reasons pass through both ways; codes that may not be sent on the wire
 * (1005 no status, 1006 abnormal) become a plain close, or 1001 when the peer vanished.
 */

export type CloseBy = 'client' | 'upstream' | 'gateway';

export interface RelayOptions {
  /** Metric label: the route id. */
  readonly route: string;
  readonly limits: Pick<WebsocketsConfig, 'messagesPerSecond' | 'bufferBytes' | 'idleTimeoutMs' | 'pingIntervalMs'>;
  readonly metrics: Pick<GatewayMetrics, 'wsConnections' | 'wsMessages' | 'wsBytes' | 'wsCloses'>;
  /** Text frames from the client: a rule name when the message must be refused (closes 1008). */
  readonly inspectText?: (text: string) => string | null;
  readonly log?: { info(obj: object, msg: string): void };
  /** Called once both sides are closed. */
  readonly onEnd?: (relay: Relay) => void;
}

/** Codes a peer may put in a close frame (RFC 6455 §7.4, as ws checks them). */
export function sendableCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999);
}

/** The `code` label of gateway_websocket_closes_total: bounded to the standard codes and two classes. */
export function closeCodeLabel(code: number): string {
  if (code >= 1000 && code <= 1015) return String(code);
  if (code >= 3000 && code <= 3999) return '3xxx';
  if (code >= 4000 && code <= 4999) return '4xxx';
  return 'other';
}

/** Close `ws` with what the peer closed with, as far as it may be sent. */
export function closeLike(ws: WebSocket, code: number, reason: Buffer | string): void {
  if (ws.readyState === ws.CLOSED || ws.readyState === ws.CLOSING) return;
  if (sendableCloseCode(code)) ws.close(code, reason);
  else if (code === 1005) ws.close();
  else ws.close(1001, 'peer went away');
}

/*
 * ws's Receiver (8.x) starts a fresh, empty `_fragments` array when it emits a message and fills
 * it with the next message's buffers. On a connection quieter than two young-generation GCs (a
 * scavenge every ~0.5 s under load, against one message a second on each of 1,000 connections)
 * that empty array reaches the old generation before it is used; once the next message is
 * emitted it is garbage, but the scavenger takes every old-to-young pointer as a root, so the
 * dead array still drags that message's buffers (elements, Buffer, ArrayBuffer) into the old
 * generation: ~390 B promoted per message received, on both sockets of a proxied connection,
 * which filled the old generation and set the rate of the major GCs behind the relay's p99
 * (bench/README.md, WebSockets). One array per socket, emptied after each message and handed
 * back, keeps every message's buffers young. ws offers no public way to do this, hence the
 * private fields and the guards: where they do not apply (another ws, binaryType 'fragments'
 * which hands the array itself to the listener) nothing is changed; test/ws/relay.test.ts
 * fails if the installed ws no longer takes it.
 */
type ReceiverState = { _fragments?: unknown };

/**
 * For `ws` (open, default binaryType): a function to call at the start of each 'message'
 * listener that hands its receiver the same, emptied array again; undefined when it does not apply.
 */
export function fragmentArrayReuse(ws: WebSocket): (() => void) | undefined {
  const receiver = (ws as unknown as { _receiver?: ReceiverState | null })._receiver;
  if (ws.binaryType !== 'nodebuffer' || receiver == null || !Array.isArray(receiver._fragments)) return undefined;
  // The array the receiver fills next (possibly with the first frames of a message under way).
  const fragments: unknown[] = receiver._fragments;
  return () => {
    // The message being emitted was taken out of the array (and the array replaced) before 'message'.
    if (receiver._fragments === fragments) return;
    fragments.length = 0;
    receiver._fragments = fragments;
  };
}

/*
 * Backpressure per direction on what `to` has not written out yet (ws's public bufferedAmount:
 * its socket's write queue). A message is sent with a completion callback only when it takes
 * that queue past `bufferBytes` or `from` is already paused: an ordinary send has none, so it
 * costs no closure and no per-write nextTick in the socket (a callback per message was ~20% of
 * the gateway's allocation while relaying, the main cause of its young-generation GCs).
 * Write callbacks run in order, so the last one outstanding sees the queue as it drained.
 */
/** ws copies the options of each send: one object of each kind will do. */
const BINARY = Object.freeze({ binary: true });
const TEXT = Object.freeze({ binary: false });

class Direction {
  paused = false;
  /** Sends made with #written whose callback has not run yet. */
  #awaiting = 0;
  readonly #written = (): void => {
    this.#awaiting -= 1;
    // Below half, or nothing left to wait for (what remains is not ours: control frames).
    if (this.paused && (this.to.bufferedAmount <= this.bufferBytes / 2 || this.#awaiting === 0)) {
      this.paused = false;
      this.from.resume();
    }
  };

  constructor(
    readonly from: WebSocket,
    readonly to: WebSocket,
    private readonly bufferBytes: number,
  ) {}

  /** Bytes handed to `to` and not yet written out. */
  get pending(): number {
    return this.to.bufferedAmount;
  }

  send(data: Buffer, isBinary: boolean): void {
    if (this.to.readyState !== this.to.OPEN) return;
    if (!this.paused && this.to.bufferedAmount + data.length <= this.bufferBytes) {
      this.to.send(data, isBinary ? BINARY : TEXT);
      return;
    }
    this.#awaiting += 1;
    this.to.send(data, isBinary ? BINARY : TEXT, this.#written);
    if (!this.paused) {
      this.paused = true;
      this.from.pause();
    }
  }
}

export class Relay {
  readonly client: WebSocket;
  readonly upstream: WebSocket;
  readonly #options: RelayOptions;
  readonly #in: Direction;
  readonly #out: Direction;
  #closedBy: CloseBy | undefined;
  #clientClosed = false;
  #upstreamClosed = false;
  #lastActivity = performance.now();
  #tokens: number;
  #lastRefill = performance.now();
  #pingTimer: NodeJS.Timeout | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  #clientAlive = true;
  #upstreamAlive = true;
  readonly #openedAt = performance.now();
  #messagesIn = 0;
  #messagesOut = 0;

  constructor(client: WebSocket, upstream: WebSocket, options: RelayOptions) {
    this.client = client;
    this.upstream = upstream;
    this.#options = options;
    const { limits, metrics, route } = options;
    this.#tokens = limits.messagesPerSecond;
    this.#in = new Direction(client, upstream, limits.bufferBytes);
    this.#out = new Direction(upstream, client, limits.bufferBytes);
    metrics.wsConnections.inc({ route });
    // The upstream may have gone between its handshake and this relay: its 'close' was heard by no one.
    if (upstream.readyState === upstream.CLOSED) this.#upstreamClosed = true;
    const inMessages = metrics.wsMessages.labels({ route, direction: 'in' });
    const outMessages = metrics.wsMessages.labels({ route, direction: 'out' });
    const inBytes = metrics.wsBytes.labels({ route, direction: 'in' });
    const outBytes = metrics.wsBytes.labels({ route, direction: 'out' });

    const reuseClientFragments = fragmentArrayReuse(client);
    const reuseUpstreamFragments = fragmentArrayReuse(upstream);
    client.on('message', (data: Buffer, isBinary: boolean) => {
      reuseClientFragments?.();
      this.#lastActivity = performance.now();
      if (!this.#takeToken()) return this.#refuse(1008, 'message rate exceeded');
      if (!isBinary && options.inspectText !== undefined) {
        const rule = options.inspectText(data.toString('utf8'));
        if (rule !== null) return this.#refuse(1008, `message refused (${rule})`);
      }
      this.#messagesIn += 1;
      inMessages.inc();
      inBytes.inc(data.length);
      this.#in.send(data, isBinary);
    });
    upstream.on('message', (data: Buffer, isBinary: boolean) => {
      reuseUpstreamFragments?.();
      this.#lastActivity = performance.now();
      this.#messagesOut += 1;
      outMessages.inc();
      outBytes.inc(data.length);
      this.#out.send(data, isBinary);
    });
    client.on('pong', () => (this.#clientAlive = true));
    upstream.on('pong', () => (this.#upstreamAlive = true));
    // Oversized messages and protocol errors (WS_ERR_*): ws closes the socket itself (1009,
    // 1002...) for the gateway; anything else (a reset) is the client going away.
    client.on('error', (err: Error & { code?: string }) => (this.#closedBy ??= err.code?.startsWith('WS_ERR_') === true ? 'gateway' : 'client'));
    upstream.on('error', () => (this.#closedBy ??= 'upstream'));

    client.on('close', (code: number, reason: Buffer) => {
      this.#clientClosed = true;
      this.#closedBy ??= 'client';
      metrics.wsCloses.inc({ route, by: this.#closedBy, code: closeCodeLabel(code) });
      metrics.wsConnections.dec({ route });
      // The connection's access-log line (the upgrade itself has none: its reply was hijacked).
      options.log?.info(
        { route, closedBy: this.#closedBy, code, durationMs: Math.round(performance.now() - this.#openedAt), messagesIn: this.#messagesIn, messagesOut: this.#messagesOut },
        'websocket closed',
      );
      closeLike(upstream, code, reason);
      this.#ended();
    });
    upstream.on('close', (code: number, reason: Buffer) => {
      this.#upstreamClosed = true;
      this.#closedBy ??= 'upstream';
      closeLike(client, code, reason);
      this.#ended();
    });

    if (limits.pingIntervalMs > 0) {
      // The first ping at a random point of the interval: connections opened together (a
      // reconnect storm, a benchmark) do not all ping in the same millisecond ever after.
      this.#pingTimer = setTimeout(() => {
        this.#ping();
        this.#pingTimer = setInterval(() => this.#ping(), limits.pingIntervalMs);
        this.#pingTimer.unref();
      }, Math.round(limits.pingIntervalMs * (0.5 + Math.random() / 2)));
      this.#pingTimer.unref();
    }
    if (limits.idleTimeoutMs > 0) this.#armIdle(limits.idleTimeoutMs);
  }

  /** Bytes waiting for each side's socket (tests, diagnostics). */
  get pending(): { toUpstream: number; toClient: number } {
    return { toUpstream: this.#in.pending, toClient: this.#out.pending };
  }

  /** The gateway ends the connection (shutdown: 1001). */
  close(code: number, reason: string): void {
    this.#closedBy ??= 'gateway';
    closeLike(this.client, code, reason);
    closeLike(this.upstream, code, reason);
  }

  /** Cut both sockets at once (a close handshake that did not finish in time). */
  terminate(): void {
    this.#closedBy ??= 'gateway';
    this.client.terminate();
    this.upstream.terminate();
  }

  get ended(): boolean {
    return this.#clientClosed && this.#upstreamClosed;
  }

  #refuse(code: number, reason: string): void {
    this.#options.log?.info({ route: this.#options.route, code, reason }, 'websocket closed by a limit');
    this.close(code, reason);
  }

  #takeToken(): boolean {
    const rate = this.#options.limits.messagesPerSecond;
    if (rate === 0) return true;
    const now = performance.now();
    this.#tokens = Math.min(rate, this.#tokens + ((now - this.#lastRefill) * rate) / 1000);
    this.#lastRefill = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  #ping(): void {
    if (!this.#clientAlive || !this.#upstreamAlive) {
      this.#options.log?.info({ route: this.#options.route, client: this.#clientAlive, upstream: this.#upstreamAlive }, 'websocket peer did not answer a ping');
      this.terminate();
      return;
    }
    this.#clientAlive = false;
    this.#upstreamAlive = false;
    if (this.client.readyState === this.client.OPEN) this.client.ping();
    if (this.upstream.readyState === this.upstream.OPEN) this.upstream.ping();
  }

  /** One timer per connection, re-armed for the remainder when there was activity meanwhile. */
  #armIdle(delayMs: number): void {
    this.#idleTimer = setTimeout(() => {
      const idle = performance.now() - this.#lastActivity;
      const timeout = this.#options.limits.idleTimeoutMs;
      if (idle >= timeout) this.close(1000, 'idle timeout');
      else this.#armIdle(timeout - idle);
    }, delayMs);
    this.#idleTimer.unref();
  }

  #ended(): void {
    if (!this.ended) return;
    clearTimeout(this.#pingTimer); // a timeout or an interval: the same timer kind in Node
    clearInterval(this.#pingTimer);
    clearTimeout(this.#idleTimer);
    this.#options.onEnd?.(this);
  }
}
