import { Agent, type Dispatcher } from 'undici';
import type { FastifyBaseLogger } from 'fastify';
import type { ServiceConfig } from '../config/index.js';
import type { GatewayMetrics } from '../metrics/registry.js';

export type ServiceStatus = 'up' | 'down' | 'unknown';

export interface ServiceHealth {
  readonly service: string;
  readonly status: ServiceStatus;
  /** Round-trip of the last probe in milliseconds, null before the first one. */
  readonly latencyMs: number | null;
  readonly lastCheck: string | null;
  readonly httpStatus?: number;
  readonly error?: string;
  /**
   * The last probe could not be made for a reason local to the gateway (out of file
   * descriptors: EMFILE/ENFILE, or memory): `status` is still the one of the last real probe.
   */
  readonly probeError?: string;
  /** Per host, only for a service with several upstream URLs (the service is up when any host is). */
  readonly hosts?: readonly HostHealth[];
  /**
   * `memory`: the status was read back from the operational memory at start (warm start,
   * mcp/integrations/memory) and no probe of this replica has decided yet; `since` is when it
   * was recorded there. Absent once a probe decided.
   */
  readonly source?: 'memory';
  readonly since?: string;
}

export interface HostHealth {
  readonly origin: string;
  readonly status: 'up' | 'down';
  readonly latencyMs: number;
  readonly httpStatus?: number;
  readonly error?: string;
}

export type OverallStatus = 'ok' | 'degraded' | 'down';

export interface HealthSnapshot {
  readonly status: OverallStatus;
  readonly checkedAt: string | null;
  readonly services: Readonly<Record<string, ServiceHealth>>;
}

export interface HealthProberOptions {
  readonly services: readonly ServiceConfig[];
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly metrics: GatewayMetrics;
  readonly logger: FastifyBaseLogger;
  /** Called for each probe that finds a service up (an open circuit breaker then half-opens early). */
  readonly onServiceUp?: (service: string) => void;
  /** A service's status changed (up/down), e.g. to tell MCP subscribers of gateway://services; `cause`: the public form of the probe error. */
  readonly onServiceStatusChange?: (service: string, status: string, cause?: string) => void;
  /** Called after each probe of a host (load balancing skips hosts that are down). */
  readonly onHostHealth?: (service: string, origin: string, up: boolean) => void;
  /** The connection pool of the probes (tests); default: the prober's own small Agent. */
  readonly dispatcher?: Pick<Dispatcher, 'request' | 'close'>;
}

/** Probe errors that carry no address: error codes and the prober's own fixed phrases. */
const PUBLIC_ERROR = /^(?:[A-Z][A-Z0-9_]{1,40}|timeout|probe failed|health endpoint answered \d{3})$/;

/** A probe error as anyone may see it (logs of other components, Memory): its code or fixed phrase, else "probe failed". */
export function publicProbeError(error: string): string {
  return PUBLIC_ERROR.test(error) ? error : 'probe failed';
}

/** Errors that say the gateway itself is out of a resource, not that the service is down. */
const LOCAL_ERRORS = new Set(['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM']);

/** The local resource error behind a failed probe (err.code or its cause's), or undefined. */
export function localProbeError(err: unknown): string | undefined {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'string' && LOCAL_ERRORS.has(e.code)) return e.code;
  }
  return undefined;
}

type ProbeOutcome = { readonly host: HostHealth; readonly local?: undefined } | { readonly host?: undefined; readonly local: string; readonly origin: string };

/**
 * Probes every enabled service's health URL in the background and keeps the last result,
 * so /healthz answers from memory and never waits on an upstream. It has its own small
 * connection agent so probes are not queued behind proxied traffic in the service pools,
 * and keeps its connections open between rounds (when the upstream allows) so a gateway
 * short of file descriptors can still probe. A probe that fails because the gateway is out
 * of descriptors (EMFILE/ENFILE) says nothing about the service: its status is kept, the
 * failure is shown as `probeError` and as `localProblem` (which makes /readyz fail).
 */
export class HealthProber {
  readonly #opts: HealthProberOptions;
  readonly #agent: Pick<Dispatcher, 'request' | 'close'>;
  readonly #results = new Map<string, ServiceHealth>();
  /** Last real probe of each host ("service origin"). */
  readonly #hosts = new Map<string, HostHealth>();
  #localProblem: string | null = null;
  #roundLocalProblem: string | null = null;
  #snapshot: HealthSnapshot;
  #json: string;
  #timer: NodeJS.Timeout | undefined;
  #round: Promise<void> | undefined;
  #firstRoundDone = false;
  #stopped = false;

