import { Worker } from 'node:worker_threads';

/*
 * The probe listener (GATEWAY_PROBE_PORT; issue 18): /livez, /readyz and /healthz on a port of
 * their own, served by a worker thread (src/server/probe-thread.cts), the way Envoy's admin
 * listener is apart from its proxy. The gateway's event loop posts what the probes answer
 * every `intervalMs` (readiness and the public /healthz, both computed here from what the main
 * port's routes use: src/health/routes.ts); the thread answers at once from the last post, so
 * probe latency does not depend on proxy load or GC. The posts double as a heartbeat: when
 * none came for `stallMs`, /livez and /readyz answer 503 (an event loop stuck for that long).
 * The main port keeps its own /livez, /readyz, /healthz (and ?deep=1, admin details, /metrics).
 */

/** What the thread answers, as last posted. */
export interface ProbeState {
  readonly sentAt: number;
  readonly readyz: { readonly status: number; readonly body: string };
  readonly healthz: { readonly status: number; readonly body: string };
}

export interface ProbeThreadData {
  readonly host: string;
  readonly port: number;
  readonly stallMs: number;
}

export type ProbeThreadMessage = { readonly type: 'listening'; readonly port: number } | { readonly type: 'error'; readonly message: string };

export interface ProbeListenerOptions {
  readonly host: string;
  readonly port: number;
  /** The current answers (called on the gateway's event loop every intervalMs). */
  readonly state: () => Omit<ProbeState, 'sentAt'>;
  readonly intervalMs?: number;
  readonly stallMs?: number;
}

export class ProbeListener {
  readonly #options: ProbeListenerOptions;
  #worker: Worker | undefined;
  #timer: NodeJS.Timeout | undefined;
  #url: string | undefined;

  constructor(options: ProbeListenerOptions) {
    this.#options = options;
  }

  /** http://host:port once started. */
  get url(): string | undefined {
    return this.#url;
  }

  async start(): Promise<void> {
    const data: ProbeThreadData = { host: this.#options.host, port: this.#options.port, stallMs: this.#options.stallMs ?? 5000 };
    const worker = new Worker(new URL('./probe-thread.cjs', import.meta.url), { workerData: data });
    this.#worker = worker;
    const port = await new Promise<number>((resolve, reject) => {
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`the probe listener thread exited (${code}) before listening`)));
      worker.on('message', (message: ProbeThreadMessage) => {
        if (message.type === 'listening') resolve(message.port);
        else reject(new Error(`probe listener: ${message.message}`));
      });
    }).catch(async (err: unknown) => {
      await worker.terminate();
      throw err;
    });
    worker.removeAllListeners('exit');
    worker.unref();
    const host = data.host.includes(':') ? `[${data.host}]` : data.host;
    this.#url = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`;
    this.refresh();
    this.#timer = setInterval(() => this.refresh(), this.#options.intervalMs ?? 100);
    this.#timer.unref();
  }

  /** Post the current answers now (also on a state change that should show at once: draining). */
  refresh(): void {
    this.#worker?.postMessage({ ...this.#options.state(), sentAt: Date.now() } satisfies ProbeState);
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    const worker = this.#worker;
    this.#worker = undefined;
    if (worker !== undefined) await worker.terminate();
  }
}
