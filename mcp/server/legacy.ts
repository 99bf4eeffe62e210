import { randomBytes } from 'node:crypto';
import { isInitializeRequest, WebStandardStreamableHTTPServerTransport, type AuthInfo, type JSONRPCMessage, type McpServer, type Transport } from '@modelcontextprotocol/server';
import { z } from 'zod';
import type { Principal } from '../../src/auth/principal.js';
import type { Delivered, EventChannel } from '../../src/events/bus.js';
import type { GatewayEvent } from '../../src/events/gateway-events.js';
import { GatewayError } from '../../src/errors.js';
import { SUBSCRIBABLE_RESOURCES, type McpRequestScope, type SessionSubscriptions } from './gateway-server.js';
import { changedResource, type ControlEvent } from './notifications.js';
import type { Exchange } from './observe.js';
import type { SessionRecord, SessionStore } from './sessions.js';
import type { StreamOwner, StreamSlot, StreamSlots } from './stream-slots.js';

/*
 * The 2025 protocol revisions (up to 2025-11-25) on /mcp: `initialize` opens a session, later
 * requests carry `Mcp-Session-Id` and the negotiated `MCP-Protocol-Version`, a GET opens the
 * session's stream of server notifications, DELETE ends the session. Sessions are records in
 * the state store (./sessions.ts) and nothing of them is held by a replica between requests:
 *
 * - every POST is served by a fresh server instance for that request's principal over the
 *   SDK's Streamable HTTP transport in its stateless form; the gateway checks the session,
 *   its owner and its protocol version first;
 * - the GET stream is written by the gateway from the event bus: resource updates of the
 *   session's subscriptions, from whichever replica announced the change. Each event has an id
 *   and the stream tells the client how soon to reconnect (`retry`); a client reconnecting
 *   with `Last-Event-ID`, to any replica, gets what it missed (or, when that replica cannot
 *   know, an update for each subscribed resource that may have changed). One stream per
 *   session across replicas: a newer one closes the older;
 * - a subscription, a DELETE or a `notifications/cancelled` made through one replica reaches
 *   the replica holding the stream or the cancelled request through the bus (`mcp` channel).
 */

/** Protocol versions whose clients take an SSE event with empty data (the priming event). */
const PRIMING_VERSIONS: ReadonlySet<string> = new Set(['2025-11-25']);

/** The version an initialize answer negotiated. */
const initializeAnswer = z.object({ result: z.object({ protocolVersion: z.string().min(1).max(32) }) });

/** What an initialize request declares the client answers (its capabilities; the rest is not kept). */
const declaredAnswers = z.object({
  params: z.object({ capabilities: z.object({ sampling: z.unknown().optional(), elicitation: z.unknown().optional(), roots: z.unknown().optional() }).loose() }).loose(),
});

/** A client's POSTed answer to a request the gateway sent it (a relayed upstream request). */
const clientAnswer = z.union([
  z.object({ jsonrpc: z.literal('2.0'), id: z.string().max(64), result: z.record(z.string(), z.unknown()) }),
  z.object({ jsonrpc: z.literal('2.0'), id: z.string().max(64), error: z.object({ code: z.number().int(), message: z.string().max(2000) }).loose() }),
]);

/** The capability a relayed request needs. */
const ANSWER_KIND = { 'sampling/createMessage': 'sampling', 'elicitation/create': 'elicitation', 'roots/list': 'roots' } as const;

export interface LegacyOptions {
  readonly sessions: SessionStore;
  readonly control: EventChannel<ControlEvent>;
  readonly events: EventChannel<GatewayEvent>;
  readonly slots: StreamSlots;
  /** A fresh server instance for one request. */
  readonly createServer: (scope: McpRequestScope) => McpServer;
  /** SSE `retry` suggested on GET streams. */
  readonly retryMs: number;
  /** SSE comment frames on quiet streams. */
  readonly keepAliveMs: number;
  readonly log: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
  /**
   * List changes of this replica's federated surface (mcp/federation): each open GET stream
   * gets the notification (`notifications/tools/list_changed`...). They carry no event id:
   * a client that reconnects lists again rather than replaying them.
   */
  readonly listChanged?: (listener: (method: string) => void) => () => void;
}

