import { describe, expect, it } from 'vitest';
import { SessionSlots, type SessionLimits, type SessionSlot, type SlotOwner } from '../../mcp/server/session-slots.js';
import { GatewayError } from '../../src/errors.js';

/* Who may hold the MCP session slots: per principal, per address, the admin reserve, reclaiming idle sessions. */

const LIMITS: SessionLimits = { max: 10, perPrincipal: 3, perAddress: 4, adminReserved: 3, pressureIdleMs: 60_000 };

function harness(limits: SessionLimits = LIMITS) {
  let now = 1_000_000;
  const slots = new SessionSlots(limits, () => now);
  const closed: string[] = [];
  /** Open a session: the slot is busy while its initialize runs, then idle (`keepBusy`: a stream stays open). */
  const open = (name: string, owner: SlotOwner, keepBusy = false): SessionSlot => {
    const slot = slots.acquire(owner);
    slot.onReclaim(() => closed.push(name));
    if (!keepBusy) slot.end();
    return slot;
  };
  const refusal = (owner: SlotOwner): GatewayError => {
    try {
      slots.acquire(owner);
    } catch (err) {
      if (err instanceof GatewayError) return err;
      throw err;
    }
    throw new Error('expected a refusal');
  };
  return {
    slots,
    open,
    refusal,
    closed,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

const reader = (n: number, address = `192.0.2.${n}`): SlotOwner => ({ subject: `reader-${n}`, address, admin: false });
const admin = (n: number, address = '198.51.100.1'): SlotOwner => ({ subject: `admin-${n}`, address, admin: true });
const anonymous = (address: string): SlotOwner => ({ subject: null, address, admin: false });

describe('MCP session slots', () => {
  it('many read principals cannot take the admin reserve: non-admins stop at max - reserved, an admin still gets a slot', () => {
    const h = harness();
    for (let n = 0; n < 7; n++) h.open(`r${n}`, reader(n), true);
    const full = h.refusal(reader(8));
    expect([full.code, full.statusCode, full.headers['retry-after']]).toEqual(['GW_MCP_TOO_MANY_SESSIONS', 503, '30']);
    h.open('a1', admin(1), true);
    h.open('a2', admin(1), true);
    h.open('a3', admin(2), true);
    expect(h.slots.size).toBe(10);
    // The total is reached: nobody else, admins included, while every session is busy.
    expect(h.refusal(admin(3)).code).toBe('GW_MCP_TOO_MANY_SESSIONS');
    expect(h.closed).toEqual([]);
  });

  it('caps one principal at perPrincipal: its own least recently used idle session makes room, busy ones do not', () => {
    const h = harness();
    h.open('s1', reader(1));
    h.advance(10);
    h.open('s2', reader(1));
    h.advance(10);
    const s3 = h.open('s3', reader(1), true);
    h.open('s4', reader(1));
    expect(h.closed).toEqual(['s1']);
    expect(h.slots.count((o) => o.subject === 'reader-1')).toBe(3);
    // s2 and s4 idle, s3 busy: the next open takes s2, then s4; then only the busy one is left.
    h.open('s5', reader(1), true);
    h.open('s6', reader(1), true);
    expect(h.closed).toEqual(['s1', 's2', 's4']);
    const refused = h.refusal(reader(1));
    expect(refused.message).toMatch(/At most 3 open MCP sessions per principal/);
    // Another principal is not affected, and nothing of the refused open was closed.
    h.open('other', reader(2));
    expect(h.closed).toEqual(['s1', 's2', 's4']);
    // When the stream of s3 ends, it can make room again.
    s3.end();
    h.open('s7', reader(1));
    expect(h.closed.at(-1)).toBe('s3');
  });

  it('caps non-admin sessions per client address, for anonymous ones too; a principal does not reclaim another principal\'s session', () => {
    const h = harness({ ...LIMITS, max: 20 });
    const address = '203.0.113.9';
    h.open('x1', reader(1, address));
    h.open('x2', reader(2, address));
    h.open('x3', reader(2, address));
    h.open('x4', reader(3, address));
    // The address holds 4 non-admin sessions, none of reader 4.
    const refused = h.refusal(reader(4, address));
    expect(refused.message).toMatch(/At most 4 open MCP sessions per client address/);
    // Reader 2 trades its own idle one.
    h.open('x5', reader(2, address));
    expect(h.closed).toEqual(['x2']);
    // Admins are not capped per address (they are per principal).
    h.open('a1', admin(1, address), true);
    // Anonymous sessions: one address cannot hold more than 4, whatever it does; another address can still open.
    for (let i = 0; i < 50; i++) h.open(`anon${i}`, anonymous('198.18.0.1'));
    expect(h.slots.count((o) => o.address === '198.18.0.1')).toBe(4);
    h.open('elsewhere', anonymous('198.18.0.2'));
    expect(h.slots.count((o) => o.subject === null)).toBe(5);
  });

  it('under pressure, sessions idle past pressureIdleMs are reclaimed for others; non-admins never take admin sessions', () => {
    const h = harness();
    for (let n = 0; n < 7; n++) h.open(`r${n}`, reader(n));
    h.open('a1', admin(1));
    h.advance(30_000);
    // Idle, but not for long enough.
    expect(h.refusal(reader(9)).code).toBe('GW_MCP_TOO_MANY_SESSIONS');
    h.advance(30_000);
    h.open('r9', reader(9));
    expect(h.closed).toEqual(['r0']);
    // Fill the total with admin sessions, then let everything idle: a reader may take a reader's slot, not an admin's.
    h.open('a2', admin(2));
    h.open('a3', admin(2));
    h.advance(120_000);
    h.open('r10', reader(10));
    expect(h.closed.at(-1)).toMatch(/^r/);
    for (let i = 0; i < 6; i++) h.open(`more${i}`, reader(20 + i));
    expect(h.closed.filter((c) => c.startsWith('a'))).toEqual([]);
    // An admin at the total takes the least recently used idle session, whoever holds it.
    h.advance(120_000);
    h.open('a4', admin(4));
    expect(h.closed.at(-1)).toBe('a1');
  });

  it('a slot is given back once (release is idempotent) and a refused open changes nothing', () => {
    const h = harness({ ...LIMITS, max: 2, adminReserved: 1 });
    const s = h.open('s', reader(1), true);
    expect(h.refusal(reader(2)).code).toBe('GW_MCP_TOO_MANY_SESSIONS');
    expect(h.slots.size).toBe(1);
    s.release();
    s.release();
    expect(h.slots.size).toBe(0);
    h.open('t', reader(2));
    expect(h.slots.size).toBe(1);
  });
});
