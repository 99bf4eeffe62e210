import { randomUUID } from 'node:crypto';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest, type RequestId } from '@modelcontextprotocol/sdk/types.js';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Keyv } from 'keyv';
import type { RouteAuthPolicy } from '../../src/config/index.js';
import { GatewayError } from '../../src/errors.js';
import type { GatewayMetrics } from '../../src/metrics/registry.js';
import '../../src/server/route-config.js';
import { hiddenTools, type McpAuditEntry } from './gateway-server.js';
import { observeTransport } from './observe.js';

/** What a session's record in the state store holds, so any replica can serve it. */
export interface McpSessionRecord {
  /** Principal that opened it (null with MCP auth off): only they may use it. */
  readonly subject: string | null;
  readonly subscriptions: readonly string[];
  readonly createdAt: string;
}

/** What a new or restored session's MCP server is made from. */
export interface McpSessionContext {
  readonly subscriptions: ReadonlySet<string>;
  readonly onSubscriptionsChange: (uris: readonly string[]) => void;
  /** Ids of tool calls the server refused (scope/MFA), read by the session's audit. */
  readonly refused: Set<RequestId>;
}

export interface McpHttpOptions {
  /** A fresh MCP server per session (an McpServer serves one transport), for the session's principal. */
  readonly createServer: (request: FastifyRequest, session: McpSessionContext) => McpServer;
  /** Open sessions on this replica at most; past it new sessions get 503 (memory stays bounded). */
  readonly maxSessions: number;
  /** Open sessions of one authenticated principal on this replica at most (one key cannot take every slot). */
  readonly maxSessionsPerPrincipal: number;
  /** One line per tool call (the gateway's log). */
  readonly audit: (entry: McpAuditEntry) => void;
  /** Sessions idle this long are closed, here and in the store. */
  readonly sessionIdleMs: number;
  readonly authPolicy: RouteAuthPolicy;
  /** Whether a browser Origin may call /mcp (DNS-rebinding protection); requests without Origin pass. */
  readonly originAllowed: (origin: string) => boolean;
  /** Session records shared by the replicas (the state store's Keyv). */
  readonly sessionStore: Keyv<McpSessionRecord>;
  readonly metrics: Pick<GatewayMetrics, 'mcpRequests'>;
}

interface LocalSession {
  readonly transport: StreamableHTTPServerTransport;
  readonly subject: string | null;
  readonly createdAt: string;
  subscriptions: readonly string[];
  lastSeen: number;
  /** Requests of this session still open (an SSE stream can stay open for hours): never idle while > 0. */
  open: number;
  /** When the store record's TTL was last renewed. */
  touched: number;
}

/**
 * Make a transport serve an existing session that another replica initialised. The SDK
 * keeps "initialised" and the session id private and offers no way to adopt a session, so
 * both are set here; test/e2e/mcp-replicas.test.ts fails if an SDK update moves them.
 */
function adoptSession(transport: StreamableHTTPServerTransport, sessionId: string): void {
  const inner = (transport as unknown as { _webStandardTransport?: { sessionId?: string; _initialized?: boolean } })._webStandardTransport;
  if (inner === undefined || !('_initialized' in inner)) throw new Error('MCP SDK transport layout changed: cannot adopt a session');
  inner.sessionId = sessionId;
  inner._initialized = true;
}

/**
 * MCP Streamable HTTP at /mcp on the gateway port: POST carries JSON-RPC messages, GET opens
 * the server-to-client SSE stream, DELETE ends a session (`Mcp-Session-Id`). The SDK's
 * transport does the protocol (including the MCP-Protocol-Version check); this plugin checks
 * Origin, keeps the sessions (records in the state store, so another replica can pick a
 * session up) and puts the gateway's auth stage in front (the route's auth policy).
 */