/** One request to the legacy leg, as ./http.ts prepared it. */
export interface LegacyRequest {
  /** The web-standard request (headers; the body travels as `body`). */
  readonly web: Request;
  /** The one JSON-RPC message of a POST. */
  readonly body?: unknown;
  readonly principal: Principal | null;
  readonly authInfo?: AuthInfo;
  /** The POST's exchange (audit, metrics). */
  readonly exchange?: Exchange;
  /** Who would hold a GET stream's slot. */
  readonly owner: StreamOwner;
  /** When the request's credential expires (ms since the epoch): a GET stream ends then. */
  readonly expiresAt?: number;
}

type Message = { readonly id?: unknown; readonly method?: unknown; readonly params?: { readonly requestId?: unknown; readonly uri?: unknown } };

const MAX_TIMER_MS = 2 ** 31 - 1;

export class LegacySessions {
  readonly #o: LegacyOptions;
  /** Requests being served here, by session and request id: a cancellation reaches them. */
  readonly #inflight = new Map<string, (reason: string) => void>();
  /** The GET stream of each session held by this replica. */
  readonly #streams = new Map<string, SessionStream>();
  /**
   * Requests sent to clients during a federated call (sampling, elicitation, roots relayed from
   * an upstream), by session and request id, until the client POSTs its answer. The answer must
   * reach this replica (the one holding the call): sticky sessions, as for the call itself.
   */
  readonly #asks = new Map<string, { resolve: (value: unknown) => void; reject: (err: Error) => void }>();
  readonly #unsubscribe: Array<() => void>;