  constructor(opts: HealthProberOptions) {
    this.#opts = opts;
    const keepAlive = opts.intervalMs + opts.timeoutMs + 1000;
    this.#agent =
      opts.dispatcher ??
      new Agent({ connections: 2, connect: { timeout: opts.timeoutMs }, keepAliveTimeout: keepAlive, keepAliveMaxTimeout: keepAlive });
    for (const svc of opts.services) {
      this.#results.set(svc.name, { service: svc.name, status: 'unknown', latencyMs: null, lastCheck: null });
    }
    this.#snapshot = this.#buildSnapshot(null);
    this.#json = JSON.stringify(this.#snapshot);
  }

  /** Starts the first round now and then one every interval. */
  start(): void {
    void this.probeAll();
    this.#timer = setInterval(() => void this.probeAll(), this.#opts.intervalMs);
    this.#timer.unref();
  }

  get firstRoundDone(): boolean {
    return this.#firstRoundDone;
  }

  snapshot(): HealthSnapshot {
    return this.#snapshot;
  }

  /**
   * Warm start: statuses read back from the operational memory, shown (with `source: "memory"`)
   * for services no probe has decided yet; the first probe of each replaces it. No change is
   * announced: nothing was observed.
   */
  seedFromMemory(states: ReadonlyArray<{ readonly service: string; readonly status: 'up' | 'down'; readonly at: string }>): number {
    let seeded = 0;
    for (const { service, status, at } of states) {
      const current = this.#results.get(service);
      if (current === undefined || current.lastCheck !== null || current.status !== 'unknown') continue;
      this.#results.set(service, { service, status, latencyMs: null, lastCheck: null, source: 'memory', since: at });
      seeded += 1;
    }
    if (seeded > 0) {
      this.#snapshot = this.#buildSnapshot(this.#snapshot.checkedAt);
      this.#json = JSON.stringify(this.#snapshot);
    }
    return seeded;
  }

  /** A gateway-local failure of the last round (e.g. "EMFILE"), or null: probes could not be made. */
  get localProblem(): string | null {
    return this.#localProblem;
  }

  /** The snapshot serialised once per round, so answering /healthz costs no JSON work. */
  snapshotJson(): string {
    return this.#json;
  }

  /** Probe every service now; concurrent callers share one round. */
  probeAll(): Promise<void> {
    if (this.#round) return this.#round;
    this.#round = (async () => {
      try {
        this.#roundLocalProblem = null;
        await Promise.all(this.#opts.services.map((svc) => this.#probe(svc)));
        if (this.#roundLocalProblem !== this.#localProblem) {
          if (this.#roundLocalProblem !== null) {
            this.#opts.logger.error({ code: this.#roundLocalProblem }, 'health probes cannot be made: the gateway is out of a local resource (file descriptors?); service statuses are kept');
          } else this.#opts.logger.info({ code: this.#localProblem }, 'health probes work again');
          this.#localProblem = this.#roundLocalProblem;
        }
        this.#snapshot = this.#buildSnapshot(new Date().toISOString());
        this.#json = JSON.stringify(this.#snapshot);
        this.#firstRoundDone = true;
      } finally {
        this.#round = undefined;
      }
    })();
    return this.#round;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    await this.#round?.catch(() => undefined);
    await this.#agent.close();
  }

