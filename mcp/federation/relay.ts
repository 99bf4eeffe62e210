import { randomUUID } from 'node:crypto';
import { ProtocolError, ProtocolErrorCode, type InputRequests } from '@modelcontextprotocol/server';

/*
 * Requests an upstream sends while a federated call runs (sampling/createMessage,
 * elicitation/create, roots/list), relayed to the agent whose call caused them, and the
 * agent's answer sent back upstream. The pool hands each such request to the call's origin:
 * an AgentCall, one per agent tools/call (or prompts/get, resources/read).
 *
 * - A 2026-07-28 agent has no server-to-client channel: the revision's way is a result of
 *   type input_required (the SDK's `inputRequired`, multi round-trip). The call is parked
 *   in-process (ParkedCalls: the upstream call keeps running, its request waiting), the agent
 *   gets the request(s) as `inputRequests` and a signed `requestState` naming the parked call;
 *   its retry carries `inputResponses`, which answer the waiting upstream requests, and the
 *   call goes on to its result or to the next round. Parked calls live in the replica that
 *   started them (the requestState is bound to it and to the principal) and are dropped after
 *   PARK_TTL_MS.
 * - A 2025 agent is asked directly on the request's own response stream (push style).
 * - What the agent's client did not declare (its capabilities) is not asked: the upstream gets
 *   the error a client without the method answers with (-32601, method not found), naming the
 *   missing capability.
 */

export type RelayedMethod = 'sampling/createMessage' | 'elicitation/create' | 'roots/list';

/** The client capability each relayed method needs. */
const CAPABILITY: Record<RelayedMethod, 'sampling' | 'elicitation' | 'roots'> = {
  'sampling/createMessage': 'sampling',
  'elicitation/create': 'elicitation',
  'roots/list': 'roots',
};

/** How long a call may wait, parked, for its agent's next round. */
export const PARK_TTL_MS = 10 * 60_000;
/** Parked calls per replica at most (each holds an upstream request open). */
export const MAX_PARKED = 1000;

interface Waiting {
  readonly method: RelayedMethod;
  readonly params: unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: Error) => void;
  /** Sent to the agent as an input request already (answers only). */
  sent: boolean;
}

/** What the current agent request lets the call do (replaced when a parked call resumes). */
export interface AgentLink {
  readonly era: 'modern' | 'legacy';
  /** The agent client's declared capabilities (modern: the request's envelope); undefined: unknown (legacy). */
  readonly capabilities: Record<string, unknown> | undefined;
  /** Legacy agents: send the request on the request's own stream. */
  readonly send?: (method: RelayedMethod, params: unknown, signal: AbortSignal) => Promise<unknown>;
  /** Notifications (progress, log messages) to the agent, on the current request. */
  readonly notify: (method: string, params: Record<string, unknown>) => Promise<void>;
  readonly progressToken?: string | number | undefined;
  /** 2026-07-28: the log level the request asked for (no log messages without one). */
  readonly logLevel?: string | undefined;
}

export class AgentCall {
  /** Aborts the upstream call (agent cancelled, park expired). */
  readonly abort = new AbortController();
  readonly #waiting = new Map<string, Waiting>();
  /** Notifications to the agent still being sent (the answer waits for them: they come first). */
  readonly #sending = new Set<Promise<void>>();
  #link: AgentLink | undefined;
  #wake: (() => void) | undefined;
  #seq = 0;

  constructor(link: AgentLink) {
    this.#link = link;
  }

  /** The agent request the call reports to now (undefined while parked). */
  get link(): AgentLink | undefined {
    return this.#link;
  }

