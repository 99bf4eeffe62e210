import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { CLIENT_CAPABILITIES_META_KEY, CLIENT_INFO_META_KEY, classifyInboundRequest, createMcpHandler, PROTOCOL_VERSION_META_KEY, type AuthInfo, type McpServer } from '@modelcontextprotocol/server';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Keyv } from 'keyv';
import type { Authenticator } from '../../src/auth/authenticator.js';
import type { Principal } from '../../src/auth/principal.js';
import { grants } from '../../src/auth/scopes.js';
import type { McpConfig, RouteAuthPolicy } from '../../src/config/index.js';
import { GatewayError, type ErrorCode } from '../../src/errors.js';
import type { EventBus } from '../../src/events/bus.js';
import { gatewayEvents } from '../../src/events/gateway-events.js';
import type { GatewayMetrics } from '../../src/metrics/registry.js';
import { clientKey } from '../../src/ratelimit/client-key.js';
import '../../src/auth/policy.js';
import '../../src/auth/principal.js';
import { authInfoFor, bearerExpiry, optionalPrincipal } from './auth.js';
import type { McpRequestScope } from './gateway-server.js';
import { LegacySessions } from './legacy.js';
import { controlEvents, listChangedMethod, listenEventBus, type ListChanges } from './notifications.js';
import { Exchange, type McpAuditEntry } from './observe.js';
import { SessionStore } from './sessions.js';
import { StreamSlots, type StreamLimits, type StreamOwner } from './stream-slots.js';

/*
 * MCP Streamable HTTP at /mcp on the gateway port, both protocol eras on one URL:
 *
 * - 2026-07-28 requests (each carries its `_meta` envelope; no session, no initialize) are
 *   served by the SDK's per-request handler (`createMcpHandler`), which validates the envelope
 *   and the MCP-Protocol-Version / Mcp-Method / Mcp-Name headers against the body, answers
 *   `server/discover`, and serves `subscriptions/listen` streams from the event bus;
 * - 2025 clients (`initialize`, then `Mcp-Session-Id`) are served by ./legacy.ts, with their
 *   sessions in the state store.
 *
 * Before either: the Host and Origin checks (DNS-rebinding protection), one JSON-RPC message
 * per POST (batches are refused), and the request's own principal (the auth stage's, or with
 * MCP_REQUIRE_AUTH=false an optional one). Every error the gateway itself answers on /mcp is
 * a JSON-RPC error body (`data.code` holds the catalogue code) with the status of the
 * catalogue, as the revisions ask for (400, 403, 404, 405...). Long-lived streams (2025 GET,
 * 2026 listen) take a slot (./stream-slots.ts) and end when the credential that opened them
 * expires.
 */

export interface McpHttpOptions {
  /** A fresh server instance for one request (both eras). */
  readonly createServer: (scope: McpRequestScope) => McpServer;
  readonly limits: StreamLimits;
  /** Audit lines of tool calls (the gateway's log). */
  readonly audit: (entry: McpAuditEntry) => void;
  /** A 2025 session ends this long after its last request while no stream of it is open. */
  readonly sessionIdleMs: number;
  /** SSE `retry` suggested on 2025 GET streams. */
  readonly retryMs: number;
  readonly authPolicy: RouteAuthPolicy;
  /** Verifies optional credentials when the route needs none (MCP_REQUIRE_AUTH=false). */
  readonly authenticator: Pick<Authenticator, 'authenticate' | 'authorize'>;
  /** Whether a browser Origin may call /mcp; requests without Origin pass. */
  readonly originAllowed: (origin: string) => boolean;
  /** Whether a Host may be used (null: not restricted, see mcpHostPolicy). */
  readonly hostAllowed: ((host: string | undefined) => boolean) | null;
  /** 2025 session records and their tombstones (the state store's Keyv). */
  readonly sessionRecords: Keyv<unknown>;
  readonly sessionTombstones: Keyv<unknown>;
  /** Whether the shared state store answers. */
  readonly storeUp: () => boolean;
  /** The gateway's event bus (resource updates, and the replicas' session coordination). */
  readonly bus: EventBus;
  readonly metrics: Pick<GatewayMetrics, 'mcpRequests'>;
  /** SSE keep-alive comment interval (default 15 s). */
  readonly keepAliveMs?: number;
  /** Federation (mcp/federation): list changes to announce, and which server a federated tool is (audit). */
  readonly federation?: { onListChanged: ListChanges; serverOf(tool: string): string | undefined };
}

