import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { GatewayError } from '../errors.js';
import type { StateStore } from '../state/store.js';
import type { Principal } from './principal.js';
import { SCOPES } from './scopes.js';

/*
 * Single-use, short-lived tickets for browsers opening a WebSocket (they cannot send an
 * Authorization header on the upgrade). POST /auth/ws-ticket, authenticated as usual, returns
 * one; the page connects to `wss://.../path?ticket=<t>` within `ttlSeconds`. A long-lived
 * token never appears in a URL (and so never in an access log or a Referer).
 *
 * The ticket carries the principal, signed (HMAC-SHA256 with a key derived from the JWT
 * secret, so every replica sharing JWT_SECRET_KEY can check it); single use is a claim on
 * its nonce in the state store (SET NX, shared across replicas with Redis). Hand-written
 * rather than a JWT: a JWT would also be accepted as a bearer token on every HTTP route;
 * this format is accepted only as a ticket.
 */

const payloadSchema = z.strictObject({
  v: z.literal(1),
  kind: z.enum(['jwt', 'api-key']),
  sub: z.string().min(1).max(512),
  key: z.string().min(1).max(128).optional(),
  scopes: z.array(z.enum(SCOPES)).max(3),
  mfa: z.boolean(),
  exp: z.number().int().positive(),
  nonce: z.string().regex(/^[A-Za-z0-9_-]{16,64}$/),
});

/** Longest ticket accepted (a principal's subject is bounded above). */
const MAX_TICKET_CHARS = 2048;

export interface WsTicketsOptions {
  /** The gateway's JWT secret (the ticket key is derived from it). */
  readonly secret: string;
  readonly ttlSeconds: number;
  readonly store: Pick<StateStore, 'claim'>;
  /** Epoch milliseconds (tests). */
  readonly now?: () => number;
}

export class WsTickets {
  readonly #key: Buffer;
  readonly #options: WsTicketsOptions;

  constructor(options: WsTicketsOptions) {
    this.#options = options;
    this.#key = createHmac('sha256', options.secret).update('unified-gateway ws-ticket v1').digest();
  }

  get ttlSeconds(): number {
    return this.#options.ttlSeconds;
  }

  issue(principal: Principal): string {
    const now = (this.#options.now ?? Date.now)();
    const payload: z.infer<typeof payloadSchema> = {
      v: 1,
      kind: principal.kind,
      sub: principal.subject,
      ...(principal.keyName !== undefined ? { key: principal.keyName } : {}),
      scopes: [...principal.scopes],
      mfa: principal.mfa,
      exp: now + this.#options.ttlSeconds * 1000,
      nonce: randomBytes(18).toString('base64url'),
    };
    const body = Buffer.from(JSON.stringify(payload)).toString('base64url');
    return `${body}.${this.#sign(body).toString('base64url')}`;
  }

  /** The ticket's principal; throws GW_AUTH_TICKET_INVALID when it is not valid now or was used. */
  async redeem(ticket: string): Promise<Principal> {
    const invalid = (why: string) => new GatewayError('GW_AUTH_TICKET_INVALID', `The WebSocket ticket is not valid: ${why}`);
    if (ticket.length > MAX_TICKET_CHARS) throw invalid('malformed');
    const dot = ticket.indexOf('.');
    if (dot <= 0) throw invalid('malformed');
    const body = ticket.slice(0, dot);
    const mac = Buffer.from(ticket.slice(dot + 1), 'base64url');
    const expected = this.#sign(body);
    if (mac.length !== expected.length || !timingSafeEqual(mac, expected)) throw invalid('signature');
    let json: unknown;
    try {
      json = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
    } catch {
      throw invalid('malformed');
    }
    const parsed = payloadSchema.safeParse(json);
    if (!parsed.success) throw invalid('malformed');
    const p = parsed.data;
    const remainingMs = p.exp - (this.#options.now ?? Date.now)();
    if (remainingMs <= 0) throw invalid('expired');
    // Remembered as long as it could still be presented: the first redemption anywhere wins.
    const { claimed } = await this.#options.store.claim(`ws-ticket:${p.nonce}`, remainingMs + 1000);
    if (!claimed) throw invalid('already used');
    return { kind: p.kind, subject: p.sub, ...(p.key !== undefined ? { keyName: p.key } : {}), scopes: p.scopes, mfa: p.mfa };
  }

  #sign(body: string): Buffer {
    return createHmac('sha256', this.#key).update(body).digest();
  }
}
