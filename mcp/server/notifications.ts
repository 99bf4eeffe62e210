import type { ServerEvent, ServerEventBus } from '@modelcontextprotocol/server';
import { z } from 'zod';
import type { Delivered, EventBus, EventChannel } from '../../src/events/bus.js';
import type { GatewayEvent } from '../../src/events/gateway-events.js';
import { MAX_SUBSCRIBE_URI_LENGTH, MAX_SUBSCRIPTIONS_PER_SESSION, type SubscribableResource } from './gateway-server.js';

/*
 * MCP notifications from the gateway's event bus (src/events), on every replica:
 *
 * - which resource a gateway event changes: a traffic shift changes gateway://routes, a
 *   service's health changes gateway://services;
 * - the SDK's ServerEventBus for 2026-07-28 `subscriptions/listen` streams, fed by the bus;
 * - the `mcp` channel the replicas use to keep 2025 sessions consistent: a session ended, its
 *   subscriptions changed, a newer GET stream took over, a request was cancelled (wherever
 *   the session's stream or the cancelled request happens to be).
 */

/** The resource a gateway event changes. */
export function changedResource(event: GatewayEvent): SubscribableResource {
  switch (event.type) {
    case 'traffic.shifted':
      return 'gateway://routes';
    case 'service.health':
      return 'gateway://services';
    case 'migration.step':
      return 'gateway://migrations';
  }
}

/**
 * The SDK's event-bus seam over the gateway's bus: each gateway event becomes the
 * `resource_updated` event of the resource it changes, on every replica (the bus delivers
 * through Redis). The gateway does not publish through this seam (changes are published as
 * gateway events where they happen, parsed by the bus's schema); anything published here is
 * dropped.
 */
export function listenEventBus(events: EventChannel<GatewayEvent>): ServerEventBus {
  return {
    publish(): void {},
    subscribe(listener: (event: ServerEvent) => void): () => void {
      return events.subscribe((delivered) => listener({ kind: 'resource_updated', uri: changedResource(delivered.event) }));
    },
  };
}

const sessionId = z.string().min(1).max(64);

export const controlEventSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('session.ended'), session: sessionId }),
  z.strictObject({
    type: z.literal('session.subscriptions'),
    session: sessionId,
    uris: z.array(z.string().max(MAX_SUBSCRIBE_URI_LENGTH)).max(MAX_SUBSCRIPTIONS_PER_SESSION),
  }),
  z.strictObject({ type: z.literal('stream.opened'), session: sessionId, stream: z.string().min(1).max(64) }),
  z.strictObject({ type: z.literal('request.cancelled'), session: sessionId, requestId: z.union([z.string().max(256), z.number()]) }),
]);
export type ControlEvent = z.infer<typeof controlEventSchema>;

export function controlEvents(bus: EventBus): EventChannel<ControlEvent> {
  return bus.channel('mcp', controlEventSchema);
}

export type { Delivered };
