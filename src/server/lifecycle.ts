/*
 * The gateway's parts start through one ordered list and close in reverse: what is started
 * later (the HTTP server last of all) may use what was started before it, so it stops first.
 * A start that fails closes what had started, so a failed boot leaks no connection, timer or
 * child process.
 */

export interface LifecycleLog {
  error(obj: object, msg: string): void;
}

interface Started {
  readonly name: string;
  readonly close: () => unknown;
}

export class Lifecycle {
  readonly #started: Started[] = [];
  #closing: Promise<void> | undefined;

  /** Where close failures are reported (the gateway sets its logger once it has one). */
  log: LifecycleLog;

  constructor(log: LifecycleLog) {
    this.log = log;
  }

  /**
   * Start a part (its `start`, when it has one) and put it on the list; `close` runs when the
   * gateway closes, or at once if a later start fails. Returns `value` for chaining (so it
   * must not be a thenable, which `await` would unwrap).
   */
  async start<T>(name: string, value: T, hooks: { readonly start?: (value: T) => unknown; readonly close?: (value: T) => unknown }): Promise<T> {
    if (this.#closing !== undefined) throw new Error(`cannot start ${name}: the gateway is closing`);
    await hooks.start?.(value);
    if (hooks.close !== undefined) {
      const close = hooks.close;
      this.#started.push({ name, close: () => close(value) });
    }
    return value;
  }

  /** Names in start order (what is running). */
  get names(): readonly string[] {
    return this.#started.map((s) => s.name);
  }

  /** Close every started part in reverse order; a part that fails to close is logged and the rest still close. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      while (this.#started.length > 0) {
        const part = this.#started.pop()!;
        try {
          await part.close();
        } catch (err) {
          this.log.error({ err, component: part.name }, 'closing a component failed');
        }
      }
    })();
    return this.#closing;
  }
}
