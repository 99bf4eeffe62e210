import { verify } from 'otplib';
import type { StateStore } from '../state/store.js';

export interface TotpCheck {
  readonly ok: boolean;
  readonly reason?: 'invalid' | 'replayed' | 'locked';
  /**
   * `locked`: seconds until the key may try again. `invalid` or `replayed`: set when this
   * failure locked the key (it may try again after that long).
   */
  readonly retryAfterSeconds?: number;
}

export interface TotpLockout {
  /** Wrong codes in a row before the key is locked. */
  readonly maxFailures: number;
  /** First lock; each further attempt doubles it. */
  readonly lockoutSeconds: number;
  readonly maxLockoutSeconds: number;
  /** The count of wrong codes is forgotten this long after the last attempt. */
  readonly failureMemorySeconds: number;
}

export interface TotpVerifierOptions extends TotpLockout {
  /** Where used codes and failures live: Redis with REDIS_URL, so every replica sees them. */
  readonly store: Pick<StateStore, 'increment' | 'deleteCounter' | 'claim' | 'release'>;
  readonly toleranceSeconds: number;
  /** Epoch milliseconds (tests). */
  readonly now?: () => number;
}

/** RFC 6238 period, as authenticator apps use it. */
const PERIOD_SECONDS = 30;

/**
 * RFC 6238 TOTP codes (otplib; 6 digits, 30 s, SHA-1 as authenticator apps use) with replay
 * protection and a lockout, both in the state store so they hold across replicas:
 *
 * - **Replay**: the time step of an accepted code is claimed per principal (SET NX PX), so
 *   exactly one request — on whichever replica — gets a token for it; the earlier steps
 *   still inside the tolerance window are claimed too, so no older code is accepted after a
 *   newer one.
 * - **Lockout**: every attempt increments the principal's counter first (atomic INCR), so
 *   concurrent guesses each get their own number. From the `maxFailures`-th attempt on, an
 *   attempt is checked only if it takes the principal's lock (SET NX PX, held
 *   `lockoutSeconds` x 2^(attempt - maxFailures), at most `maxLockoutSeconds`): one guess per
 *   lock period whatever the number of replicas or parallel requests; the others are refused
 *   with the lock's remaining time. A right code clears the counter and the lock.
 *
 * When Redis is unreachable the store answers from the replica's memory (per-replica limits),
 * as for rate limits.
 */
export class TotpVerifier {
  constructor(private readonly options: TotpVerifierOptions) {}

  async check(principal: string, secret: string, code: string): Promise<TotpCheck> {
    // Not a code at all: cannot be a right guess, costs nothing, counts for nothing.
    if (!/^\d{6}$/.test(code)) return { ok: false, reason: 'invalid' };
    const { store } = this.options;
    const failures = `totp:fail:${principal}`;
    const lock = `totp:lock:${principal}`;

    const attempt = await store.increment(failures, this.options.failureMemorySeconds * 1000);
    let lockedFor: number | undefined;
    if (attempt >= this.options.maxFailures) {
      const ms = this.lockoutMs(attempt);
      const gate = await store.claim(lock, ms);
      if (!gate.claimed) return { ok: false, reason: 'locked', retryAfterSeconds: seconds(gate.ttlMs) };
      lockedFor = seconds(ms);
    }
    const failed = (reason: 'invalid' | 'replayed'): TotpCheck => ({ ok: false, reason, ...(lockedFor !== undefined ? { retryAfterSeconds: lockedFor } : {}) });

    const epoch = Math.floor((this.options.now?.() ?? Date.now()) / 1000);
    const result = await verify({ secret, token: code, epoch, epochTolerance: this.options.toleranceSeconds });
    if (!result.valid || !('timeStep' in result) || typeof result.timeStep !== 'number') return failed('invalid');

    // A code lives (period + 2 x tolerance) at most: remember its step a little longer.
    const usedMs = (PERIOD_SECONDS * 3 + this.options.toleranceSeconds * 2) * 1000;
    const step = result.timeStep;
    if (!(await store.claim(`totp:used:${principal}:${step}`, usedMs)).claimed) return failed('replayed');
    const oldest = Math.floor((epoch - this.options.toleranceSeconds) / PERIOD_SECONDS);
    const earlier: Promise<unknown>[] = [];
    for (let s = Math.max(oldest, step - 10); s < step; s += 1) earlier.push(store.claim(`totp:used:${principal}:${s}`, usedMs));
    await Promise.all([...earlier, store.deleteCounter(failures), store.release(lock)]);
    return { ok: true };
  }

  /** How long the attempt numbered `attempt` holds the lock. */
  private lockoutMs(attempt: number): number {
    const { maxFailures, lockoutSeconds, maxLockoutSeconds } = this.options;
    return Math.min(lockoutSeconds * 2 ** Math.min(attempt - maxFailures, 30), maxLockoutSeconds) * 1000;
  }
}

const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));
