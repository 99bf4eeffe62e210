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

interface Watch {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly socket: Socket;
  /** null once the body is in (or there is none). */
  body: BodyProgress | null;
  sentBytes: number;
  lastSendProgressAt: number;
}

const hasBody = (req: IncomingMessage) =>
  req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');

export interface ClientTimeoutsOptions {
  readonly registry?: Registry;
  /** The clock (ms); tests replace it. */
  readonly now?: () => number;
}

export class ClientTimeouts {
  readonly #config: ClientConnectionsConfig;
  readonly #now: () => number;
  readonly #watches = new Set<Watch>();
  /** The response of each connection's current request (to know whether an answer has begun). */
  readonly #current = new WeakMap<Socket, ServerResponse>();
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
    return this.#current.get(socket)?.headersSent ?? false;
  }

  /** Node cut a request (headersTimeout or requestTimeout): counted by the phase it was in. */
  nodeTimedOut(socket: Socket): void {
    const res = this.#current.get(socket);
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
    this.#watches.clear();
  }

  /** Requests being watched (tests and the e2e read it through metrics instead). */
  get watching(): number {
    return this.#watches.size;
  }

  #track(req: IncomingMessage, res: ServerResponse): void {
    const socket = req.socket;
    this.#current.set(socket, res);
    const now = this.#now();
    const watch: Watch = {
      req,
      res,
      socket,
      body: hasBody(req) && !req.complete ? startBody(now, socket.bytesRead) : null,
      sentBytes: 0,
      lastSendProgressAt: now,
    };
    this.#watches.add(watch);
    res.once('close', () => {
      if (this.#current.get(socket) === res) this.#current.delete(socket);
      // A body still arriving after the answer (Node drains it to reuse the connection) stays watched.
      if (watch.body === null || req.complete) this.#watches.delete(watch);
    });
  }

  /** One sample of every watched request; the timer calls it. */
  sweep(now = this.#now()): void {
    const rules: BodyRules = { timeoutMs: this.#config.clientBodyTimeoutMs, minBytesPerSecond: this.#config.clientBodyMinBytesPerSecond };
    for (const w of this.#watches) {
      if (w.socket.destroyed) {
        this.#watches.delete(w);
        continue;
      }
      if (w.body !== null) {
        if (w.req.complete) w.body = null;
        else {
          const held = w.req.readableLength >= w.req.readableHighWaterMark;
          const verdict = checkBody(w.body, w.socket.bytesRead, held, now, rules);
          if (verdict !== 'ok') {
            this.#cut(w, 'body', verdict);
            continue;
          }
        }
      }
      if (w.res.writableFinished || w.res.destroyed) {
        if (w.body === null) this.#watches.delete(w);
        continue;
      }
      if (!w.res.headersSent) continue;
      this.#checkSend(w, now);
    }
  }

  #checkSend(w: Watch, now: number): void {
    const queued = w.socket.writableLength;
    // Bytes the socket has handed to the kernel: written minus still queued.
    const sent = (w.socket.bytesWritten ?? 0) - queued;
    if (queued === 0 || sent > w.sentBytes) {
      w.sentBytes = Math.max(w.sentBytes, sent);
      w.lastSendProgressAt = now;
      return;
    }
    if (now - w.lastSendProgressAt > this.#config.clientSendTimeoutMs) this.#cut(w, 'send', 'idle');
  }

  #cut(w: Watch, phase: 'body' | 'send', verdict: BodyVerdict): void {
    this.#watches.delete(w);
    this.#timeouts.inc({ phase });
    this.#log?.debug({ phase, verdict, remoteAddress: w.socket.remoteAddress }, 'slow client cut');
    if (phase === 'send') w.socket.destroy();
    else answerAndClose(w.socket, 'GW_REQUEST_TIMEOUT', w.res.headersSent);
  }
}
