/*
 * Every open long-lived connection the gateway serves (proxied WebSockets, /v1/events
 * streams), so shutdown can end them: after the drain delay the gateway closes each with
 * 1001 "gateway shutting down" (an SSE stream gets a `shutdown` event), waits up to
 * `graceMs` for the close handshakes, then cuts what is left.
 */

export interface LongLived {
  /** Start an orderly close (WebSocket close frame, or the SSE notice and end). */
  close(code: number, reason: string): void;
  /** Cut it now. */
  terminate(): void;
}

export class LiveConnections {
  readonly #open = new Set<LongLived>();
  readonly #waiters = new Set<() => void>();

  get size(): number {
    return this.#open.size;
  }

  add(connection: LongLived): void {
    this.#open.add(connection);
  }

  /** The connection has ended (both sides closed). */
  delete(connection: LongLived): void {
    if (!this.#open.delete(connection)) return;
    if (this.#open.size === 0) for (const w of this.#waiters) w();
  }

  /** Close every connection with 1001, then cut those still open after `graceMs`. */
  async shutdown(graceMs: number): Promise<void> {
    if (this.#open.size === 0) return;
    for (const c of [...this.#open]) c.close(1001, 'gateway shutting down');
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(() => {
        for (const c of [...this.#open]) c.terminate();
        // terminate() ends them on the next turn; do not wait for stragglers beyond that.
        setImmediate(done);
      }, graceMs);
      timer.unref();
      this.#waiters.add(done);
      if (this.#open.size === 0) done();
    });
  }
}
