import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { EVENT_TYPES, typeFilter } from '../../src/ws/events.js';
import { FIRST_OFFERED, SELECTED_PROTOCOL, selectProtocol } from '../../src/ws/protocols.js';
import { withoutTicket } from '../../src/ws/proxy.js';
import { closeCodeLabel, sendableCloseCode } from '../../src/ws/relay.js';

const request = (marks: Record<symbol, unknown> = {}) => marks as unknown as IncomingMessage;

describe('close codes', () => {
  it('knows which codes may be sent in a close frame', () => {
    expect([1000, 1001, 1008, 1011, 1014, 3000, 4001, 4999].every(sendableCloseCode)).toBe(true);
    expect([999, 1004, 1005, 1006, 1015, 2000, 2999, 5000].some(sendableCloseCode)).toBe(false);
  });
  it('bounds the metric label to the standard codes and two application classes', () => {
    expect([1000, 1009, 1015, 3001, 4001, 4999, 2500, 0].map(closeCodeLabel)).toEqual(['1000', '1009', '1015', '3xxx', '4xxx', '4xxx', 'other', 'other']);
  });
});

describe('subprotocol answered to the client', () => {
  it("the upstream's choice when the client offered it; never a bearer.<token>; else the bearer marker, else none", () => {
    expect(selectProtocol(new Set(['bearer', 'bearer.t', 'chat']), request({ [SELECTED_PROTOCOL]: 'chat' }))).toBe('chat');
    expect(selectProtocol(new Set(['chat']), request({ [SELECTED_PROTOCOL]: 'other' }))).toBe(false);
    expect(selectProtocol(new Set(['bearer.t']), request({ [SELECTED_PROTOCOL]: 'bearer.t' }))).toBe(false);
    expect(selectProtocol(new Set(['bearer', 'bearer.t']), request())).toBe('bearer');
    expect(selectProtocol(new Set(['bearer.t', 'events.v1']), request({ [FIRST_OFFERED]: true }))).toBe('events.v1');
  });
});

describe('/v1/events type filter', () => {
  it('keeps the named types and families, refuses unknown ones', () => {
    expect(EVENT_TYPES).toEqual(expect.arrayContaining(['traffic.shifted', 'service.health', 'breaker.state', 'client.blocked', 'model.promoted']));
    expect(typeFilter(undefined)).toBeUndefined();
    const keep = typeFilter('traffic.shifted, breaker.*')!;
    expect(['traffic.shifted', 'breaker.state', 'service.health', 'model.promoted'].map(keep)).toEqual([true, true, false, false]);
    expect(() => typeFilter('traffic.nope')).toThrow(/Unknown event type/);
    expect(() => typeFilter('nothing.*')).toThrow(/Unknown event type/);
    expect(() => typeFilter(['a', 'b'])).toThrow(/one comma-separated list/);
  });
});

describe('the URL sent upstream', () => {
  it('loses every ticket parameter and keeps the others byte for byte', () => {
    expect(withoutTicket('/v1/twin/x?ticket=abc')).toBe('/v1/twin/x');
    expect(withoutTicket('/v1/twin/x?a=b%20c&ticket=abc&d=%2F+e')).toBe('/v1/twin/x?a=b%20c&d=%2F+e');
    expect(withoutTicket('/v1/twin/x?%74icket=1&ticket=2&tickets=3')).toBe('/v1/twin/x?tickets=3');
    expect(withoutTicket('/v1/twin/x?q=ticket')).toBe('/v1/twin/x?q=ticket');
    expect(withoutTicket('/v1/twin/x')).toBe('/v1/twin/x');
  });
});