export async function mcpHttpPlugin(app: FastifyInstance, opts: McpHttpOptions): Promise<void> {
  const sessions = new Map<string, LocalSession>();
  const ttlMs = opts.sessionIdleMs;

  const saveRecord = (id: string, record: McpSessionRecord) =>
    opts.sessionStore.set(id, record, ttlMs).catch((err: unknown) => app.log.warn({ err: (err as Error).message }, 'mcp: storing the session failed'));

  const adopting = new Map<string, Promise<LocalSession>>();
  /** Sessions being set up (counted against the limits before their first await). */
  let opening = 0;
  const openingBy = new Map<string, number>();
  const sessionsOf = (subject: string) => {
    let n = openingBy.get(subject) ?? 0;
    for (const session of sessions.values()) if (session.subject === subject) n += 1;
    return n;
  };
  const checkLimits = (subject: string | null) => {
    if (sessions.size + opening >= opts.maxSessions) throw new GatewayError('GW_MCP_TOO_MANY_SESSIONS', undefined, { headers: { 'retry-after': '30' } });
    if (subject !== null && sessionsOf(subject) >= opts.maxSessionsPerPrincipal) {
      throw new GatewayError('GW_MCP_TOO_MANY_SESSIONS', `At most ${opts.maxSessionsPerPrincipal} open MCP sessions per principal; end one (DELETE /mcp) or wait for it to expire`, {
        headers: { 'retry-after': '30' },
      });
    }
  };

  const open = async (request: FastifyRequest, sessionId: string | undefined, record: McpSessionRecord | undefined): Promise<LocalSession> => {
    const subject = request.principal?.subject ?? null;
    checkLimits(subject);
    opening += 1;
    if (subject !== null) openingBy.set(subject, (openingBy.get(subject) ?? 0) + 1);
    try {
      return await create(request, subject, sessionId, record);
    } finally {
      opening -= 1;
      if (subject !== null) {
        const left = (openingBy.get(subject) ?? 1) - 1;
        if (left > 0) openingBy.set(subject, left);
        else openingBy.delete(subject);
      }
    }
  };

  const create = async (request: FastifyRequest, subject: string | null, sessionId: string | undefined, record: McpSessionRecord | undefined): Promise<LocalSession> => {
    const createdAt = record?.createdAt ?? new Date().toISOString();
    const refused = new Set<RequestId>();
    const session: LocalSession = {
      transport: new StreamableHTTPServerTransport({
        sessionIdGenerator: () => sessionId ?? randomUUID(),
        onsessioninitialized: (id) => {
          sessions.set(id, session);
          void saveRecord(id, { subject, subscriptions: [], createdAt });
        },
        onsessionclosed: (id) => {
          sessions.delete(id);
          void opts.sessionStore.delete(id).catch(() => {});
        },
      }),
      subject,
      createdAt,
      subscriptions: record?.subscriptions ?? [],
      lastSeen: Date.now(),
      open: 0,
      touched: Date.now(),
    };
    const { transport } = session;
    transport.onclose = () => {
      if (transport.sessionId !== undefined) sessions.delete(transport.sessionId);
    };
    const server = opts.createServer(request, {
      subscriptions: new Set(session.subscriptions),
      refused,
      onSubscriptionsChange: (uris) => {
        session.subscriptions = uris;
        if (transport.sessionId !== undefined) void saveRecord(transport.sessionId, { subject, subscriptions: uris, createdAt });
      },
    });
    await server.connect(transport);
    observeTransport(transport, { metrics: opts.metrics, principal: subject ?? 'anonymous', audit: opts.audit, refused, hidden: hiddenTools(request.principal) });
    if (sessionId !== undefined) {
      adoptSession(transport, sessionId);
      sessions.set(sessionId, session);
    }
    return session;
  };

  const handle = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const origin = request.headers.origin;
    if (origin !== undefined && !opts.originAllowed(origin)) throw new GatewayError('GW_MCP_ORIGIN_FORBIDDEN', `Origin ${origin.slice(0, 200)} may not call /mcp`);
    const header = request.headers['mcp-session-id'];
    const sessionId = typeof header === 'string' ? header : undefined;
    const subject = request.principal?.subject ?? null;
    let session = sessionId !== undefined ? sessions.get(sessionId) : undefined;
    if (session === undefined && sessionId !== undefined) {
      // Opened on another replica (or before a restart): adopt it when its record is there.
      const record = await opts.sessionStore.get(sessionId).catch(() => undefined);
      if (record === undefined || record.subject !== subject) throw new GatewayError('GW_MCP_SESSION_NOT_FOUND');
      // Concurrent first requests of one adopted session share one adoption.
      let adoption = adopting.get(sessionId);
      if (adoption === undefined) {
        adoption = open(request, sessionId, record).finally(() => adopting.delete(sessionId));
        adopting.set(sessionId, adoption);
      }
      session = await adoption;
    } else if (session === undefined) {
      if (request.method !== 'POST' || !isInitializeRequest(request.body)) throw new GatewayError('GW_MCP_SESSION_REQUIRED');
      if (!opts.authPolicy.required) request.log.warn('mcp: a session opened without authentication (MCP_REQUIRE_AUTH=false)');
      session = await open(request, undefined, undefined);
    } else if (session.subject !== subject) {
      // Someone else's session id: answered as if it did not exist.
      throw new GatewayError('GW_MCP_SESSION_NOT_FOUND');
    }
    const active = session;
    active.lastSeen = Date.now();
    if (sessionId !== undefined) renew(sessionId, active);
    active.open += 1;
    reply.raw.once('close', () => {
      active.open -= 1;
      active.lastSeen = Date.now();
    });
    // The transport writes the response itself (JSON or an SSE stream).
    reply.hijack();
    await active.transport.handleRequest(request.raw, reply.raw, request.body);
  };

  /** Renew the record's TTL now and then (written again even if it expired, so other replicas keep finding it). */
  const renew = (id: string, session: LocalSession) => {
    const now = Date.now();
    if (now - session.touched <= ttlMs / 4) return;
    session.touched = now;
    void saveRecord(id, { subject: session.subject, subscriptions: session.subscriptions, createdAt: session.createdAt });
  };

  app.route({ method: ['GET', 'POST', 'DELETE'], url: '/mcp', config: { authPolicy: opts.authPolicy }, handler: handle });

  // Idle sessions (no request for sessionIdleSeconds and no stream open) are closed, here and
  // in the store, so abandoned clients do not hold the session slots. A client listening on its
  // SSE stream is not idle: its record is kept alive.
  const sweep = setInterval(
    () => {
      const cutoff = Date.now() - ttlMs;
      for (const [id, session] of sessions) {
        if (session.open > 0) {
          renew(id, session);
          continue;
        }
        if (session.lastSeen >= cutoff) continue;
        sessions.delete(id);
        void session.transport.close().catch(() => {});
        void opts.sessionStore.delete(id).catch(() => {});
      }
    },
    Math.min(60_000, ttlMs),
  );
  sweep.unref();

  // preClose, not onClose: an open SSE stream is an in-flight request, and onClose hooks only
  // run once the server has drained every request, so shutdown would wait for the clients.
  app.addHook('preClose', async () => {
    clearInterval(sweep);
    await Promise.allSettled([...sessions.values()].map((s) => s.transport.close()));
    sessions.clear();
  });
}