  constructor(options: LegacyOptions) {
    this.#o = options;
    this.#unsubscribe = [
      options.control.subscribe((delivered) => this.#onControl(delivered)),
      options.events.subscribe((delivered) => {
        for (const stream of this.#streams.values()) stream.deliver(delivered);
      }),
      options.listChanged?.((method) => {
        for (const stream of this.#streams.values()) stream.announce(method);
      }) ?? (() => {}),
    ];
  }

  /** GET streams open on this replica. */
  get streams(): number {
    return this.#streams.size;
  }

  async post(req: LegacyRequest): Promise<Response> {
    const message = (req.body ?? {}) as Message;
    if (isInitializeRequest(req.body)) {
      if (req.web.headers.get('mcp-session-id') === null) return this.#initialize(req);
      // A new session starts without an id (2025-11-25, Session Management): an unknown id is
      // answered as such, so a client holding a stale one drops it; a live one is not reset.
      await this.#session(req);
      throw new GatewayError('GW_REQUEST_INVALID', 'This session is already initialized; send initialize without Mcp-Session-Id to start another one');
    }
    const { id: sessionId, record } = await this.#session(req);
    if (message.method !== undefined && message.id === undefined) {
      // A notification: only a cancellation means something to the gateway.
      if (message.method === 'notifications/cancelled') {
        const requestId = message.params?.requestId;
        if (typeof requestId === 'string' || typeof requestId === 'number') await this.#cancel(sessionId, requestId);
      }
      return new Response(null, { status: 202 });
    }
    // A response to a request the gateway sent (a relayed upstream request) goes to the call
    // waiting for it; anything else is accepted and dropped.
    if (message.method === undefined) {
      const answer = clientAnswer.safeParse(req.body);
      const waiting = answer.success ? this.#asks.get(`${sessionId}\u0000${answer.data.id}`) : undefined;
      if (answer.success && waiting !== undefined) {
        this.#asks.delete(`${sessionId}\u0000${answer.data.id}`);
        if ('result' in answer.data) waiting.resolve(answer.data.result);
        else waiting.reject(Object.assign(new Error(answer.data.error.message), { code: answer.data.error.code }));
      }
      return new Response(null, { status: 202 });
    }
    return this.#serve(req, sessionId, record, message);
  }

  async get(req: LegacyRequest): Promise<Response> {
    const accept = req.web.headers.get('accept') ?? '';
    if (!accept.includes('text/event-stream')) throw new GatewayError('GW_MCP_NOT_ACCEPTABLE');
    const { id: sessionId, record } = await this.#session(req);
    // Ours first (no bus round trip), then everyone else's: one stream per session.
    this.#streams.get(sessionId)?.close();
    const slot = this.#o.slots.acquire(req.owner);
    const stream = new SessionStream(this, sessionId, record, req, slot, this.#o);
    this.#streams.set(sessionId, stream);
    void this.#o.control.publish({ type: 'stream.opened', session: sessionId, stream: stream.id }).catch(() => {});
    return stream.open(req.web.headers.get('last-event-id') ?? undefined);
  }

  async delete(req: LegacyRequest): Promise<Response> {
    const { id: sessionId } = await this.#session(req);
    await this.#o.sessions.end(sessionId);
    this.#streams.get(sessionId)?.close();
    await this.#o.control.publish({ type: 'session.ended', session: sessionId }).catch(() => {});
    return new Response(null, { status: 200 });
  }

  /** Shutdown: end every stream held here (clients reconnect to another replica) and every request. */
  close(): void {
    for (const unsubscribe of this.#unsubscribe.splice(0)) unsubscribe();
    // A notice first (an SSE comment, which clients ignore but a person or a log can read), then
    // the end of the stream: the client reconnects after `retry` and resumes with Last-Event-ID.
    for (const stream of [...this.#streams.values()]) stream.close(SHUTDOWN_NOTICE);
    for (const cancel of [...this.#inflight.values()]) cancel('the gateway is shutting down');
  }

  /** Called by a stream when it closes. */
  forget(sessionId: string, stream: SessionStream): void {
    if (this.#streams.get(sessionId) === stream) this.#streams.delete(sessionId);
  }

  /** The session of a request: it exists, is the principal's own, and the protocol version matches. */
  async #session(req: LegacyRequest): Promise<{ id: string; record: SessionRecord }> {
    const id = req.web.headers.get('mcp-session-id');
    if (id === null) throw new GatewayError('GW_MCP_SESSION_REQUIRED');
    const record = await this.#o.sessions.find(id, req.principal?.subject ?? null);
    // Someone else's session id is answered as if it did not exist.
    if (record === undefined) throw new GatewayError('GW_MCP_SESSION_NOT_FOUND');
    const version = req.web.headers.get('mcp-protocol-version');
    if (version !== null && version !== record.protocolVersion) {
      throw new GatewayError('GW_MCP_PROTOCOL_VERSION_MISMATCH', `MCP-Protocol-Version ${version.slice(0, 40)} does not match this session's ${record.protocolVersion}`);
    }
    this.#o.sessions.touch(id, record);
    return { id, record };
  }

  async #initialize(req: LegacyRequest): Promise<Response> {
    const subject = req.principal?.subject ?? null;
    // Always a JSON answer: its protocol version is read before the session id goes out.
    const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    const server = this.#o.createServer({ principal: req.principal, era: 'legacy', method: 'initialize', ...this.#observed(req) });
    await server.connect(transport);
    try {
      const response = await transport.handleRequest(req.web, { parsedBody: req.body, ...(req.authInfo ? { authInfo: req.authInfo } : {}) });
      if (response.status !== 200) return response;
      const text = await response.text();
      const answer = initializeAnswer.safeParse(JSON.parse(text));
      const headers = new Headers(response.headers);
      if (answer.success) {
        const declared = declaredAnswers.safeParse(req.body);
        const caps = declared.success ? declared.data.params.capabilities : {};
        const answers = { sampling: caps.sampling != null, elicitation: caps.elicitation != null, roots: caps.roots != null };
        headers.set('mcp-session-id', await this.#o.sessions.create(subject, answer.data.result.protocolVersion, answers));
        if (subject === null) this.#o.log.warn({}, 'mcp: a session opened without authentication (MCP_REQUIRE_AUTH=false)');
      }
      return new Response(text, { status: response.status, headers });
    } finally {
      void transport.close().catch(() => {});
      void server.close().catch(() => {});
    }
  }

  /** One request of a session, on a fresh instance; cancellable until its answer is out. */
  async #serve(req: LegacyRequest, sessionId: string, record: SessionRecord, message: Message): Promise<Response> {
    const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, keepAliveMs: this.#o.keepAliveMs });
    const method = typeof message.method === 'string' ? message.method : '';
    const requestId = message.id as string | number;
    /** A request to the client on this POST's response stream; its answer comes back as a POST (post() above). */
    const askClient = (ask: keyof typeof ANSWER_KIND, params: unknown, signal: AbortSignal): Promise<unknown> => {
      const kind = ANSWER_KIND[ask];
      if (record.answers?.[kind] !== true) {
        return Promise.reject(Object.assign(new Error(`the agent's client did not declare the ${kind} capability (${ask})`), { code: -32601 }));
      }
      const id = `ugw-${randomBytes(12).toString('base64url')}`;
      const key = `${sessionId}\u0000${id}`;
      return new Promise((resolve, reject) => {
        this.#asks.set(key, { resolve, reject });
        const drop = (why: string) => {
          if (this.#asks.delete(key)) reject(new Error(why));
        };
        signal.addEventListener('abort', () => drop('cancelled by the upstream'), { once: true });
        req.web.signal.addEventListener('abort', () => drop('the agent closed the request'), { once: true });
        const body = ask === 'roots/list' ? { jsonrpc: '2.0' as const, id, method: ask } : { jsonrpc: '2.0' as const, id, method: ask, params: params as Record<string, unknown> };
        transport.send(body as JSONRPCMessage, { relatedRequestId: requestId }).catch((err: unknown) => drop(`could not ask the agent: ${(err as Error).message}`));
      });
    };
    const server = this.#o.createServer({
      principal: req.principal,
      era: 'legacy',
      method,
      ...(req.exchange?.tool ? { toolName: req.exchange.tool } : {}),
      client: req.owner.address,
      askClient,
      session: this.#subscriptions(sessionId, record),
      ...this.#observed(req, (t) => answerAsRevision(t, message)),
    });
    await server.connect(transport);
    const key = inflightKey(sessionId, message.id);
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      if (key !== undefined) this.#inflight.delete(key);
      void transport.close().catch(() => {});
      void server.close().catch(() => {});
    };
    if (key !== undefined) {
      this.#inflight.set(key, (reason) => {
        // The protocol layer aborts the handler and sends no answer; ending the transport ends
        // the POST's response stream, so the client's request is not left open.
        transport.onmessage?.({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: message.id as string | number, reason } });
        finish();
      });
    }
    req.web.signal.addEventListener('abort', finish, { once: true });
    try {
      const response = await transport.handleRequest(req.web, { parsedBody: req.body, ...(req.authInfo ? { authInfo: req.authInfo } : {}) });
      return whenDone(response, finish);
    } catch (err) {
      finish();
      throw err;
    }
  }

  /** The exchange watches the instance's transport; `before` wraps it first. */
  #observed(req: LegacyRequest, before?: (transport: Transport) => void): Pick<McpRequestScope, 'report' | 'onConnect'> {
    return {
      ...(req.exchange ? { report: req.exchange } : {}),
      onConnect: (transport) => {
        before?.(transport);
        req.exchange?.observe(transport);
      },
    };
  }

  /** The session's subscriptions as one request's instance sees them: written to the store, announced to the stream. */
  #subscriptions(sessionId: string, record: SessionRecord): SessionSubscriptions {
    let current = record;
    const store = this.#o.sessions;
    const set = async (uris: readonly string[]) => {
      current = await store.setSubscriptions(sessionId, current, uris);
      await this.#o.control.publish({ type: 'session.subscriptions', session: sessionId, uris: [...uris] });
    };
    return {
      get subscriptions() {
        return current.subscriptions;
      },
      subscribe: async (uri) => {
        if (!current.subscriptions.includes(uri)) await set([...current.subscriptions, uri]);
      },
      unsubscribe: async (uri) => {
        if (current.subscriptions.includes(uri)) await set(current.subscriptions.filter((u) => u !== uri));
      },
    };
  }

