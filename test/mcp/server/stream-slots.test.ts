import { describe, expect, it } from 'vitest';
import { StreamSlots, type StreamOwner, type StreamSlot } from '../../../mcp/server/stream-slots.js';
import { GatewayError } from '../../../src/errors.js';

/* Who may hold a replica's long-lived MCP streams (2025 GET streams, 2026 listen streams). */

const limits = { max: 10, perPrincipal: 3, perAddress: 4, adminReserved: 2 };
const reader = (n: number, address = `10.0.0.${n}`): StreamOwner => ({ subject: `key:reader${n}`, address, admin: false });
const admin = (n: number): StreamOwner => ({ subject: `key:admin${n}`, address: '10.9.9.9', admin: true });
const anonymous = (address: string): StreamOwner => ({ subject: null, address, admin: false });

/** Open a stream for `owner`, recording when its slot is reclaimed. */
function open(slots: StreamSlots, owner: StreamOwner, closed: string[], name: string): StreamSlot {
  const slot = slots.acquire(owner);
  slot.onReclaim(() => closed.push(name));
  return slot;
}

const refused = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return err instanceof GatewayError ? [err.code, err.statusCode, err.headers['retry-after']] : err;
  }
  return 'not refused';
};

describe('MCP stream slots', () => {
  it('caps one principal: its next stream closes its own oldest, never another principal\'s', () => {
    const slots = new StreamSlots(limits);
    const closed: string[] = [];
    open(slots, reader(1), closed, 'r1-a');
    open(slots, reader(1), closed, 'r1-b');
    open(slots, reader(2), closed, 'r2-a');
    open(slots, reader(1), closed, 'r1-c');
    expect(closed).toEqual([]);
    open(slots, reader(1), closed, 'r1-d');
    expect(closed).toEqual(['r1-a']);
    expect(slots.count((o) => o.subject === 'key:reader1')).toBe(3);
    expect(slots.count((o) => o.subject === 'key:reader2')).toBe(1);
  });

  it('caps non-admin streams per address (anonymous ones too): a caller only closes its own, others are refused', () => {
    const slots = new StreamSlots({ ...limits, perPrincipal: 10 });
    const closed: string[] = [];
    for (let i = 0; i < 4; i++) open(slots, anonymous('10.1.1.1'), closed, `anon-${i}`);
    // Another anonymous client behind the same address takes the oldest anonymous one (it cannot tell them apart).
    open(slots, anonymous('10.1.1.1'), closed, 'anon-4');
    expect(closed).toEqual(['anon-0']);
    // A named principal from that address holds none of them: refused, and nothing is closed.
    expect(refused(() => slots.acquire(reader(7, '10.1.1.1')))).toEqual(['GW_MCP_TOO_MANY_STREAMS', 503, '30']);
    expect(closed).toEqual(['anon-0']);
    // An admin from that address is not capped per address.
    expect(() => slots.acquire({ ...admin(1), address: '10.1.1.1' })).not.toThrow();
  });

  it('many readers cannot take the admin reserve; an admin still gets a stream, and nobody\'s stream is closed for someone else', () => {
    const slots = new StreamSlots(limits);
    const closed: string[] = [];
    for (let i = 0; i < 8; i++) open(slots, reader(i), closed, `r${i}`);
    expect(refused(() => slots.acquire(reader(99)))).toEqual(['GW_MCP_TOO_MANY_STREAMS', 503, '30']);
    open(slots, admin(1), closed, 'a1');
    open(slots, admin(2), closed, 'a2');
    expect(slots.size).toBe(10);
    expect(refused(() => slots.acquire(admin(3)))).toEqual(['GW_MCP_TOO_MANY_STREAMS', 503, '30']);
    expect(closed).toEqual([]);
  });

  it('gives a slot back once (release is idempotent)', () => {
    const slots = new StreamSlots(limits);
    const slot = slots.acquire(reader(1));
    slot.release();
    slot.release();
    expect(slots.size).toBe(0);
    for (let i = 0; i < 3; i++) slots.acquire(reader(1));
    expect(slots.size).toBe(3);
  });
});
