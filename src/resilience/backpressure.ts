import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { GatewayError } from '../errors.js';

/*
 * Backpressure: a bound on the requests in flight to each service and through the gateway
 * as a whole (REQUEST_QUEUE_SIZE, `services.<name>.maxInFlight`). Past either bound the
 * request is answered at once with 503 GW_GATEWAY_OVERLOADED and Retry-After, instead of
 * queueing in the upstream pool without limit.
 *
 * Hot path: one counter check per request, no closures. The slot is stored on the raw
 * response under a symbol and released by one shared 'close' listener (a ServerResponse
 * emits 'close' exactly once: after the response finished, or when the client went away).
 */

/** Seconds a shed client is told to wait; load is short-lived, so retry soon. */
export const OVERLOAD_RETRY_AFTER_SECONDS = 1;

interface Slot {
  readonly service: string;
  readonly max: number;
  inFlight: number;
  readonly limiter: InFlightLimiter;
}

const kSlot = Symbol('gateway.inFlightSlot');
type WithSlot = ServerResponse & { [kSlot]?: Slot };

function releaseOnClose(this: WithSlot): void {
  const slot = this[kSlot];
  if (slot === undefined) return;
  this[kSlot] = undefined;
  slot.inFlight -= 1;
  slot.limiter.releaseOverall();
}

export interface InFlightLimiterOptions {
  /** Most requests in flight through the gateway (all services together). */
  readonly overall: number;
  /** Most requests in flight per service; a service not named here gets `overall`. */
  readonly perService: Readonly<Record<string, number>>;
}

export class InFlightLimiter {
  readonly #overallMax: number;
  #overall = 0;
  readonly #slots = new Map<string, Slot>();
  readonly #errorHeaders: Record<string, string> = { 'retry-after': String(OVERLOAD_RETRY_AFTER_SECONDS) };

  constructor(options: InFlightLimiterOptions) {
    this.#overallMax = options.overall;
    for (const [service, max] of Object.entries(options.perService)) {
      this.#slots.set(service, { service, max: Math.min(max, options.overall), inFlight: 0, limiter: this });
    }
  }

  /**
   * Take a slot for `service` until `res` closes, or throw GW_GATEWAY_OVERLOADED (503,
   * Retry-After) when the service or the gateway is at its bound. A proxied WebSocket holds
   * one for its whole life: `res` is then its upgraded socket (src/ws).
   */
  acquire(service: string, res: ServerResponse | Duplex): void {
    let slot = this.#slots.get(service);
    if (slot === undefined) {
      slot = { service, max: this.#overallMax, inFlight: 0, limiter: this };
      this.#slots.set(service, slot);
    }
    if (slot.inFlight >= slot.max) {
      throw new GatewayError('GW_GATEWAY_OVERLOADED', `The ${service} service has ${slot.max} requests in flight; retry shortly`, {
        headers: this.#errorHeaders,
      });
    }
    if (this.#overall >= this.#overallMax) {
      throw new GatewayError('GW_GATEWAY_OVERLOADED', undefined, { headers: this.#errorHeaders });
    }
    const r = res as unknown as WithSlot;
    if (r[kSlot] !== undefined) return; // already holds a slot (never twice for one response)
    slot.inFlight += 1;
    this.#overall += 1;
    r[kSlot] = slot;
    if (res.closed) releaseOnClose.call(r);
    // `on`, not `once`: no wrapper per request; 'close' comes once and the slot guards anyway.
    else res.on('close', releaseOnClose);
  }

  /** @internal released through the response's 'close' listener */
  releaseOverall(): void {
    this.#overall -= 1;
  }

  inFlight(service?: string): number {
    return service === undefined ? this.#overall : (this.#slots.get(service)?.inFlight ?? 0);
  }

  limit(service: string): number {
    return this.#slots.get(service)?.max ?? this.#overallMax;
  }
}