/** The stream limits of the `mcp` config keys. */
export function streamLimits(mcp: McpConfig): StreamLimits {
  return { max: mcp.maxStreams, perPrincipal: mcp.maxStreamsPerPrincipal, perAddress: mcp.maxStreamsPerAddress, adminReserved: mcp.adminReservedStreams };
}

/** JSON-RPC error codes of the gateway's own errors (the catalogue code goes in `data.code`). */
const RPC_CODES: Partial<Record<ErrorCode, number>> = {
  GW_MCP_BATCH_UNSUPPORTED: -32600,
  GW_MCP_SESSION_NOT_FOUND: -32001,
  GW_REQUEST_INVALID: -32600,
  GW_INTERNAL_ERROR: -32603,
};
/** Implementation-defined server error (JSON-RPC 2.0, 5.1): everything else the gateway refuses. */
const SERVER_ERROR = -32000;

const DEFAULT_KEEP_ALIVE_MS = 15_000;
const MAX_TIMER_MS = 2 ** 31 - 1;

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * A body only the 2026-07-28 handler can serve (or refuse): a JSON-RPC request or notification,
 * not initialize, whose params carry the envelope's protocol-version claim. The SDK's
 * classification (classifyInboundRequest) never routes such a body to the 2025 era, and the
 * strict handler classifies it again and answers its refusals itself; so the hot path (every
 * 2026 tools/call) is classified once, not twice. Anything else is classified here first.
 */
function claimsModernEnvelope(body: unknown): boolean {
  if (!isRecord(body) || typeof body.method !== 'string' || body.method === 'initialize' || 'result' in body || 'error' in body) return false;
  const params = body.params;
  return isRecord(params) && isRecord(params._meta) && PROTOCOL_VERSION_META_KEY in params._meta;
}

/** Whether a 2026-07-28 body's envelope names both the client's info and its capabilities (./reuse.ts). */
function namesClient(body: unknown): boolean {
  const meta = isRecord(body) && isRecord(body.params) ? body.params._meta : undefined;
  return isRecord(meta) && isRecord(meta[CLIENT_INFO_META_KEY]) && isRecord(meta[CLIENT_CAPABILITIES_META_KEY]);
}

/** The id of the request in a parsed body, when it is one request with a usable id. */
function requestIdOf(body: unknown): string | number | null {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return null;
  const { id, method } = body as { id?: unknown; method?: unknown };
  return typeof method === 'string' && (typeof id === 'string' || typeof id === 'number') ? id : null;
}

/** The gateway error behind `err` (Fastify's own 4xx keep their status). */
function asGatewayError(err: FastifyError): { error: GatewayError; status: number; rpc: number } {
  if (err instanceof GatewayError) return { error: err, status: err.statusCode, rpc: RPC_CODES[err.code] ?? SERVER_ERROR };
  const status = err.statusCode ?? 500;
  if (status === 413) return { error: new GatewayError('GW_REQUEST_BODY_TOO_LARGE'), status, rpc: SERVER_ERROR };
  if (status >= 400 && status < 500) {
    // Fastify's own messages describe the request's form (media type, JSON syntax), never its content.
    const parse = err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || err instanceof SyntaxError;
    return { error: new GatewayError('GW_REQUEST_INVALID', err.message), status, rpc: parse ? -32700 : status === 415 ? SERVER_ERROR : -32600 };
  }
  return { error: new GatewayError('GW_INTERNAL_ERROR', undefined, { cause: err }), status: 500, rpc: -32603 };
}

/** A web-standard Request with the headers of `request` (the body is handed over parsed). */
function webRequest(request: FastifyRequest, signal: AbortSignal): Request {
  const headers = new Headers();
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined || name.startsWith(':')) continue;
    if (Array.isArray(value)) for (const v of value) headers.append(name, v);
    else headers.set(name, value);
  }
  return new Request(new URL(request.url, 'http://gateway.invalid'), { method: request.method, headers, signal });
}

/** Write a web Response to the raw response (the reply is hijacked: no compression, no onSend), keeping the headers the gateway already set. */
function sendWeb(reply: FastifyReply, response: Response): void {
  reply.hijack();
  const res = reply.raw;
  for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) res.setHeader(name, value);
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => (headers[name] = value));
  res.writeHead(response.status, headers);
  if (response.body === null) {
    res.end();
    return;
  }
  // A JSON answer is complete when the SDK hands it over: written in one go, without a
  // web-to-Node stream bridge per request (most of /mcp's answers: every tools/call).
  if (!(headers['content-type'] ?? '').includes('text/event-stream')) {
    response.arrayBuffer().then(
      (bytes) => res.end(Buffer.from(bytes)),
      () => res.destroy(),
    );
    return;
  }
  const body = Readable.fromWeb(response.body as NodeReadableStream<Uint8Array>);
  res.once('close', () => body.destroy());
  body.on('error', () => res.destroy());
  body.pipe(res);
}

