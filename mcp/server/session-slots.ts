import { GatewayError } from '../../src/errors.js';

/*
 * Who may hold this replica's MCP session slots. A session lives in memory until it ends or
 * goes idle, so whoever may connect could otherwise fill them all (five read keys x 20
 * sessions did, and admins then got 503 for half an hour). The rules, checked when a
 * session opens (or is adopted from another replica):
 *
 * - one principal holds at most `perPrincipal` sessions;
 * - non-admin sessions (anonymous ones included) from one client address hold at most
 *   `perAddress` (the address is the rate limiter's client key: IPv4, or the IPv6 /64);
 * - non-admin sessions hold at most `max - adminReserved`: the rest is for admin-scoped
 *   principals, who therefore can always open one (within their own per-principal cap);
 * - all sessions together hold at most `max`.
 *
 * At a cap, the caller's own least recently used idle session (no request in flight, no
 * stream open) in the full group is closed to make room, so a client that forgets to end
 * its sessions is not locked out by itself; at the non-admin or total cap, a session of
 * anyone else idle for `pressureIdleMs` is closed instead (non-admin callers only reclaim
 * non-admin sessions). Otherwise the open is refused: 503 GW_MCP_TOO_MANY_SESSIONS.
 * Sessions with an open stream are never reclaimed, so a client holding them keeps them,
 * bounded by the caps above.
 */

export interface SessionLimits {
  readonly max: number;
  readonly perPrincipal: number;
  readonly perAddress: number;
  readonly adminReserved: number;
  /** Idle this long, a session may be reclaimed for anyone once a shared cap is reached. */
  readonly pressureIdleMs: number;
}

/** Who opens a session. */
export interface SlotOwner {
  /** The principal's subject; null for an anonymous session (MCP_REQUIRE_AUTH=false). */
  readonly subject: string | null;
  /** Client key of the address it came from. */
  readonly address: string;
  /** Admin-scoped principal: may use the reserved share, and is not capped per address. */
  readonly admin: boolean;
}

/** One held slot: a session being set up or open. */
export interface SessionSlot {
  readonly owner: SlotOwner;
  /** Last time a request of the session started or ended. */
  readonly lastSeen: number;
  /** Requests of the session in flight (an SSE stream included); the slot is busy while > 0. */
  readonly busy: number;
  /** A request of the session starts: busy until `end` is called. */
  begin(): void;
  end(): void;
  /** How to close the session when its slot is reclaimed (set once the session exists). */
  onReclaim(close: () => void): void;
  /** Give the slot back (idempotent). */
  release(): void;
}

type Refusal = 'principal' | 'address' | 'shared';

const RETRY_AFTER = { 'retry-after': '30' } as const;

function refusalError(kind: Refusal, limits: SessionLimits): GatewayError {
  const message =
    kind === 'principal'
      ? `At most ${limits.perPrincipal} open MCP sessions per principal, each in use; end one (DELETE /mcp) or wait for it to expire`
      : kind === 'address'
        ? `At most ${limits.perAddress} open MCP sessions per client address, each in use; end one (DELETE /mcp) or wait for it to expire`
        : undefined;
  return new GatewayError('GW_MCP_TOO_MANY_SESSIONS', message, { headers: RETRY_AFTER });
}

class Slot implements SessionSlot {
  lastSeen: number;
  busy = 0;
  #close: (() => void) | undefined;
  #released = false;

  constructor(
    readonly owner: SlotOwner,
    private readonly slots: SessionSlots,
    private readonly clock: () => number,
  ) {
    this.lastSeen = clock();
  }

  begin(): void {
    this.busy += 1;
    this.lastSeen = this.clock();
  }

  end(): void {
    this.busy = Math.max(0, this.busy - 1);
    this.lastSeen = this.clock();
  }

  onReclaim(close: () => void): void {
    this.#close = close;
  }

  /** Whether this slot can be closed now (its session exists and nothing of it is in flight). */
  get idle(): boolean {
    return this.busy === 0 && this.#close !== undefined && !this.#released;
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

export class SessionSlots {
  readonly #held = new Set<Slot>();
  readonly #limits: SessionLimits;
  readonly #clock: () => number;

  constructor(limits: SessionLimits, clock: () => number = Date.now) {
    this.#limits = limits;
    this.#clock = clock;
  }

  /** Slots held now (sessions open or being set up). */
  get size(): number {
    return this.#held.size;
  }

  /** Slots held by sessions matching `filter`. */
  count(filter: (owner: SlotOwner) => boolean): number {
    let n = 0;
    for (const slot of this.#held) if (filter(slot.owner)) n += 1;
    return n;
  }

  /**
   * A slot for a new session of `owner` (busy until the caller's `end`), after making room
   * where a cap is reached; throws 503 GW_MCP_TOO_MANY_SESSIONS when there is none.
   */
  acquire(owner: SlotOwner): SessionSlot {
    const limits = this.#limits;
    const own = (o: SlotOwner) => o.subject === owner.subject && (owner.subject !== null || o.address === owner.address);
    // Sessions to reclaim, chosen for every cap first: nothing is closed when the open is refused.
    const reclaim = new Set<Slot>();
    const room = (group: (o: SlotOwner) => boolean, limit: number, shared: boolean, kind: Refusal) => this.#makeRoom(owner, reclaim, { group, limit, own, shared, kind });
    if (owner.subject !== null) room((o) => o.subject === owner.subject, limits.perPrincipal, false, 'principal');
    if (!owner.admin) {
      room((o) => !o.admin && o.address === owner.address, limits.perAddress, false, 'address');
      room((o) => !o.admin, limits.max - limits.adminReserved, true, 'shared');
    }
    room(() => true, limits.max, true, 'shared');
    for (const slot of reclaim) slot.reclaim();
    const slot = new Slot(owner, this, this.#clock);
    slot.begin();
    this.#held.add(slot);
    return slot;
  }

  /** Called by a slot when it is released. */
  forget(slot: Slot): void {
    this.#held.delete(slot);
  }

  /**
   * While the sessions in `group` (less those already chosen) hold `limit` slots, choose one
   * more to reclaim: the caller's own least recently used idle one, else (`shared` caps only)
   * the least recently used one idle past pressureIdleMs that the caller may take (non-admins
   * only take non-admin sessions); none: the open is refused.
   */
  #makeRoom(
    owner: SlotOwner,
    chosen: Set<Slot>,
    cap: { group: (o: SlotOwner) => boolean; limit: number; own: (o: SlotOwner) => boolean; shared: boolean; kind: Refusal },
  ): void {
    const members = [...this.#held].filter((s) => !chosen.has(s) && cap.group(s.owner));
    if (members.length < cap.limit) return;
    const idle = members.filter((s) => s.idle).sort((a, b) => a.lastSeen - b.lastSeen);
    const cutoff = this.#clock() - this.#limits.pressureIdleMs;
    const takeable = (s: Slot) => cap.shared && s.lastSeen <= cutoff && (owner.admin || !s.owner.admin);
    const victims = [...idle.filter((s) => cap.own(s.owner)), ...idle.filter((s) => !cap.own(s.owner) && takeable(s))];
    const needed = members.length - cap.limit + 1;
    if (victims.length < needed) throw refusalError(cap.kind, this.#limits);
    for (const victim of victims.slice(0, needed)) chosen.add(victim);
  }
}
