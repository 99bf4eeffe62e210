import { z } from 'zod';
import type { EventBus, EventChannel } from './bus.js';

/*
 * What the gateway itself announces on the bus: changes every replica and every listener
 * should hear of. Each replica publishes what it observes; a traffic shift reaches every
 * replica (src/routing/traffic-split.ts), so it is keyed by route and version and delivered
 * once however many replicas publish it. Health is each replica's own probe result.
 */

export const gatewayEventSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('traffic.shifted'),
    route: z.string().min(1).max(128),
    version: z.number().int().nonnegative(),
    canary: z.number().int().min(0).max(100),
  }),
  z.strictObject({
    type: z.literal('service.health'),
    service: z.string().min(1).max(64),
    status: z.string().min(1).max(32),
    /** Why (the public form of the probe error: a code or a fixed phrase), when it went down. */
    cause: z.string().min(1).max(64).optional(),
  }),
  // --- /v1/events (src/ws/events.ts): breakers, client blocks, model promotions ---
  /** A host's circuit breaker changed state on the replica that publishes it (each replica has its own). */
  z.strictObject({
    type: z.literal('breaker.state'),
    service: z.string().min(1).max(64),
    upstream: z.string().min(1).max(256),
    state: z.enum(['closed', 'half-open', 'open']),
  }),
  /** A client was blocked (automatically or by an admin); only admin listeners of /v1/events see it. */
  z.strictObject({
    type: z.literal('client.blocked'),
    client: z.string().min(1).max(128),
    reason: z.string().max(200),
    seconds: z.number().int().nonnegative(),
  }),
  /** The active routing model changed (admin API or CLI promotion, on the replica that made it). */
  z.strictObject({
    type: z.literal('model.promoted'),
    model: z.string().min(1).max(256),
    previous: z.string().max(256),
  }),
  // --- migration (src/migration/controller.ts): a migration started, moved a step, paused, resumed or ended ---
  z.strictObject({
    type: z.literal('migration.step'),
    id: z.string().min(1).max(128),
    route: z.string().min(1).max(128),
    state: z.enum(['running', 'paused', 'completed', 'rolled_back', 'aborted']),
    percent: z.number().int().min(0).max(100),
    version: z.number().int().nonnegative(),
  }),
]);

export type GatewayEvent = z.infer<typeof gatewayEventSchema>;

/** Deliveries kept per replica for listeners that reconnect (2025 MCP GET streams resume from them). */
export const GATEWAY_EVENTS_REPLAY = 1000;

export function gatewayEvents(bus: EventBus): EventChannel<GatewayEvent> {
  return bus.channel('gateway', gatewayEventSchema, { replay: GATEWAY_EVENTS_REPLAY });
}

/** The key that makes every replica's announcement of one traffic shift a single delivery. */
export function trafficShiftKey(route: string, version: number, updatedAt: string): string {
  return `traffic.shifted:${route}:${version}:${updatedAt}`;
}