export async function mcpHttpPlugin(app: FastifyInstance, opts: McpHttpOptions): Promise<void> {
  const slots = new StreamSlots(opts.limits);
  const events = gatewayEvents(opts.bus);
  const control = controlEvents(opts.bus);
  const keepAliveMs = opts.keepAliveMs ?? DEFAULT_KEEP_ALIVE_MS;
  const log = app.log.child({ component: 'mcp' });
  const sessions = new SessionStore({ records: opts.sessionRecords, ended: opts.sessionTombstones, idleMs: opts.sessionIdleMs, log, storeUp: opts.storeUp });

  /** What a 2026-07-28 request's server instance is built from, found by the request the SDK hands the factory. */
  const scopes = new WeakMap<Request, McpRequestScope>();
  const modern = createMcpHandler(
    (ctx) => {
      const scope = ctx.requestInfo !== undefined ? scopes.get(ctx.requestInfo) : undefined;
      if (scope === undefined) throw new Error('mcp: a 2026-07-28 request reached the server factory without its scope');
      return opts.createServer(scope);
    },
    {
      legacy: 'reject',
      bus: listenEventBus(events, opts.federation?.onListChanged),
      // The per-principal, per-address and shared caps are checked first (./stream-slots.ts).
      maxSubscriptions: opts.limits.max,
      keepAliveMs,
      onerror: (err) => log.debug({ err: err.message }, 'mcp: request refused or failed'),
    },
  );
  const legacy = new LegacySessions({
    sessions,
    control,
    events,
    slots,
    createServer: opts.createServer,
    retryMs: opts.retryMs,
    keepAliveMs,
    log,
    ...(opts.federation
      ? {
          listChanged: (listener: (method: string) => void) =>
            opts.federation!.onListChanged((event) => {
              const method = listChangedMethod(event);
              if (method !== undefined) listener(method);
            }),
        }
      : {}),
  });

  // The gateway's own errors on /mcp as JSON-RPC error bodies (this context only).
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const { error, status, rpc } = asGatewayError(err);
    if (status >= 500 && error.code === 'GW_INTERNAL_ERROR') request.log.error({ err }, 'mcp: unhandled error');
    return reply
      .code(status)
      .headers(error.headers)
      .headers(status === 405 ? { allow: 'POST' } : {})
      .send({ jsonrpc: '2.0', id: requestIdOf(request.body), error: { code: rpc, message: error.message, data: { code: error.code, requestId: request.id } } });
  });

  /** DNS-rebinding protection: Host and Origin (a rebinding page sends its own name in both), before the body is read. */
  const rebinding = async (request: FastifyRequest): Promise<void> => {
    if (opts.hostAllowed !== null && !opts.hostAllowed(request.headers.host)) {
      throw new GatewayError('GW_MCP_HOST_FORBIDDEN', `Host ${String(request.headers.host ?? '(none)').slice(0, 200)} may not call /mcp`);
    }
    const origin = request.headers.origin;
    if (origin !== undefined && !opts.originAllowed(origin)) throw new GatewayError('GW_MCP_ORIGIN_FORBIDDEN', `Origin ${origin.slice(0, 200)} may not call /mcp`);
  };

  const handle = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (!opts.authPolicy.required) request.principal = await optionalPrincipal(opts.authenticator, request);
    const principal: Principal | null = request.principal;
    const expiresAt = bearerExpiry(request);
    const authInfo: AuthInfo | undefined = authInfoFor(principal, expiresAt);
    const owner: StreamOwner = { subject: principal?.subject ?? null, address: clientKey(request.ip), admin: principal !== null && grants(principal.scopes, 'admin') };
    const abort = new AbortController();
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) abort.abort();
    });
    const web = webRequest(request, abort.signal);
    const legacyRequest = { web, principal, owner, ...(authInfo ? { authInfo } : {}), ...(expiresAt !== undefined ? { expiresAt } : {}) };

    if (request.method === 'GET' || request.method === 'DELETE') {
      if (request.headers['mcp-session-id'] === undefined) throw new GatewayError('GW_MCP_METHOD_NOT_ALLOWED');
      sendWeb(reply, request.method === 'GET' ? await legacy.get(legacyRequest) : await legacy.delete(legacyRequest));
      return;
    }
    if (request.method !== 'POST') throw new GatewayError('GW_MCP_METHOD_NOT_ALLOWED');

    const body = request.body;
    if (Array.isArray(body)) throw new GatewayError('GW_MCP_BATCH_UNSUPPORTED');
    const header = (name: string) => {
      const value = request.headers[name];
      return typeof value === 'string' ? value : undefined;
    };
    const outcome = claimsModernEnvelope(body)
      ? ({ kind: 'modern' } as const)
      : classifyInboundRequest({
          httpMethod: 'POST',
          protocolVersionHeader: header('mcp-protocol-version'),
          mcpMethodHeader: header('mcp-method'),
          mcpNameHeader: header('mcp-name'),
          body,
        });
    const era = outcome.kind === 'legacy' ? 'legacy' : 'modern';
    const exchange = new Exchange(body, {
      metrics: opts.metrics,
      audit: opts.audit,
      principal: principal?.subject ?? null,
      era,
      ...(opts.federation ? { serverOf: (tool: string) => opts.federation!.serverOf(tool) } : {}),
    });
    reply.raw.once('close', () => exchange.finish());

    if (outcome.kind === 'reject') {
      // The revision's own refusal (envelope, headers against the body): its status and code.
      exchange.answer({ error: outcome.code });
      reply.code(outcome.httpStatus).send({ jsonrpc: '2.0', id: requestIdOf(body), error: { code: outcome.code, message: outcome.message, ...(outcome.data !== undefined ? { data: outcome.data } : {}) } });
      return;
    }
    try {
      if (outcome.kind === 'legacy') sendWeb(reply, await legacy.post({ ...legacyRequest, body, exchange }));
      else await serveModern(reply, { web, body, principal, owner, exchange, abort, ...(authInfo ? { authInfo } : {}), ...(expiresAt !== undefined ? { expiresAt } : {}) });
    } catch (err) {
      // Refused by the gateway itself (session, stream slots...): the answer is that error.
      exchange.answer({ error: err instanceof GatewayError ? err.code : 'error' });
      throw err;
    }
  };

  /** A 2026-07-28 request: the SDK's handler, with a stream slot for a listen stream. */
  const serveModern = async (
    reply: FastifyReply,
    req: { web: Request; body: unknown; principal: Principal | null; owner: StreamOwner; exchange: Exchange; abort: AbortController; authInfo?: AuthInfo; expiresAt?: number },
  ): Promise<void> => {
    const { web, exchange, abort, expiresAt } = req;
    const listen = exchange.method === 'subscriptions/listen';
    const slot = listen ? slots.acquire(req.owner) : undefined;
    scopes.set(web, {
      principal: req.principal,
      era: 'modern',
      method: exchange.method,
      toolName: exchange.tool,
      report: exchange,
      client: req.owner.address,
      onConnect: (transport) => exchange.observe(transport),
      identified: namesClient(req.body),
    });
    let response: Response;
    try {
      response = await modern.fetch(web, { parsedBody: req.body, ...(req.authInfo ? { authInfo: req.authInfo } : {}) });
    } catch (err) {
      slot?.release();
      throw err;
    }
    // Refused by the SDK's own checks before any server instance answered (the envelope,
    // headers against the body): counted and audited as an error answer.
    if (!exchange.answered && response.status >= 400) exchange.answer({ error: response.status });
    if (slot !== undefined) {
      // A listen stream is the request's answer for as long as it lasts; it ends when the
      // client closes it, when the gateway shuts down, when its credential expires, or when
      // its slot goes to a newer stream of the same caller. Refused (filter, capacity), it is
      // a JSON answer instead.
      const stream = (response.headers.get('content-type') ?? '').includes('text/event-stream');
      exchange.answer(stream ? { result: {} } : { error: 'refused' });
      slot.onReclaim(() => abort.abort());
      let expiry: NodeJS.Timeout | undefined;
      if (expiresAt !== undefined && expiresAt - Date.now() < MAX_TIMER_MS) {
        expiry = setTimeout(() => abort.abort(), Math.max(0, expiresAt - Date.now()));
        expiry.unref();
      }
      reply.raw.once('close', () => {
        clearTimeout(expiry);
        slot.release();
      });
      // abort() ends the stream on the SDK's side; end the HTTP response with it.
      abort.signal.addEventListener('abort', () => reply.raw.end(), { once: true });
    }
    sendWeb(reply, response);
  };

  app.route({ method: ['GET', 'POST', 'DELETE', 'PUT', 'PATCH'], url: '/mcp', config: { authPolicy: opts.authPolicy }, onRequest: rebinding, handler: handle });

  // preClose, not onClose: an open stream is an in-flight request, and onClose hooks only run
  // once the server has drained every request, so shutdown would wait for the clients.
  app.addHook('preClose', async () => {
    legacy.close();
    await modern.close();
  });
}