  /** A notification (progress, log message) to the agent on the current request. */
  notify(method: string, params: Record<string, unknown>): void {
    const link = this.#link;
    if (link === undefined) return;
    const sent = link.notify(method, params).catch(() => {});
    this.#sending.add(sent);
    void sent.finally(() => this.#sending.delete(sent));
  }

  /**
   * Before the answer goes out: notifications the upstream sent before its answer are relayed
   * first (the pool hands them over in order, each on its own turn of the event loop).
   */
  async flush(): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve));
    await Promise.allSettled([...this.#sending]);
  }

  attach(link: AgentLink): void {
    this.#link = link;
  }

  detach(): void {
    this.#link = undefined;
  }

  /** An upstream request of this call: answered by the agent (see the module comment). */
  ask(method: RelayedMethod, params: unknown, signal: AbortSignal): Promise<unknown> {
    const link = this.#link;
    const capability = CAPABILITY[method];
    if (link?.era === 'legacy') {
      if (link.send === undefined) return Promise.reject(new ProtocolError(ProtocolErrorCode.MethodNotFound, `the agent cannot be asked for ${method}`));
      return link.send(method, params, signal);
    }
    if (link === undefined || link.capabilities?.[capability] === undefined) {
      return Promise.reject(new ProtocolError(ProtocolErrorCode.MethodNotFound, `the agent's client did not declare the ${capability} capability (${method})`));
    }
    return new Promise((resolve, reject) => {
      const key = `${capability}-${++this.#seq}`;
      this.#waiting.set(key, { method, params, resolve, reject, sent: false });
      signal.addEventListener(
        'abort',
        () => {
          if (this.#waiting.delete(key)) reject(new Error('cancelled by the upstream'));
        },
        { once: true },
      );
      this.#wake?.();
    });
  }

  /** Resolves when an upstream request waits for the agent (at once if one waits unsent). */
  needsInput(): Promise<void> {
    return new Promise((resolve) => {
      const fire = () => {
        this.#wake = undefined;
        // Let sibling requests of the same round arrive before the round goes out.
        setImmediate(resolve);
      };
      if ([...this.#waiting.values()].some((w) => !w.sent)) fire();
      else this.#wake = fire;
    });
  }

  /** The waiting upstream requests not yet put to the agent, as input requests (marked sent). */
  takeInputRequests(): InputRequests {
    const out: Record<string, { method: RelayedMethod; params?: unknown }> = {};
    for (const [key, w] of this.#waiting) {
      if (w.sent) continue;
      w.sent = true;
      out[key] = w.method === 'roots/list' ? { method: w.method } : { method: w.method, params: w.params };
    }
    return out as InputRequests;
  }

  /** All waiting requests (to ask again when a retry answered none of them). */
  resendAll(): void {
    for (const w of this.#waiting.values()) w.sent = false;
  }

  /**
   * The agent's answers (its retry's inputResponses, untrusted): each one whose key names a
   * waiting request answers it; the rest are ignored. Returns how many were answered.
   */
  answer(responses: Record<string, unknown> | undefined): number {
    let answered = 0;
    for (const [key, value] of Object.entries(responses ?? {})) {
      const w = this.#waiting.get(key);
      if (w === undefined || value === null || typeof value !== 'object') continue;
      this.#waiting.delete(key);
      w.resolve(value);
      answered += 1;
    }
    return answered;
  }

  /** The call ends: requests still waiting fail upstream. */
  end(reason: string): void {
    for (const [key, w] of this.#waiting) {
      this.#waiting.delete(key);
      w.reject(new Error(reason));
    }
    this.#wake = undefined;
  }
}

interface Parked<R> {
  readonly call: AgentCall;
  readonly result: Promise<R>;
  readonly owner: string;
  readonly timer: NodeJS.Timeout;
}

/** Calls waiting, between two requests of their agent, for its answers (one replica). */
export class ParkedCalls<R> {
  readonly #parked = new Map<string, Parked<R>>();
  readonly #ttlMs: number;
  readonly #max: number;

  constructor(options: { ttlMs?: number; max?: number } = {}) {
    this.#ttlMs = options.ttlMs ?? PARK_TTL_MS;
    this.#max = options.max ?? MAX_PARKED;
  }

  get size(): number {
    return this.#parked.size;
  }

  /** Parks a call; null when the replica holds too many. */
  park(call: AgentCall, result: Promise<R>, owner: string): string | null {
    if (this.#parked.size >= this.#max) return null;
    const id = randomUUID();
    call.detach();
    const timer = setTimeout(() => {
      if (this.#parked.delete(id)) {
        call.end('the agent did not answer in time');
        call.abort.abort(new Error('the agent did not answer in time'));
      }
    }, this.#ttlMs);
    timer.unref();
    this.#parked.set(id, { call, result, owner, timer });
    return id;
  }

  /** Takes a parked call back (its owner only). */
  take(id: string, owner: string): { call: AgentCall; result: Promise<R> } | undefined {
    const p = this.#parked.get(id);
    if (p === undefined || p.owner !== owner) return undefined;
    this.#parked.delete(id);
    clearTimeout(p.timer);
    return { call: p.call, result: p.result };
  }

  close(): void {
    for (const [id, p] of this.#parked) {
      this.#parked.delete(id);
      clearTimeout(p.timer);
      p.call.end('the gateway is shutting down');
      p.call.abort.abort(new Error('the gateway is shutting down'));
    }
  }
}