  /** Cancel a request of the session: here when it runs here, else wherever it runs (the bus). */
  async #cancel(sessionId: string, requestId: string | number): Promise<void> {
    const key = inflightKey(sessionId, requestId)!;
    const local = this.#inflight.get(key);
    if (local !== undefined) local('cancelled by the client');
    else await this.#o.control.publish({ type: 'request.cancelled', session: sessionId, requestId }).catch(() => {});
  }

  #onControl({ event }: Delivered<ControlEvent>): void {
    switch (event.type) {
      case 'session.ended':
        this.#streams.get(event.session)?.close();
        return;
      case 'session.subscriptions':
        this.#streams.get(event.session)?.setSubscriptions(event.uris);
        return;
      case 'stream.opened': {
        const stream = this.#streams.get(event.session);
        if (stream !== undefined && stream.id !== event.stream) stream.close();
        return;
      }
      case 'request.cancelled':
        this.#inflight.get(inflightKey(event.session, event.requestId)!)?.('cancelled by the client');
        return;
    }
  }
}

function inflightKey(sessionId: string, id: unknown): string | undefined {
  return typeof id === 'string' || typeof id === 'number' ? `${sessionId}\u0000${typeof id}\u0000${id}` : undefined;
}

/**
 * Answers as the 2025 revisions specify where the SDK answers as 2026-07-28 does: a read of a
 * resource that does not exist is -32002 "Resource not found" there (2025-11-25
 * server/resources, Error Handling), -32602 since SEP-2164.
 */
