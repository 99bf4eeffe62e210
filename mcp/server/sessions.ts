import { randomBytes } from 'node:crypto';
import type { Keyv } from 'keyv';
import { z } from 'zod';
import { MAX_SUBSCRIBE_URI_LENGTH, MAX_SUBSCRIPTIONS_PER_SESSION } from './gateway-server.js';

/*
 * 2025 MCP sessions (`Mcp-Session-Id`, protocol versions up to 2025-11-25), kept as records in
 * the state store so that every replica serves every session the same way: no replica holds a
 * session in memory (each request is served by a fresh server instance, ./legacy.ts), so there
 * is nothing to adopt, no private SDK field to set, and nothing a replica's own sweep could
 * delete while another uses it.
 *
 * - A record holds the subject that opened the session (only that subject may use it), the
 *   protocol version it negotiated (each request's MCP-Protocol-Version must match it) and its
 *   resource subscriptions. It expires `idleMs` after it was last renewed; requests renew it
 *   (at most every idleMs/4 from one replica) and so does an open GET stream.
 * - Ending a session (DELETE) writes a tombstone before deleting the record: a renewal racing
 *   with the DELETE may write the record back, but a tombstoned session is never served again
 *   (the tombstone outlives any record written back).
 * - Records read from the store are parsed with zod: a malformed one is no session.
 * - While the store cannot answer (Redis away: `storeUp` false) this replica serves the
 *   sessions it has seen from its own copy (bounded), so its clients keep their sessions; a
 *   session created meanwhile is known to this replica only until Redis is back.
 */

/** Session ids the gateway makes: 32 random bytes, base64url (visible ASCII, as the spec asks). */
const SESSION_ID = /^[A-Za-z0-9_-]{43}$/;

export const sessionRecordSchema = z.strictObject({
  subject: z.string().max(512).nullable(),
  protocolVersion: z.string().min(1).max(32),
  createdAt: z.string().max(64),
  subscriptions: z.array(z.string().max(MAX_SUBSCRIBE_URI_LENGTH)).max(MAX_SUBSCRIPTIONS_PER_SESSION),
  /** What the client declared it answers (initialize capabilities): federated calls relay these requests to it. */
  answers: z.strictObject({ sampling: z.boolean(), elicitation: z.boolean(), roots: z.boolean() }).optional(),
});
export type SessionRecord = z.infer<typeof sessionRecordSchema>;

export interface SessionStoreOptions {
  readonly records: Keyv<unknown>;
  /** Tombstones of ended sessions. */
  readonly ended: Keyv<unknown>;
  /** A record expires this long after its last renewal. */
  readonly idleMs: number;
  readonly log?: { warn(obj: object, msg: string): void };
  readonly clock?: () => number;
  /** Whether the shared store answers (StateStore.up); default: always. */
  readonly storeUp?: () => boolean;
}

/** Sessions this replica remembers (renewal times, its own copies) at most; the oldest are forgotten first. */
const MAX_REMEMBERED = 10_000;

/** A bounded map that forgets its oldest entries. */
class Recent<V> extends Map<string, V> {
  override set(key: string, value: V): this {
    super.delete(key);
    super.set(key, value);
    if (this.size > MAX_REMEMBERED) this.delete(this.keys().next().value!);
    return this;
  }
}

export class SessionStore {
  readonly #options: SessionStoreOptions;
  /** When this replica last renewed each session's record. */
  readonly #renewed = new Recent<number>();
  /** This replica's copies of the records it saw (used while the store cannot answer), with their expiry. */
  readonly #copies = new Recent<{ record: SessionRecord; expiresAt: number }>();
  readonly #endedHere = new Recent<number>();

  constructor(options: SessionStoreOptions) {
    this.#options = options;
  }

  get idleMs(): number {
    return this.#options.idleMs;
  }

  /** A new session of `subject`, stored; returns its id. */
  async create(subject: string | null, protocolVersion: string, answers?: SessionRecord['answers']): Promise<string> {
    const id = randomBytes(32).toString('base64url');
    const record: SessionRecord = { subject, protocolVersion, createdAt: new Date(this.#now()).toISOString(), subscriptions: [], ...(answers ? { answers } : {}) };
    await this.#write(id, record);
    return id;
  }

  /** The session `id` when it exists, is not ended, and belongs to `subject`; otherwise undefined (as if it did not exist). */
  async find(id: string, subject: string | null): Promise<SessionRecord | undefined> {
    if (!SESSION_ID.test(id)) return undefined;
    const record = this.#storeUp() ? await this.#read(id) : this.#copy(id);
    return record !== undefined && record.subject === subject ? record : undefined;
  }

  async #read(id: string): Promise<SessionRecord | undefined> {
    let raw: unknown;
    let tombstone: unknown;
    try {
      [raw, tombstone] = await Promise.all([this.#options.records.get(id), this.#options.ended.get(id)]);
    } catch {
      return this.#copy(id);
    }
    if (tombstone !== undefined || raw === undefined) return undefined;
    const parsed = sessionRecordSchema.safeParse(raw);
    if (!parsed.success) {
      this.#options.log?.warn({ issues: parsed.error.issues.length }, 'mcp: ignored a malformed session record from the state store');
      return undefined;
    }
    this.#keep(id, parsed.data);
    return parsed.data;
  }

  #copy(id: string): SessionRecord | undefined {
    const copy = this.#copies.get(id);
    if (copy === undefined || this.#endedHere.has(id) || copy.expiresAt <= this.#now()) return undefined;
    return copy.record;
  }

  #keep(id: string, record: SessionRecord): void {
    this.#copies.set(id, { record, expiresAt: this.#now() + this.#options.idleMs });
  }

  #storeUp(): boolean {
    return this.#options.storeUp?.() ?? true;
  }

  /** Keep the record alive: written again when this replica last did so more than idleMs/4 ago. */
  touch(id: string, record: SessionRecord): void {
    const now = this.#now();
    const last = this.#renewed.get(id);
    if (last !== undefined && now - last <= this.#options.idleMs / 4) return;
    void this.#write(id, record).catch((err: unknown) => this.#options.log?.warn({ err: (err as Error).message }, 'mcp: renewing a session record failed'));
  }

  /** Replace the session's subscriptions. */
  async setSubscriptions(id: string, record: SessionRecord, subscriptions: readonly string[]): Promise<SessionRecord> {
    const next: SessionRecord = { ...record, subscriptions: [...subscriptions] };
    await this.#write(id, next);
    return next;
  }

  /** End the session everywhere: tombstone first, then the record. */
  async end(id: string): Promise<void> {
    this.#renewed.delete(id);
    this.#copies.delete(id);
    this.#endedHere.set(id, this.#now());
    await this.#options.ended.set(id, true, this.#options.idleMs * 2);
    await this.#options.records.delete(id);
  }

  async #write(id: string, record: SessionRecord): Promise<void> {
    this.#renewed.set(id, this.#now());
    this.#keep(id, record);
    await this.#options.records.set(id, record, this.#options.idleMs);
  }

  #now(): number {
    return (this.#options.clock ?? Date.now)();
  }
}
