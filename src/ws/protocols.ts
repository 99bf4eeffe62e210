import type { IncomingMessage } from 'node:http';
import { WS_BEARER_PROTOCOL_MARKER, WS_BEARER_PROTOCOL_PREFIX } from '../auth/credentials.js';

/** Set on the raw upgrade request by a route that decides the subprotocol (the proxy: the upstream's choice). */
export const SELECTED_PROTOCOL = Symbol('gateway.wsSelectedProtocol');
/** Set by a route that picks the first protocol the client offered (the gateway's own /v1/events). */
export const FIRST_OFFERED = Symbol('gateway.wsFirstOffered');

/**
 * ws `handleProtocols`: the protocol answered to the client. Never a `bearer.<token>` one
 * (the token would be echoed back); the `bearer` marker when nothing else is chosen (a
 * browser that offered protocols fails the connection when none is selected). False: no
 * Sec-WebSocket-Protocol in the answer.
 */
export function selectProtocol(offered: Set<string>, request: IncomingMessage): string | false {
  const raw = request as unknown as Record<symbol, unknown>;
  const selected = raw[SELECTED_PROTOCOL];
  if (typeof selected === 'string' && offered.has(selected) && !selected.startsWith(WS_BEARER_PROTOCOL_PREFIX)) return selected;
  if (raw[FIRST_OFFERED] === true) {
    for (const p of offered) if (!p.startsWith(WS_BEARER_PROTOCOL_PREFIX)) return p;
  }
  return offered.has(WS_BEARER_PROTOCOL_MARKER) ? WS_BEARER_PROTOCOL_MARKER : false;
}
