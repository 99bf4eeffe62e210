import type { ServerEvent, ServerEventBus } from '@modelcontextprotocol/server';
import { z } from 'zod';
import type { Delivered, EventBus, EventChannel } from '../../src/events/bus.js';
import type { GatewayEvent } from '../../src/events/gateway-events.js';
import { MAX_SUBSCRIBE_URI_LENGTH, MAX_SUBSCRIPTIONS_PER_SESSION, type SubscribableResource } from './gateway-server.js';

/*
 * MCP notifications from the gateway's event bus (src/events), on every replica (and the list
 * changes of the federated surface, per replica: each replica's pool sees its upstreams):
 *
 * - which resource a gateway event changes: a traffic shift changes gateway://routes, a
 *   service's health changes gateway://services;
 * - the SDK's ServerEventBus for 2026-07-28 `subscriptions/listen` streams, fed by the bus;
 * - the `mcp` channel the replicas use to keep 2025 sessions consistent: a session ended, its
 *   subscriptions changed, a newer GET stream took over, a request was cancelled (wherever
 *   the session's stream or the cancelled request happens to be).
 */

/** The resource a gateway event changes. */
export function changedResource(event: GatewayEvent): SubscribableResource | undefined {
  switch (event.type) {
    case 'traffic.shifted':
      return 'gateway://routes';
    case 'service.health':
    case 'breaker.state':
      return 'gateway://services';
    case 'model.promoted':
      return 'gateway://routes';
    case 'client.blocked':
      // No subscribable resource shows blocks (admin tools list them); /v1/events carries them.
      return undefined;
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
export function listenEventBus(events: EventChannel<GatewayEvent>, listChanges?: ListChanges): ServerEventBus {
  return {
    publish(): void {},
    subscribe(listener: (event: ServerEvent) => void): () => void {
      const off = events.subscribe((delivered) => {
        const uri = changedResource(delivered.event);
        if (uri !== undefined) listener({ kind: 'resource_updated', uri });
      });
      const offLists = listChanges?.(listener);
      return () => {
        off();
        offLists?.();
      };
    },
  };
}

/** List changes of this replica's federated surface (mcp/federation), as the SDK's events. */
export type ListChanges = (listener: (event: ServerEvent) => void) => () => void;

/** The 2025 notification method of a list change. */
export function listChangedMethod(event: ServerEvent): string | undefined {
  switch (event.kind) {
    case 'tools_list_changed':
      return 'notifications/tools/list_changed';
    case 'prompts_list_changed':
      return 'notifications/prompts/list_changed';
    case 'resources_list_changed':
      return 'notifications/resources/list_changed';
    default:
      return undefined;
  }
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
