import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest, type RequestId } from '@modelcontextprotocol/sdk/types.js';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { decodeJwt } from 'jose';
import type { Keyv } from 'keyv';
import { presentedCredential } from '../../src/auth/credentials.js';
import { grants } from '../../src/auth/scopes.js';
import type { McpConfig, RouteAuthPolicy } from '../../src/config/index.js';
import { GatewayError } from '../../src/errors.js';
import type { GatewayMetrics } from '../../src/metrics/registry.js';
import { clientKey } from '../../src/ratelimit/client-key.js';
import '../../src/auth/policy.js';
import '../../src/auth/principal.js';
import { authInfoFor } from './auth.js';
import { hiddenTools, type McpAuditEntry } from './gateway-server.js';
import { observeTransport } from './observe.js';
import { SessionSlots, type SessionLimits, type SessionSlot } from './session-slots.js';

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
  /** A fresh MCP server per session (an McpServer serves one transport); each request brings its own principal. */
  readonly createServer: (session: McpSessionContext) => McpServer;
  /** Who may hold this replica's session slots (./session-slots.ts); memory stays bounded. */
  readonly sessionLimits: SessionLimits;
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

/** The session limits of the `mcp` config keys. */
export function sessionLimits(mcp: McpConfig): SessionLimits {
  return {
    max: mcp.maxSessions,
    perPrincipal: mcp.maxSessionsPerPrincipal,
    perAddress: mcp.maxSessionsPerAddress,
    adminReserved: mcp.adminReservedSessions,
    pressureIdleMs: mcp.pressureIdleSeconds * 1000,
  };
}

interface LocalSession {
  readonly transport: StreamableHTTPServerTransport;
  readonly subject: string | null;
  readonly createdAt: string;
  subscriptions: readonly string[];
  /**
   * Its slot, with when it was last used and how many of its requests are still open (an SSE
   * stream can stay open for hours): never idle while any is.
   */
  readonly slot: SessionSlot;
  /** When the store record's TTL was last renewed. */
  touched: number;
}

