import { GatewayError } from '../../src/errors.js';

/*
 * Who may hold this replica's long-lived MCP streams: the 2025 GET streams of sessions and the
 * 2026-07-28 `subscriptions/listen` streams. Nothing else of MCP stays in a replica's memory
 * between requests (sessions are records in the state store, every other request is served
 * and forgotten), so these caps bound what one caller can make a replica hold. The rules,
 * checked when a stream opens:
 *
 * - one principal holds at most `perPrincipal` streams;
 * - non-admin streams (anonymous ones included) from one client address hold at most
 *   `perAddress` (the address is the rate limiter's client key: IPv4, or the IPv6 /64);
 * - non-admin streams hold at most `max - adminReserved`: the rest is for admin-scoped
 *   principals, who therefore can always open one (within their own per-principal cap);
 * - all streams together hold at most `max`.
 *
 * At the per-principal or per-address cap the caller's own oldest stream is closed to make
 * room (a client whose connection died unnoticed reconnects at once); at the shared caps the
 * open is refused, 503 GW_MCP_TOO_MANY_STREAMS: nobody's stream is closed for someone else.
 */

export interface StreamLimits {
  readonly max: number;
  readonly perPrincipal: number;
  readonly perAddress: number;
  readonly adminReserved: number;
}

/** Who opens a stream. */
export interface StreamOwner {
  /** The principal's subject; null for an anonymous stream (MCP_REQUIRE_AUTH=false). */
  readonly subject: string | null;
  /** Client key of the address it came from. */
  readonly address: string;
  /** Admin-scoped principal: may use the reserved share, and is not capped per address. */
  readonly admin: boolean;
}

/** One held slot: a stream open on this replica. */
export interface StreamSlot {
  readonly owner: StreamOwner;
  /** How to close the stream when its slot is reclaimed for a newer stream of the same caller. */
  onReclaim(close: () => void): void;
  /** Give the slot back (idempotent). */
  release(): void;
}

const RETRY_AFTER = { 'retry-after': '30' } as const;

class Slot implements StreamSlot {
  #close: (() => void) | undefined;
  #released = false;

  constructor(
    readonly owner: StreamOwner,
    readonly openedAt: number,
    private readonly slots: StreamSlots,
  ) {}

  onReclaim(close: () => void): void {
    this.#close = close;
  }

  reclaim(): void {
    const close = this.#close;
    this.release();
    close?.();
  }

  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.slots.forget(this);
  }
}

export class StreamSlots {
  readonly #held = new Set<Slot>();
  readonly #limits: StreamLimits;
  #opened = 0;

  constructor(limits: StreamLimits) {
    this.#limits = limits;
  }

  /** Streams open now. */
  get size(): number {
    return this.#held.size;
  }

  /** Streams held by owners matching `filter`. */
  count(filter: (owner: StreamOwner) => boolean): number {
    let n = 0;
    for (const slot of this.#held) if (filter(slot.owner)) n += 1;
    return n;
  }

  /** A slot for a new stream of `owner`, after closing its own oldest where its own cap is reached; throws 503 GW_MCP_TOO_MANY_STREAMS. */
  acquire(owner: StreamOwner): StreamSlot {
    const limits = this.#limits;
    // Chosen for every cap first: nothing is closed when the open is refused.
    const reclaim = new Set<Slot>();
    const own = (o: StreamOwner) => o.subject === owner.subject && (owner.subject !== null || o.address === owner.address);
    if (owner.subject !== null) this.#makeRoom(reclaim, (o) => o.subject === owner.subject, limits.perPrincipal, own, 'principal');
    if (!owner.admin) {
      this.#makeRoom(reclaim, (o) => !o.admin && o.address === owner.address, limits.perAddress, own, 'address');
      this.#makeRoom(reclaim, (o) => !o.admin, limits.max - limits.adminReserved, undefined, 'shared');
    }
    this.#makeRoom(reclaim, () => true, limits.max, undefined, 'shared');
    for (const slot of reclaim) slot.reclaim();
    const slot = new Slot(owner, this.#opened++, this);
    this.#held.add(slot);
    return slot;
  }

  /** Called by a slot when it is released. */
  forget(slot: Slot): void {
    this.#held.delete(slot);
  }

  /**
   * While the streams in `group` (less those already chosen) hold `limit` slots, choose the
   * caller's own oldest ones to close (`own`, per-caller caps only); none left: refused.
   */
  #makeRoom(
    chosen: Set<Slot>,
    group: (o: StreamOwner) => boolean,
    limit: number,
    own: ((o: StreamOwner) => boolean) | undefined,
    kind: 'principal' | 'address' | 'shared',
  ): void {
    const members = [...this.#held].filter((s) => !chosen.has(s) && group(s.owner));
    const needed = members.length - limit + 1;
    if (needed <= 0) return;
    const victims = own === undefined ? [] : members.filter((s) => own(s.owner)).sort((a, b) => a.openedAt - b.openedAt);
    if (victims.length < needed) throw refusal(kind, this.#limits);
    for (const victim of victims.slice(0, needed)) chosen.add(victim);
  }
}

function refusal(kind: 'principal' | 'address' | 'shared', limits: StreamLimits): GatewayError {
  const message =
    kind === 'shared'
      ? undefined
      : kind === 'principal'
        ? `At most ${limits.perPrincipal} open MCP streams per principal`
        : `At most ${limits.perAddress} open MCP streams per client address`;
  return new GatewayError('GW_MCP_TOO_MANY_STREAMS', message, { headers: RETRY_AFTER });
}
