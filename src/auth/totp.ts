import { verify } from 'otplib';

export interface TotpCheck {
  readonly ok: boolean;
  readonly reason?: 'invalid' | 'replayed';
}

/**
 * RFC 6238 TOTP codes (otplib; 6 digits, 30 s, SHA-1 as authenticator apps use) with replay
 * protection: a code's time step is remembered per principal and only later steps are
 * accepted, so a code seen once (even a still-valid one) is refused.
 */
export class TotpVerifier {
  /** Last accepted time step per principal. */
  readonly #lastStep = new Map<string, number>();

  constructor(private readonly options: { toleranceSeconds: number; now?: () => number }) {}

  async check(principal: string, secret: string, code: string): Promise<TotpCheck> {
    if (!/^\d{6}$/.test(code)) return { ok: false, reason: 'invalid' };
    const epoch = Math.floor((this.options.now?.() ?? Date.now()) / 1000);
    const last = this.#lastStep.get(principal);
    const options = { secret, token: code, epoch, epochTolerance: this.options.toleranceSeconds };
    const fresh = await verify(last === undefined ? options : { ...options, afterTimeStep: last });
    if (!fresh.valid) {
      // Tell a replay apart from a wrong code, for the audit log and a clearer error.
      if (last !== undefined && (await verify(options)).valid) return { ok: false, reason: 'replayed' };
      return { ok: false, reason: 'invalid' };
    }
    if ('timeStep' in fresh && typeof fresh.timeStep === 'number') this.#lastStep.set(principal, fresh.timeStep);
    return { ok: true };
  }
}
