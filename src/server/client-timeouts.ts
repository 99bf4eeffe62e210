import type { IncomingMessage, Server, ServerOptions, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyBaseLogger } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import type { ClientConnectionsConfig } from '../config/index.js';
import { answerAndClose } from '../security/client-errors.js';

/*
 * How long a client may take to send a request and to take its answer (issue 11, item 4).
 *
 * - Headers: the whole header block within clientHeaderTimeoutMs (Node's headersTimeout);
 *   408 GW_REQUEST_TIMEOUT, connection closed.
 * - Body: Node's requestTimeout covers the whole request, so a cap that stops a trickle (one
 *   byte every few seconds) would also cut a long upload. Instead, while a body arrives:
 *     1. inactivity: the next byte within clientBodyTimeoutMs whenever the gateway is ready to
 *        read (nginx client_body_timeout);
 *     2. rate: once clientBodyTimeoutMs has passed, the body must have averaged at least
 *        clientBodyMinBytesPerSecond since it began (Kestrel's MinRequestBodyDataRate idea).
 *   Time the gateway itself held the client back (its read buffer full: the upstream or a
 *   stage before it not reading yet) counts for neither. A body that breaks a rule gets 408
 *   GW_REQUEST_TIMEOUT when no answer has started, and the connection is closed.
 *   requestTimeoutMs (Node's requestTimeout, off by default) adds a hard cap if wanted.
 * - Answer: a response whose queued data the client takes none of for clientSendTimeoutMs
 *   is cut (nginx send_timeout); an idle stream (nothing queued) is never cut.
 *
 * Progress is read from the socket's public counters (bytesRead; bytesWritten minus what is
 * still queued), sampled by one timer per server, as Node checks its own timeouts.
 */

export type TimeoutPhase = 'headers' | 'request' | 'body' | 'send';

/** What one sample of a body in progress decided. */
export type BodyVerdict = 'ok' | 'idle' | 'too-slow';

export interface BodyRules {
  readonly timeoutMs: number;
  readonly minBytesPerSecond: number;
}

/** The progress of one request body, updated by `checkBody` at each sample. */
export interface BodyProgress {
  readonly startedAt: number;
  readonly startBytes: number;
  lastBytes: number;
  lastProgressAt: number;
  lastSampleAt: number;
  /** Time the gateway held the client back (its read buffer full). */
  heldMs: number;
}

export function startBody(now: number, bytesRead: number): BodyProgress {
  return { startedAt: now, startBytes: bytesRead, lastBytes: bytesRead, lastProgressAt: now, lastSampleAt: now, heldMs: 0 };
}

/**
 * One sample of a body in progress. `bytesRead` is the connection's byte count now; `held`
 * is true when the gateway is not reading (its buffer for the body is full), so a silent
 * client is then not at fault.
 */
export function checkBody(p: BodyProgress, bytesRead: number, held: boolean, now: number, rules: BodyRules): BodyVerdict {
  const since = now - p.lastSampleAt;
  p.lastSampleAt = now;
  if (held) {
    // The gateway is not reading: neither silence nor slowness is the client's doing now.
    p.heldMs += since;
    p.lastProgressAt = now;
    p.lastBytes = Math.max(p.lastBytes, bytesRead);
    return 'ok';
  }
  if (bytesRead > p.lastBytes) {
    p.lastBytes = bytesRead;
    p.lastProgressAt = now;
  } else if (now - p.lastProgressAt > rules.timeoutMs) return 'idle';
  const active = now - p.startedAt - p.heldMs;
  if (rules.minBytesPerSecond > 0 && active > rules.timeoutMs && bytesRead - p.startBytes < (rules.minBytesPerSecond * active) / 1000) {
    return 'too-slow';
  }
  return 'ok';
}

/** Sampling period: a quarter of the shortest timeout, between 50 ms and 1 s. */
export function sampleIntervalMs(config: ClientConnectionsConfig): number {
  const shortest = Math.min(config.clientHeaderTimeoutMs, config.clientBodyTimeoutMs, config.clientSendTimeoutMs);
  return Math.max(50, Math.min(1000, Math.floor(shortest / 4)));
}

/**
 * One client connection as the sampler sees it: its current request and answer, and their
 * progress. One object per connection, reused by each request on it (a keep-alive connection
 * carries thousands): the request path sets a few fields instead of allocating a record, a
 * listener and a map entry per request (issue 18's profile: about 2% of the cached path's CPU).
 */
interface Connection {
  readonly socket: Socket;
  req: IncomingMessage;
  res: ServerResponse;
  /** null once the body is in (or there is none). */
  body: BodyProgress | null;
  /** The socket's bytes handed to the kernel at the last progress (it only grows). */
  sentBytes: number;
  lastSendProgressAt: number;
}

/** Where a socket keeps its Connection (a property of our own on the socket: no map lookup per request). */
const CONNECTION = Symbol('unified-gateway.client-connection');
type TrackedSocket = Socket & { [CONNECTION]?: Connection };

const hasBody = (req: IncomingMessage) =>
  req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');

export interface ClientTimeoutsOptions {
  readonly registry?: Registry;
  /** The clock (ms); tests replace it. */
  readonly now?: () => number;
}

/** The answer of the connection's current request while it is open (a finished one's connection is between requests). */
function currentResponse(socket: Socket): ServerResponse | undefined {
  const res = (socket as TrackedSocket)[CONNECTION]?.res;
  return res !== undefined && !res.closed ? res : undefined;
}

