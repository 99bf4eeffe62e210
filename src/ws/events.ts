import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { grants } from '../auth/scopes.js';
import { READ_ONLY } from '../auth/policy.js';
import type { WebsocketsConfig } from '../config/index.js';
import { GatewayError } from '../errors.js';
import type { Delivered, EventChannel } from '../events/bus.js';
import { gatewayEventSchema, type GatewayEvent } from '../events/gateway-events.js';
import type { GatewayMetrics } from '../metrics/registry.js';
import type { LiveConnections, LongLived } from './connections.js';
import { FIRST_OFFERED } from './protocols.js';
import { closeCodeLabel } from './relay.js';

/*
 * GET /v1/events: the gateway's events as they happen, from the one event bus (src/events)
 * that also feeds MCP notifications, so a listener on any replica hears every replica's
 * events (Redis pub/sub). A WebSocket (one JSON text message per event) or, for curl, SSE
 * (`event: <type>`, `id:`; Last-Event-ID resumes from the replica's replay buffer).
 *
 * Browsers authenticate with a ticket (`?ticket=`, POST /auth/ws-ticket), for EventSource too.
 * `?types=traffic.shifted,breaker.*` keeps the named types (a `prefix.*` keeps a family).
 * `client.blocked` carries client addresses: only admin principals receive it. A listener
 * that does not keep up (more than websockets.bufferBytes waiting) is cut rather than
 * buffered without bound: WebSocket 1008 "too slow", SSE stream ended.
 */

export const EVENT_TYPES: readonly string[] = gatewayEventSchema.options.map((o) => o.shape.type.value);
const ADMIN_ONLY = new Set(['client.blocked']);
const ROUTE = 'events';
/** SSE comment line this often, so proxies and clients see the stream alive. */
const SSE_HEARTBEAT_MS = 15_000;

export interface EventsRouteOptions {
  readonly channel: EventChannel<GatewayEvent>;
  readonly connections: LiveConnections;
  readonly metrics: Pick<GatewayMetrics, 'wsConnections' | 'wsMessages' | 'wsBytes' | 'wsCloses'>;
  readonly limits: Pick<WebsocketsConfig, 'bufferBytes' | 'pingIntervalMs'>;
  /** The WebSocket form is served (ENABLE_WEBSOCKETS); SSE always is. */
  readonly websocket: boolean;
}

/** The filter of `?types=`: undefined keeps everything. */
export function typeFilter(types: unknown): ((type: string) => boolean) | undefined {
  if (types === undefined || types === '') return undefined;
  if (typeof types !== 'string' || types.length > 1024) throw new GatewayError('GW_REQUEST_INVALID', 'types is one comma-separated list');
  const exact = new Set<string>();
  const prefixes: string[] = [];
  for (const raw of types.split(',')) {
    const t = raw.trim();
    if (t === '') continue;
    if (t.endsWith('.*') && EVENT_TYPES.some((e) => e.startsWith(t.slice(0, -1)))) prefixes.push(t.slice(0, -1));
    else if (EVENT_TYPES.includes(t)) exact.add(t);
    else throw new GatewayError('GW_REQUEST_INVALID', `Unknown event type "${t.slice(0, 64)}"; known: ${EVENT_TYPES.join(', ')} (or a family such as breaker.*)`);
  }
  return (type) => exact.has(type) || prefixes.some((p) => type.startsWith(p));
}

/** One listener's view: its filter and whether it may see admin-only events. */
function listenerFilter(request: FastifyRequest): (d: Delivered<GatewayEvent>) => boolean {
  const keep = typeFilter((request.query as Record<string, unknown> | undefined)?.types);
  const admin = request.principal !== null && grants(request.principal.scopes, 'admin');
  return (d) => (admin || !ADMIN_ONLY.has(d.event.type)) && (keep === undefined || keep(d.event.type));
}

function message(d: Delivered<GatewayEvent>): string {
  return JSON.stringify({ id: d.id, at: new Date(d.at).toISOString(), event: d.event });
}

