/*
 * The recent routing decisions of this replica, for the stepwise analyses (analyze_routing by
 * requestId, review_routing over the last minutes) and the Memory recorder's per-interval
 * aggregates. A fixed-size ring: recording is one slot write on the request path, nothing
 * waits and nothing grows. Never the request text or a credential: the probabilities the model
 * gave, what it chose and why, and (only when per-principal usage is enabled) a salted hash of
 * the principal.
 */

export interface LoggedDecision {
  readonly requestId: string;
  /** ms since the epoch. */
  readonly at: number;
  /** The service that answers (null: answered 300 ambiguous). */
  readonly service: string | null;
  readonly reason: 'model' | 'low-confidence' | 'ambiguous' | 'override';
  readonly confidence: number;
  /** Model id (absent for an override). */
  readonly model?: string;
  /** The model's own top label (before disabled services were masked). */
  readonly predicted?: string;
  /** Probability per label, as the model gave them (absent for an override). */
  readonly probabilities?: Readonly<Record<string, number>>;
  /** What the shadow model chose, when one scored the request. */
  readonly shadow?: string;
  /** Salted hash of the principal (only with mcp.memory.principalUsage). */
  readonly principal?: string;
  /**
   * Who asked (the principal's subject), kept in this process only and never written anywhere:
   * analyze_routing by request id shows a decision to the principal that made the request, or an admin.
   */
  readonly subject?: string;
  readonly path: '/v1/query' | '/v1/upload';
  /** Words of the request text (a coarse feature for drift reviews; the text itself is never kept). */
  readonly words?: number;
}

/** Words in `text` (runs of non-space), counting at most the first `scan` characters. */
export function countWords(text: string, scan = 4096): number {
  let words = 0;
  let inWord = false;
  const n = Math.min(text.length, scan);
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    const space = c === 32 || (c >= 9 && c <= 13) || c === 160;
    if (!space && !inWord) words += 1;
    inWord = !space;
  }
  return words;
}

export class DecisionLog {
  readonly #ring: Array<LoggedDecision | undefined>;
  #next = 0;
  #count = 0;
  readonly #listeners = new Set<(d: LoggedDecision) => void>();

  constructor(readonly capacity: number) {
    this.#ring = new Array<LoggedDecision | undefined>(capacity);
  }

  add(decision: LoggedDecision): void {
    this.#ring[this.#next] = decision;
    this.#next = (this.#next + 1) % this.capacity;
    if (this.#count < this.capacity) this.#count += 1;
    for (const listener of this.#listeners) {
      try {
        listener(decision);
      } catch {
        // a listener's failure is its own
      }
    }
  }

  /** Called synchronously for each decision (keep it O(1): it runs on the request path). */
  onDecision(listener: (d: LoggedDecision) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  get size(): number {
    return this.#count;
  }

  /** The decisions at or after `since` (ms since the epoch), oldest first. */
  since(since: number): LoggedDecision[] {
    const out: LoggedDecision[] = [];
    for (let i = 0; i < this.#count; i++) {
      const d = this.#ring[(this.#next - this.#count + i + this.capacity) % this.capacity]!;
      if (d.at >= since) out.push(d);
    }
    return out;
  }

  /** The newest decision of a request id, if still in the ring. */
  find(requestId: string): LoggedDecision | undefined {
    for (let i = 1; i <= this.#count; i++) {
      const d = this.#ring[(this.#next - i + this.capacity) % this.capacity]!;
      if (d.requestId === requestId) return d;
    }
    return undefined;
  }
}
