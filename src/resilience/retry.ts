import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { serviceRetriesSchema } from '../config/schema.js';

/*
 * Retries of upstream calls (src/proxy/exchange.ts, where they happen):
 *  - only idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE) or requests that carry an
 *    Idempotency-Key;
 *  - only while nothing has been sent to the client (decided on the upstream's status line,
 *    before its body is streamed on);
 *  - only when the request body can be sent again: none, or the buffered JSON body (a
 *    streamed body is consumed by the first attempt);
 *  - only for failures another attempt may cure: connection errors, invalid responses and
 *    the configured 5xx statuses; never timeouts (the deadline covers all attempts);
 *  - exponential backoff with jitter, and a budget per service: retries at most
 *    `budgetPercent` of the requests in a rolling window (plus a small floor so a quiet
 *    service can still retry).
 */

/**
 * May this request go out a second time (to the same host or, as a fallback, another
 * service)? Idempotent method or Idempotency-Key, and a body that can be resent.
 */
export function maySendAgain(method: string, headers: IncomingHttpHeaders, body: Buffer | Readable | null): boolean {
  if (!IDEMPOTENT.has(method) && headers['idempotency-key'] === undefined) return false;
  return body === null || Buffer.isBuffer(body);
}

export interface RetryConfig {
  /** Retries after the first attempt (0: never retry). */
  readonly maxRetries: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /** Upstream statuses retried (connection errors always are). */
  readonly onStatuses: readonly number[];
  /** Retries allowed as a share of requests over the window, in percent. */
  readonly budgetPercent: number;
  /** Retries always allowed per window, whatever the share. */
  readonly budgetMinRetries: number;
  readonly budgetWindowMs: number;
}

/** The defaults of `services.<name>.retries` (one place: the config schema). */
export const DEFAULT_RETRY_CONFIG: RetryConfig = Object.freeze(serviceRetriesSchema.parse({}));

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);
const BUCKETS = 10;

/**
 * Requests and retries over a rolling window of BUCKETS buckets, rotated lazily on use (no
 * timer, so thousands of services cost nothing while idle).
 */
export class RetryBudget {
  readonly #ratio: number;
  readonly #minRetries: number;
  readonly #bucketMs: number;
  readonly #requests = new Float64Array(BUCKETS);
  readonly #retries = new Float64Array(BUCKETS);
  #requestSum = 0;
  #retrySum = 0;
  #bucket = 0;
  #bucketEnds: number;
  readonly #now: () => number;

  constructor(config: Pick<RetryConfig, 'budgetPercent' | 'budgetMinRetries' | 'budgetWindowMs'>, now: () => number = Date.now) {
    this.#ratio = config.budgetPercent / 100;
    this.#minRetries = config.budgetMinRetries;
    this.#bucketMs = Math.max(1, Math.floor(config.budgetWindowMs / BUCKETS));
    this.#now = now;
    this.#bucketEnds = now() + this.#bucketMs;
  }

  #rotate(): void {
    const now = this.#now();
    if (now < this.#bucketEnds) return;
    const steps = Math.min(BUCKETS, Math.floor((now - this.#bucketEnds) / this.#bucketMs) + 1);
    for (let i = 0; i < steps; i++) {
      this.#bucket = (this.#bucket + 1) % BUCKETS;
      this.#requestSum -= this.#requests[this.#bucket]!;
      this.#retrySum -= this.#retries[this.#bucket]!;
      this.#requests[this.#bucket] = 0;
      this.#retries[this.#bucket] = 0;
    }
    this.#bucketEnds += Math.floor((now - this.#bucketEnds) / this.#bucketMs + 1) * this.#bucketMs;
  }

  /** Count one request (its first attempt). */
  recordRequest(): void {
    this.#rotate();
    this.#requests[this.#bucket]! += 1;
    this.#requestSum += 1;
  }

  /** Take one retry from the budget; false when the window's share is used up. */
  tryRetry(): boolean {
    this.#rotate();
    if (this.#retrySum >= Math.max(this.#minRetries, Math.floor(this.#requestSum * this.#ratio))) return false;
    this.#retries[this.#bucket]! += 1;
    this.#retrySum += 1;
    return true;
  }

  get requests(): number {
    this.#rotate();
    return this.#requestSum;
  }

  get retries(): number {
    this.#rotate();
    return this.#retrySum;
  }
}

export type RetryDecision = 'retry' | 'no' | 'budget_exhausted';

/** One service's retry rules and budget. */
export class RetryPolicy {
  readonly config: RetryConfig;
  readonly budget: RetryBudget;
  readonly #statuses: ReadonlySet<number>;

  constructor(config: RetryConfig, now?: () => number) {
    this.config = config;
    this.budget = new RetryBudget(config, now);
    this.#statuses = new Set(config.onStatuses);
  }

  /** Whether an upstream status is one a retry may cure. */
  retriesStatus(status: number): boolean {
    return this.#statuses.has(status);
  }

  /**
   * May the request be sent again after `attempt` attempts (1 = the first failed)?
   * Takes from the budget when everything else allows it.
   */
  decide(method: string, headers: IncomingHttpHeaders, body: Buffer | Readable | null, attempt: number): RetryDecision {
    if (attempt > this.config.maxRetries) return 'no';
    if (!maySendAgain(method, headers, body)) return 'no';
    return this.budget.tryRetry() ? 'retry' : 'budget_exhausted';
  }

  /** Backoff before retry number `retry` (1-based): exponential, capped, with equal jitter. */
  delayMs(retry: number, random: number = Math.random()): number {
    const ceiling = Math.min(this.config.maxDelayMs, this.config.baseDelayMs * 2 ** (retry - 1));
    return Math.round(ceiling / 2 + (random * ceiling) / 2);
  }
}