function answerAsRevision(transport: Transport, request: Message): void {
  if (request.method !== 'resources/read') return;
  const send = transport.send.bind(transport);
  transport.send = (message: JSONRPCMessage, options) => {
    const m = message as { id?: unknown; error?: { code?: unknown; data?: { uri?: unknown; reason?: unknown } } };
    if (m.id === request.id && m.error?.code === -32602 && m.error.data?.uri === request.params?.uri && m.error.data?.reason === undefined) {
      return send({ jsonrpc: '2.0', id: request.id as string | number, error: { code: -32002, message: 'Resource not found', data: { uri: request.params?.uri } } }, options);
    }
    return send(message, options);
  };
}

/** `response`, calling `done` once its body has been read to the end, or failed, or was abandoned. */
function whenDone(response: Response, done: () => void): Response {
  if (response.body === null) {
    done();
    return response;
  }
  const reader = response.body.getReader();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done: end, value } = await reader.read();
        if (end) {
          done();
          controller.close();
        } else controller.enqueue(value);
      } catch (err) {
        done();
        controller.error(err);
      }
    },
    cancel(reason) {
      done();
      return reader.cancel(reason).catch(() => {});
    },
  });
  return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
}

const encoder = new TextEncoder();

/** The GET stream of one 2025 session on this replica. */
const SHUTDOWN_NOTICE = 'gateway shutting down: reconnect with Last-Event-ID';

class SessionStream {
  readonly id = randomBytes(9).toString('base64url');
  #subscriptions: Set<string>;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #closed = false;
  readonly #timers: NodeJS.Timeout[] = [];

