import { createHash, timingSafeEqual } from 'node:crypto';
import type { Principal } from './principal.js';
import type { Scope } from './scopes.js';

export interface ApiKeyEntry {
  readonly name: string;
  /** Lowercase hex SHA-256 of the key; the key itself is never stored. */
  readonly sha256: string;
  readonly scopes: readonly Scope[];
}

export function sha256Hex(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex');
}

/**
 * API keys checked against their SHA-256 hashes in constant time: the presented key's
 * digest is compared with every entry (no early exit), so timing reveals neither which
 * entry matched nor how much of a digest did.
 */
export class ApiKeyStore {
  readonly #entries: { entry: ApiKeyEntry; digest: Buffer }[];

  constructor(entries: readonly ApiKeyEntry[]) {
    this.#entries = entries.map((entry) => ({ entry, digest: Buffer.from(entry.sha256, 'hex') }));
  }

  get size(): number {
    return this.#entries.length;
  }

  /** The entry a presented key belongs to, or undefined. */
  find(presented: string): ApiKeyEntry | undefined {
    const digest = createHash('sha256').update(presented, 'utf8').digest();
    let found: ApiKeyEntry | undefined;
    for (const { entry, digest: expected } of this.#entries) {
      if (timingSafeEqual(digest, expected) && found === undefined) found = entry;
    }
    return found;
  }

  principal(presented: string): Principal | undefined {
    const entry = this.find(presented);
    if (entry === undefined) return undefined;
    return { kind: 'api-key', subject: `key:${entry.name}`, keyName: entry.name, scopes: entry.scopes, mfa: false };
  }
}