export class ClientTimeouts {
  readonly #config: ClientConnectionsConfig;
  readonly #now: () => number;
  readonly #connections = new Set<Connection>();
  readonly #timeouts: Counter<'phase'>;
  #timer: NodeJS.Timeout | undefined;
  #log: FastifyBaseLogger | undefined;

  constructor(config: ClientConnectionsConfig, options: ClientTimeoutsOptions = {}) {
    this.#config = config;
    this.#now = options.now ?? (() => performance.now());
    this.#timeouts = new Counter({
      name: 'gateway_client_timeouts_total',
      help: 'Client connections cut for slowness: headers, request (requestTimeoutMs), body (inactivity or rate) or send',
      labelNames: ['phase'],
      registers: options.registry ? [options.registry] : [],
    });
  }

  /** Options of Node's http.createServer (Fastify's `http` option). */
  httpOptions(): Pick<ServerOptions, 'headersTimeout' | 'requestTimeout' | 'connectionsCheckingInterval'> {
    return {
      headersTimeout: this.#config.clientHeaderTimeoutMs,
      requestTimeout: this.#config.requestTimeoutMs,
      // Node's default (30 s) would let a 60 s header timeout fire after up to 90 s.
      connectionsCheckingInterval: sampleIntervalMs(this.#config),
    };
  }

  /** Fastify's own server options (it sets these on the server after creating it). */
  fastifyOptions(): { keepAliveTimeout: number; requestTimeout: number } {
    return { keepAliveTimeout: this.#config.keepAliveTimeoutMs, requestTimeout: this.#config.requestTimeoutMs };
  }

  /** True when the connection's current request has begun its answer. */
  responseStarted(socket: Socket): boolean {
    const res = currentResponse(socket);
    return res !== undefined && res.headersSent;
  }

  /** Node cut a request (headersTimeout or requestTimeout): counted by the phase it was in. */
  nodeTimedOut(socket: Socket): void {
    const res = currentResponse(socket);
    this.#timeouts.inc({ phase: res !== undefined && !res.writableFinished ? 'request' : 'headers' });
  }

  attach(server: Server, log: FastifyBaseLogger): void {
    this.#log = log;
    server.on('request', (req: IncomingMessage, res: ServerResponse) => this.#track(req, res));
    server.on('listening', () => {
      this.#timer ??= setInterval(() => this.sweep(), sampleIntervalMs(this.#config));
      this.#timer.unref();
    });
    server.on('close', () => this.close());
  }

  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#connections.clear();
  }

  /** Connections being watched (tests and the e2e read it through metrics instead). */
  get watching(): number {
    return this.#connections.size;
  }

  #track(req: IncomingMessage, res: ServerResponse): void {
    const socket = req.socket as TrackedSocket;
    const now = this.#now();
    const body = hasBody(req) && !req.complete ? startBody(now, socket.bytesRead) : null;
    const known = socket[CONNECTION];
    if (known !== undefined) {
      known.req = req;
      known.res = res;
      known.body = body;
      return;
    }
    const connection: Connection = { socket, req, res, body, sentBytes: 0, lastSendProgressAt: now };
    socket[CONNECTION] = connection;
    this.#connections.add(connection);
    socket.once('close', () => this.#connections.delete(connection));
  }

  /** One sample of every connection; the timer calls it. */
  sweep(now = this.#now()): void {
    const rules: BodyRules = { timeoutMs: this.#config.clientBodyTimeoutMs, minBytesPerSecond: this.#config.clientBodyMinBytesPerSecond };
    for (const c of this.#connections) {
      if (c.socket.destroyed) {
        this.#connections.delete(c);
        continue;
      }
      if (c.body !== null) {
        // Also after the answer: Node drains a body still arriving to reuse the connection.
        if (c.req.complete) c.body = null;
        else {
          const held = c.req.readableLength >= c.req.readableHighWaterMark;
          const verdict = checkBody(c.body, c.socket.bytesRead, held, now, rules);
          if (verdict !== 'ok') {
            this.#cut(c, 'body', verdict);
            continue;
          }
        }
      }
      this.#checkSend(c, now);
    }
  }

  /**
   * Queued answer data (of the current answer, or of an earlier one a pipelining client has
   * not taken yet) that did not move for clientSendTimeoutMs: the client is not reading. A
   * connection with nothing queued (idle, or a stream with nothing to send) is never cut.
   */
  #checkSend(c: Connection, now: number): void {
    const queued = c.socket.writableLength;
    // Bytes the socket has handed to the kernel: written minus still queued.
    const sent = (c.socket.bytesWritten ?? 0) - queued;
    if (queued === 0 || sent > c.sentBytes) {
      c.sentBytes = Math.max(c.sentBytes, sent);
      c.lastSendProgressAt = now;
      return;
    }
    if (now - c.lastSendProgressAt > this.#config.clientSendTimeoutMs) this.#cut(c, 'send', 'idle');
  }

  #cut(w: Connection, phase: 'body' | 'send', verdict: BodyVerdict): void {
    this.#connections.delete(w);
    this.#timeouts.inc({ phase });
    this.#log?.debug({ phase, verdict, remoteAddress: w.socket.remoteAddress }, 'slow client cut');
    if (phase === 'send') w.socket.destroy();
    else answerAndClose(w.socket, 'GW_REQUEST_TIMEOUT', w.res.headersSent);
  }
}