  constructor(
    private readonly owner: LegacySessions,
    private readonly sessionId: string,
    private readonly record: SessionRecord,
    private readonly req: LegacyRequest,
    private readonly slot: StreamSlot,
    private readonly o: LegacyOptions,
  ) {
    this.#subscriptions = new Set(record.subscriptions);
    slot.onReclaim(() => this.close());
  }

  /** The SSE response: priming event, what the client missed, then live updates. */
  open(lastEventId: string | undefined): Response {
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
      },
      cancel: () => this.close(),
    });
    const resumeFrom = this.o.events.lastId ?? '0';
    // The priming event gives the client an id to resume from, and the reconnection delay.
    if (PRIMING_VERSIONS.has(this.record.protocolVersion)) this.#write(`id: ${resumeFrom}\nretry: ${this.o.retryMs}\ndata: \n\n`);
    else this.#write(`retry: ${this.o.retryMs}\n\n`);
    if (lastEventId !== undefined) this.#replay(lastEventId);
    const every = (ms: number, fn: () => void) => {
      const timer = setInterval(fn, ms);
      timer.unref();
      this.#timers.push(timer);
    };
    if (this.o.keepAliveMs > 0) every(this.o.keepAliveMs, () => this.#write(': keepalive\n\n'));
    // An open stream keeps its session alive (read again: the subscriptions may have changed elsewhere).
    every(Math.max(1000, this.o.sessions.idleMs / 4), () => void this.#renew());
    const expiresAt = this.req.expiresAt;
    if (expiresAt !== undefined && expiresAt - Date.now() < MAX_TIMER_MS) {
      const timer = setTimeout(() => this.close(), Math.max(0, expiresAt - Date.now()));
      timer.unref();
      this.#timers.push(timer);
    }
    return new Response(body, {
      status: 200,
      headers: {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
        'mcp-session-id': this.sessionId,
      },
    });
  }

  setSubscriptions(uris: readonly string[]): void {
    this.#subscriptions = new Set(uris);
  }

  /** A gateway event: the update of a subscribed resource it changed. */
  deliver(delivered: Delivered<GatewayEvent>): void {
    const uri = changedResource(delivered.event);
    if (uri !== undefined && this.#subscriptions.has(uri)) this.#notify(delivered.id, uri);
  }

  /** End the stream, after `notice` (an SSE comment line) when one is given. */
  close(notice?: string): void {
    if (this.#closed) return;
    if (notice !== undefined) this.#write(`: ${notice}\n\n`);
    this.#closed = true;
    for (const timer of this.#timers) clearInterval(timer);
    this.slot.release();
    this.owner.forget(this.sessionId, this);
    try {
      this.#controller.close();
    } catch {
      // already closed by the client
    }
  }

  /** What the client missed since `lastEventId`; when this replica cannot tell, every subscribed resource that may have changed. */
  #replay(lastEventId: string): void {
    const missed = this.o.events.since(lastEventId);
    if (missed !== undefined) {
      for (const delivered of missed) this.deliver(delivered);
      return;
    }
    const id = this.o.events.lastId ?? '0';
    for (const uri of SUBSCRIBABLE_RESOURCES) if (this.#subscriptions.has(uri)) this.#notify(id, uri);
  }

  /** A notification without params and without event id (list changes). */
  announce(method: string): void {
    this.#write(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', method })}\n\n`);
  }

  #notify(eventId: string, uri: string): void {
    this.#write(`id: ${eventId}\nevent: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/resources/updated', params: { uri } })}\n\n`);
  }

  async #renew(): Promise<void> {
    const record = await this.o.sessions.find(this.sessionId, this.record.subject).catch(() => undefined);
    if (record === undefined) this.close();
    else this.o.sessions.touch(this.sessionId, record);
  }

  #write(frame: string): void {
    if (this.#closed) return;
    try {
      this.#controller.enqueue(encoder.encode(frame));
    } catch {
      this.close();
    }
  }
}