/** Largest delay setTimeout takes (about 24.8 days); a later expiry is not timed. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** When the request's bearer token expires (ms since the epoch), if it is a JWT with `exp`; it was verified by the auth stage. */
function bearerExpiry(request: FastifyRequest): number | undefined {
  const credential = presentedCredential(request.headers);
  if (credential?.kind !== 'bearer') return undefined;
  try {
    const exp = decodeJwt(credential.token).exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
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
  const slots = new SessionSlots(opts.sessionLimits);
  const ttlMs = opts.sessionIdleMs;

  const saveRecord = (id: string, record: McpSessionRecord) =>
    opts.sessionStore.set(id, record, ttlMs).catch((err: unknown) => app.log.warn({ err: (err as Error).message }, 'mcp: storing the session failed'));

  /** Forget a session here (and its slot); with `everywhere`, end it and delete its record too. */
  const drop = (id: string, session: LocalSession, everywhere: boolean) => {
    if (sessions.get(id) === session) sessions.delete(id);
    session.slot.release();
    if (!everywhere) return;
    void session.transport.close().catch(() => {});
    void opts.sessionStore.delete(id).catch(() => {});
  };

  const adopting = new Map<string, Promise<LocalSession>>();

  /**
   * A session for `request`'s principal: a new one, or (`sessionId`) one another replica
   * opened. It takes a slot first (./session-slots.ts: per principal, per address, the admin
   * reserve), which is busy until this request ends.
   */
  const open = async (request: FastifyRequest, sessionId: string | undefined, record: McpSessionRecord | undefined): Promise<LocalSession> => {
    const principal = request.principal;
    const slot = slots.acquire({
      subject: principal?.subject ?? null,
      address: clientKey(request.ip),
      admin: principal !== null && grants(principal.scopes, 'admin'),
    });
    try {
      return await create(principal?.subject ?? null, slot, sessionId, record);
    } catch (err) {
      slot.release();
      throw err;
    }
  };

  const create = async (subject: string | null, slot: SessionSlot, sessionId: string | undefined, record: McpSessionRecord | undefined): Promise<LocalSession> => {
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
          drop(id, session, false);
          void opts.sessionStore.delete(id).catch(() => {});
        },
      }),
      subject,
      createdAt,
      subscriptions: record?.subscriptions ?? [],
      slot,
      touched: Date.now(),
    };
    const { transport } = session;
    transport.onclose = () => {
      if (transport.sessionId !== undefined) drop(transport.sessionId, session, false);
      else slot.release();
    };
    // Reclaimed for another session (./session-slots.ts): ended here and in the store.
    slot.onReclaim(() => {
      if (transport.sessionId !== undefined) drop(transport.sessionId, session, true);
      else void transport.close().catch(() => {});
    });
    const server = opts.createServer({
      subscriptions: new Set(session.subscriptions),
      refused,
      onSubscriptionsChange: (uris) => {
        session.subscriptions = uris;
        if (transport.sessionId !== undefined) void saveRecord(transport.sessionId, { subject, subscriptions: uris, createdAt });
      },
    });
    await server.connect(transport);
    observeTransport(transport, { metrics: opts.metrics, audit: opts.audit, refused, hidden: hiddenTools });
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
    /** A session this request opened (or adopted): its slot is already busy for it. */
    let opened = false;
    if (session === undefined && sessionId !== undefined) {
      // Opened on another replica (or before a restart): adopt it when its record is there.
      const record = await opts.sessionStore.get(sessionId).catch(() => undefined);
      if (record === undefined || record.subject !== subject) throw new GatewayError('GW_MCP_SESSION_NOT_FOUND');
      // Concurrent first requests of one adopted session share one adoption.
      let adoption = adopting.get(sessionId);
      if (adoption === undefined) {
        adoption = open(request, sessionId, record).finally(() => adopting.delete(sessionId));
        adopting.set(sessionId, adoption);
        opened = true;
      }
      session = await adoption;
    } else if (session === undefined) {
      if (request.method !== 'POST' || !isInitializeRequest(request.body)) throw new GatewayError('GW_MCP_SESSION_REQUIRED');
      if (!opts.authPolicy.required) request.log.warn('mcp: a session opened without authentication (MCP_REQUIRE_AUTH=false)');
      session = await open(request, undefined, undefined);
      opened = true;
    } else if (session.subject !== subject) {
      // Someone else's session id: answered as if it did not exist.
      throw new GatewayError('GW_MCP_SESSION_NOT_FOUND');
    }
    const active = session;
    if (!opened) active.slot.begin();
    if (sessionId !== undefined) renew(sessionId, active);
    let expiry: NodeJS.Timeout | undefined;
    reply.raw.once('close', () => {
      clearTimeout(expiry);
      active.slot.end();
    });
    // The standalone SSE stream (GET) lasts as long as the client keeps it: it ends when the
    // credential that opened it expires (the client reconnects with a current one).
    const expiresAt = request.method === 'GET' ? bearerExpiry(request) : undefined;
    if (expiresAt !== undefined && expiresAt - Date.now() < MAX_TIMER_MS) {
      expiry = setTimeout(() => active.transport.closeStandaloneSSEStream(), Math.max(0, expiresAt - Date.now()));
      expiry.unref();
    }
    // This request's own principal goes with each of its messages (extra.authInfo): tools
    // check scope and MFA against it, not against whoever opened the session.
    const raw = request.raw as IncomingMessage & { auth?: AuthInfo };
    const auth = authInfoFor(request.principal);
    if (auth !== undefined) raw.auth = auth;
    else delete raw.auth;
    // The transport writes the response itself (JSON or an SSE stream).
    reply.hijack();
    try {
      await active.transport.handleRequest(raw, reply.raw, request.body);
    } finally {
      // An initialize the transport refused (bad params) opened no session: give its slot back.
      if (opened && active.transport.sessionId === undefined) {
        active.slot.release();
        void active.transport.close().catch(() => {});
      }
    }
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
        if (session.slot.busy > 0) {
          renew(id, session);
          continue;
        }
        if (session.slot.lastSeen >= cutoff) continue;
        drop(id, session, true);
      }
    },
    Math.min(60_000, ttlMs),
  );
  sweep.unref();

  // preClose, not onClose: an open SSE stream is an in-flight request, and onClose hooks only
  // run once the server has drained every request, so shutdown would wait for the clients.
  app.addHook('preClose', async () => {
    clearInterval(sweep);
    const open = [...sessions.values()];
    sessions.clear();
    for (const s of open) s.slot.release();
    await Promise.allSettled(open.map((s) => s.transport.close()));
  });
}
