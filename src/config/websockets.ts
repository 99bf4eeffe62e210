import { z } from 'zod';
import { scopeSchema } from './fields.js';

/*
 * WebSockets (src/ws): the per-connection limits of proxied WebSocket routes and of
 * /v1/events, the upstream handshake deadline, and browser tickets (POST /auth/ws-ticket).
 * ENABLE_WEBSOCKETS (server.ts) switches the whole feature; a route's `websocket` key
 * (routes.ts) switches it per route.
 */

export const websocketsSchema = z
  .strictObject({
    /** Largest message (either direction) a connection may carry; bigger closes it with 1009. */
    maxMessageBytes: z.number().int().min(1).max(64 * 1024 * 1024).default(1024 * 1024),
    /** Messages per second a client may send on one connection (burst: the same number); over it closes with 1008. 0: no limit. */
    messagesPerSecond: z.number().int().min(0).max(1_000_000).default(200),
    /**
     * Bytes the gateway holds for a slow side before it stops reading the other side
     * (backpressure, per direction of each connection); reading resumes below half of it.
     */
    bufferBytes: z.number().int().min(1024).max(256 * 1024 * 1024).default(1024 * 1024),
    /** A connection with no message either way for this long is closed (1000 "idle timeout"). 0: never. */
    idleTimeoutMs: z.number().int().min(0).max(86_400_000).default(300_000),
    /** Ping both peers this often; a peer that has not answered the previous ping is cut. 0: no pings. */
    pingIntervalMs: z.number().int().min(0).max(3_600_000).default(30_000),
    /** Longest the upstream may take to accept the upgrade; past it the client gets 504 before its upgrade. */
    handshakeTimeoutMs: z.number().int().min(100).max(120_000).default(10_000),
    /** Lifetime of a single-use ticket from POST /auth/ws-ticket. */
    ticketTtlSeconds: z.number().int().min(1).max(300).default(30),
    /** On shutdown, how long closing connections (1001) get to finish their close handshake before they are cut. */
    closeGraceMs: z.number().int().min(0).max(60_000).default(2000),
  })
  .prefault({});

/** A route's WebSocket switch: true/false, or options (enabled by default once the object is there). */
export const routeWebsocketSchema = z.union([
  z.boolean(),
  z.strictObject({
    enabled: z.boolean().default(true),
    /** Scope needed to connect (default read, as for GET). */
    scope: scopeSchema.optional(),
    /** Inspect text frames from the client with the route's input-validation detectors (closes 1008 on a finding). */
    inspectText: z.boolean().default(false),
  }),
]);

/** A route's WebSocket settings as the gateway uses them. */
export const routeWebsocketConfigSchema = z.strictObject({
  enabled: z.boolean(),
  scope: scopeSchema.optional(),
  inspectText: z.boolean(),
});

export function resolveRouteWebsocket(value: z.output<typeof routeWebsocketSchema> | undefined): z.output<typeof routeWebsocketConfigSchema> | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'boolean') return { enabled: value, inspectText: false };
  return { enabled: value.enabled, ...(value.scope !== undefined ? { scope: value.scope } : {}), inspectText: value.inspectText };
}
