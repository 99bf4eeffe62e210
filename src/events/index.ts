export { EventBus, type Delivered, type EventBusOptions, type EventChannel } from './bus.js';
export { gatewayEvents, gatewayEventSchema, trafficShiftKey, GATEWAY_EVENTS_REPLAY, type GatewayEvent } from './gateway-events.js';
