/*
 * The failures of `unified-gateway model validate`, apart from the HuggingFace client so the
 * CLI can name them without loading @huggingface/inference (it is loaded only by `validate`).
 */

export type ValidatorErrorKind = 'config' | 'network' | 'auth' | 'rate-limit' | 'loading' | 'api' | 'output';

/** Exit codes of `unified-gateway model validate` per failure kind (0 is success, 1 a bad input file). */
export const VALIDATOR_EXIT_CODES: Readonly<Record<ValidatorErrorKind, number>> = {
  config: 2,
  network: 3,
  auth: 4,
  'rate-limit': 5,
  loading: 6,
  api: 7,
  output: 7,
};

export class ValidatorError extends Error {
  readonly kind: ValidatorErrorKind;
  readonly status?: number;
  constructor(kind: ValidatorErrorKind, message: string, status?: number) {
    super(message);
    this.name = 'ValidatorError';
    this.kind = kind;
    if (status !== undefined) this.status = status;
  }
  get exitCode(): number {
    return VALIDATOR_EXIT_CODES[this.kind];
  }
}