  /**
   * Probe every host of the service; it is up when any host is, and shows the best host's
   * figures. A host whose probe failed locally counts with its last real result.
   */
  async #probe(svc: ServiceConfig): Promise<void> {
    const outcomes = await Promise.all(svc.urls.map((u) => this.#probeUrl(svc, u)));
    if (this.#stopped) return;
    let local: string | undefined;
    const hosts: HostHealth[] = [];
    for (const o of outcomes) {
      if (o.local !== undefined) {
        local = o.local;
        const last = this.#hosts.get(`${svc.name} ${o.origin}`);
        if (last !== undefined) hosts.push(last);
        continue;
      }
      this.#hosts.set(`${svc.name} ${o.host.origin}`, o.host);
      this.#opts.onHostHealth?.(svc.name, o.host.origin, o.host.status === 'up');
      hosts.push(o.host);
    }
    const probeError = local === undefined ? undefined : `${local}: the gateway could not make the probe (its own resources, not the service)`;
    if (local !== undefined) this.#roundLocalProblem = local;
    if (hosts.length === 0) {
      // Nothing real to go on: the last result stands, marked.
      const previous = this.#results.get(svc.name)!;
      this.#results.set(svc.name, { ...previous, probeError: probeError! });
      return;
    }
    const best = hosts.find((h) => h.status === 'up') ?? hosts[0]!;
    const result: ServiceHealth = {
      service: svc.name,
      status: best.status,
      latencyMs: best.latencyMs,
      lastCheck: new Date().toISOString(),
      ...(best.httpStatus !== undefined ? { httpStatus: best.httpStatus } : {}),
      ...(best.error !== undefined ? { error: best.error } : {}),
      ...(probeError !== undefined ? { probeError } : {}),
      ...(svc.urls.length > 1 ? { hosts } : {}),
    };
    this.#record(svc, result);
  }

  async #probeUrl(svc: ServiceConfig, baseUrl: string): Promise<ProbeOutcome> {
    const url = new URL(baseUrl);
    const path = `${url.pathname.replace(/\/+$/, '')}${svc.healthPath}`;
    const started = performance.now();
    let result: HostHealth;
    try {
      const res = await this.#agent.request({
        origin: url.origin,
        path,
        method: 'GET',
        headers: { 'user-agent': 'unified-gateway-health/1' },
        headersTimeout: this.#opts.timeoutMs,
        bodyTimeout: this.#opts.timeoutMs,
        signal: AbortSignal.timeout(this.#opts.timeoutMs),
      });
      await res.body.dump();
      const latencyMs = round2(performance.now() - started);
      const up = res.statusCode >= 200 && res.statusCode < 300;
      result = {
        origin: url.origin,
        status: up ? 'up' : 'down',
        latencyMs,
        httpStatus: res.statusCode,
        ...(up ? {} : { error: `health endpoint answered ${res.statusCode}` }),
      };
    } catch (err) {
      const local = localProbeError(err);
      if (local !== undefined) return { local, origin: url.origin };
      result = {
        origin: url.origin,
        status: 'down',
        latencyMs: round2(performance.now() - started),
        error: describeProbeError(err),
      };
    }
    return { host: result };
  }

  #record(svc: ServiceConfig, result: ServiceHealth): void {
    const previous = this.#results.get(svc.name);
    this.#results.set(svc.name, result);
    this.#opts.metrics.serviceUp.set({ service: svc.name }, result.status === 'up' ? 1 : 0);
    this.#opts.metrics.serviceProbeDuration.observe({ service: svc.name }, (result.latencyMs ?? 0) / 1000);
    if (result.status === 'up') this.#opts.onServiceUp?.(svc.name);
    if (previous?.status !== result.status) {
      // The snapshot (/healthz, gateway://services) shows the change before it is announced: a
      // subscriber that reads on the notification must not get the round-old state, which
      // would otherwise stand until the round's slowest probe has answered.
      this.#snapshot = this.#buildSnapshot(this.#snapshot.checkedAt);
      this.#json = JSON.stringify(this.#snapshot);
      const level = result.status === 'up' ? 'info' : 'warn';
      this.#opts.logger[level]({ service: svc.name, from: previous?.status, to: result.status, error: result.error }, 'service health changed');
      this.#opts.onServiceStatusChange?.(svc.name, result.status, result.error === undefined ? undefined : publicProbeError(result.error));
    }
  }

  #buildSnapshot(checkedAt: string | null): HealthSnapshot {
    const services = Object.fromEntries(this.#results);
    const statuses = [...this.#results.values()].map((r) => r.status);
    const upCount = statuses.filter((s) => s === 'up').length;
    // Down only on real evidence: a service still unknown after a round (its probes could not be
    // made, e.g. EMFILE) does not count as down.
    const status: OverallStatus =
      statuses.length === 0 || upCount === statuses.length
        ? 'ok'
        : upCount === 0 && checkedAt !== null && statuses.includes('down')
          ? 'down'
          : 'degraded';
    return { status, checkedAt, services };
  }
}

function round2(ms: number): number {
  return Math.round(ms * 100) / 100;
}

function describeProbeError(err: unknown): string {
  const e = err as { code?: string; name?: string; message?: string };
  if (e.name === 'TimeoutError' || e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_CONNECT_TIMEOUT') return 'timeout';
  return e.code ?? e.message ?? 'probe failed';
}
