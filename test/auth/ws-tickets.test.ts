import { describe, expect, it } from 'vitest';
import { bearerFromProtocols, isCredentialProtocol, offeredProtocols } from '../../src/auth/credentials.js';
import { WsTickets } from '../../src/auth/ws-tickets.js';
import type { Principal } from '../../src/auth/principal.js';
import { MemoryStore } from '../../src/state/memory.js';

const alice: Principal = { kind: 'jwt', subject: 'alice', scopes: ['read', 'write'], mfa: true };

function tickets(now: { t: number }, store = new MemoryStore(), secret = 'ticket-secret-0123456789abcdef') {
  return new WsTickets({ secret, ttlSeconds: 30, store, now: () => now.t });
}

describe('WebSocket tickets', () => {
  it('carry the principal, are single use, and expire after ttlSeconds (injected clock)', async () => {
    const clock = { t: 1_000_000 };
    const t = tickets(clock);
    const first = t.issue(alice);
    expect(await t.redeem(first)).toEqual(alice);
    await expect(t.redeem(first)).rejects.toMatchObject({ code: 'GW_AUTH_TICKET_INVALID', message: expect.stringContaining('already used') });
    const late = t.issue(alice);
    clock.t += 30_000;
    await expect(t.redeem(late)).rejects.toMatchObject({ code: 'GW_AUTH_TICKET_INVALID', message: expect.stringContaining('expired') });
  });

  it('two replicas sharing the store and the secret: a ticket is good on either, once', async () => {
    const clock = { t: 5_000 };
    const store = new MemoryStore();
    const a = tickets(clock, store);
    const b = tickets(clock, store);
    const ticket = a.issue(alice);
    expect((await b.redeem(ticket)).subject).toBe('alice');
    await expect(a.redeem(ticket)).rejects.toMatchObject({ code: 'GW_AUTH_TICKET_INVALID' });
  });

  it('refuses tickets signed with another secret, altered payloads and garbage', async () => {
    const clock = { t: 5_000 };
    const mine = tickets(clock);
    const other = tickets(clock, new MemoryStore(), 'another-secret-0123456789abcdef');
    await expect(mine.redeem(other.issue(alice))).rejects.toMatchObject({ message: expect.stringContaining('signature') });
    const [body, mac] = mine.issue(alice).split('.') as [string, string];
    const payload = JSON.parse(Buffer.from(body, 'base64url').toString()) as Record<string, unknown>;
    const escalated = Buffer.from(JSON.stringify({ ...payload, scopes: ['admin'] })).toString('base64url');
    await expect(mine.redeem(`${escalated}.${mac}`)).rejects.toMatchObject({ message: expect.stringContaining('signature') });
    for (const garbage of ['', '.', 'abc', 'a.b.c', 'x'.repeat(5000)]) await expect(mine.redeem(garbage)).rejects.toMatchObject({ code: 'GW_AUTH_TICKET_INVALID' });
  });
});

describe('credentials in Sec-WebSocket-Protocol', () => {
  it('finds the bearer.<token> protocol among the offered ones, and knows which protocols only carry credentials', () => {
    expect(offeredProtocols('bearer, bearer.abc.def.ghi ,chat')).toEqual(['bearer', 'bearer.abc.def.ghi', 'chat']);
    expect(bearerFromProtocols(['chat', 'bearer.tok-1'])).toBe('tok-1');
    expect(bearerFromProtocols('bearer., chat')).toBeUndefined();
    expect(bearerFromProtocols(undefined)).toBeUndefined();
    expect(['bearer', 'bearer.x', 'chat', 'bearerx'].map(isCredentialProtocol)).toEqual([true, true, false, false]);
  });
});
