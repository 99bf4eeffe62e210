/**
 * Tokens that verified recently, so a client that sends the same bearer token on every
 * request pays for the signature check once, not per request (an HS256 check through
 * WebCrypto costs tens of microseconds; a map lookup, well under one). Entries never
 * outlive the token's `exp` and are kept at most `maxAgeMs`, so a key removed from the JWKS
 * stops being honoured within that time. Bounded: the oldest entries go first.
 */
export class VerifiedTokenCache<T> {
  readonly #entries = new Map<string, { value: T; validUntil: number }>();

  constructor(private readonly options: { maxEntries: number; maxAgeMs: number; now?: () => number }) {}

  get(token: string): T | undefined {
    const entry = this.#entries.get(token);
    if (entry === undefined) return undefined;
    if ((this.options.now?.() ?? Date.now()) >= entry.validUntil) {
      this.#entries.delete(token);
      return undefined;
    }
    return entry.value;
  }

  /** `expiresAtMs`: when the token itself stops being valid (exp plus clock tolerance). */
  set(token: string, value: T, expiresAtMs: number | undefined): void {
    const now = this.options.now?.() ?? Date.now();
    const validUntil = Math.min(expiresAtMs ?? Infinity, now + this.options.maxAgeMs);
    if (validUntil <= now) return;
    if (this.#entries.size >= this.options.maxEntries) {
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
    this.#entries.set(token, { value, validUntil });
  }

  get size(): number {
    return this.#entries.size;
  }
}