export async function eventsRoutes(app: FastifyInstance, opts: EventsRouteOptions): Promise<void> {
  const { channel, connections, metrics, limits } = opts;

  /** SSE for curl and EventSource. */
  function sse(request: FastifyRequest, reply: FastifyReply): void {
    const keep = listenerFilter(request);
    const res = reply.raw;
    reply.hijack();
    // What the stages set on the reply (security headers, CORS) goes out too: hijacked, Fastify does not send it.
    for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) res.setHeader(name, value);
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
      'x-request-id': request.id,
    });
    let ended = false;
    const write = (text: string) => {
      if (ended) return;
      res.write(text);
      if (res.writableLength > limits.bufferBytes) stream.terminate();
    };
    const send = (d: Delivered<GatewayEvent>) => {
      if (keep(d)) write(`id: ${d.id}\nevent: ${d.event.type}\ndata: ${message(d)}\n\n`);
    };
    const stream: LongLived = {
      close: () => {
        write('event: shutdown\ndata: {"reason":"gateway shutting down"}\n\n');
        finish();
        res.end();
      },
      terminate: () => {
        finish();
        res.destroy();
      },
    };
    const finish = () => {
      if (ended) return;
      ended = true;
      unsubscribe();
      clearInterval(heartbeat);
      connections.delete(stream);
    };
    write(': connected\n\n');
    const lastId = request.headers['last-event-id'];
    if (typeof lastId === 'string') for (const d of channel.since(lastId) ?? []) send(d);
    const unsubscribe = channel.subscribe(send);
    const heartbeat = setInterval(() => write(': keep-alive\n\n'), SSE_HEARTBEAT_MS);
    heartbeat.unref();
    connections.add(stream);
    res.on('close', finish);
  }

  /** The WebSocket form: one JSON text message per event; nothing is read from the client. */
  function ws(socket: WebSocket, request: FastifyRequest): void {
    const keep = listenerFilter(request);
    const messages = metrics.wsMessages.labels({ route: ROUTE, direction: 'out' });
    const bytes = metrics.wsBytes.labels({ route: ROUTE, direction: 'out' });
    let by: 'client' | 'gateway' = 'client';
    let alive = true;
    const send = (d: Delivered<GatewayEvent>) => {
      if (!keep(d) || socket.readyState !== socket.OPEN) return;
      if (socket.bufferedAmount > limits.bufferBytes) {
        by = 'gateway';
        socket.close(1008, 'too slow');
        return;
      }
      const text = message(d);
      socket.send(text);
      messages.inc();
      bytes.inc(Buffer.byteLength(text));
    };
    const stream: LongLived = {
      close: (code, reason) => {
        by = 'gateway';
        socket.close(code, reason);
      },
      terminate: () => {
        by = 'gateway';
        socket.terminate();
      },
    };
    metrics.wsConnections.inc({ route: ROUTE });
    connections.add(stream);
    const since = (request.query as Record<string, unknown> | undefined)?.since;
    if (typeof since === 'string') for (const d of channel.since(since) ?? []) send(d);
    const unsubscribe = channel.subscribe(send);
    const ping =
      limits.pingIntervalMs > 0
        ? setInterval(() => {
            if (!alive) return stream.terminate();
            alive = false;
            socket.ping();
          }, limits.pingIntervalMs)
        : undefined;
    ping?.unref();
    socket.on('pong', () => (alive = true));
    // Listeners only listen: anything they send is ignored.
    socket.on('close', (code: number) => {
      unsubscribe();
      clearInterval(ping);
      connections.delete(stream);
      metrics.wsConnections.dec({ route: ROUTE });
      metrics.wsCloses.inc({ route: ROUTE, by, code: closeCodeLabel(code) });
    });
  }

  app.route({
    method: 'GET',
    url: '/v1/events',
    exposeHeadRoute: false,
    config: { authPolicy: READ_ONLY, websocket: opts.websocket, acceptsTicket: true },
    // The filter is checked before an upgrade too: a bad one is a 400, not a closed socket.
    preHandler: async (request) => {
      typeFilter((request.query as Record<string, unknown> | undefined)?.types);
      if (request.ws) (request.raw as unknown as Record<symbol, boolean>)[FIRST_OFFERED] = true;
    },
    handler: sse,
    ...(opts.websocket ? { wsHandler: ws } : {}),
  });
}
