import { Agent } from 'undici';
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
  /** Per host, only for a service with several upstream URLs (the service is up when any host is). */
  readonly hosts?: readonly HostHealth[];
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
  /** A service's status changed (up/down), e.g. to tell MCP subscribers of gateway://services. */
  readonly onServiceStatusChange?: (service: string, status: string) => void;
  /** Called after each probe of a host (load balancing skips hosts that are down). */
  readonly onHostHealth?: (service: string, origin: string, up: boolean) => void;
}

/**
 * Probes every enabled service's health URL in the background and keeps the last result,
 * so /healthz answers from memory and never waits on an upstream. It has its own small
 * connection agent so probes are not queued behind proxied traffic in the service pools.
 */
export class HealthProber {
  readonly #opts: HealthProberOptions;
  readonly #agent: Agent;
  readonly #results = new Map<string, ServiceHealth>();
  #snapshot: HealthSnapshot;
  #json: string;
  #timer: NodeJS.Timeout | undefined;
  #round: Promise<void> | undefined;
  #firstRoundDone = false;
  #stopped = false;

  constructor(opts: HealthProberOptions) {
    this.#opts = opts;
    this.#agent = new Agent({ connections: 2, connect: { timeout: opts.timeoutMs } });
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

  /** The snapshot serialised once per round, so answering /healthz costs no JSON work. */
  snapshotJson(): string {
    return this.#json;
  }

  /** Probe every service now; concurrent callers share one round. */
  probeAll(): Promise<void> {
    if (this.#round) return this.#round;
    this.#round = (async () => {
      try {
        await Promise.all(this.#opts.services.map((svc) => this.#probe(svc)));
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

  /** Probe every host of the service; it is up when any host is, and shows the best host's figures. */
  async #probe(svc: ServiceConfig): Promise<void> {
    const hosts = await Promise.all(svc.urls.map((u) => this.#probeUrl(svc, u)));
    if (this.#stopped) return;
    for (const h of hosts) this.#opts.onHostHealth?.(svc.name, h.origin, h.status === 'up');
    const best = hosts.find((h) => h.status === 'up') ?? hosts[0]!;
    const result: ServiceHealth = {
      service: svc.name,
      status: best.status,
      latencyMs: best.latencyMs,
      lastCheck: new Date().toISOString(),
      ...(best.httpStatus !== undefined ? { httpStatus: best.httpStatus } : {}),
      ...(best.error !== undefined ? { error: best.error } : {}),
      ...(hosts.length > 1 ? { hosts } : {}),
    };
    this.#record(svc, result);
  }

  async #probeUrl(svc: ServiceConfig, baseUrl: string): Promise<HostHealth> {
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
      result = {
        origin: url.origin,
        status: 'down',
        latencyMs: round2(performance.now() - started),
        error: describeProbeError(err),
      };
    }
    return result;
  }

  #record(svc: ServiceConfig, result: ServiceHealth): void {
    const previous = this.#results.get(svc.name);
    this.#results.set(svc.name, result);
    this.#opts.metrics.serviceUp.set({ service: svc.name }, result.status === 'up' ? 1 : 0);
    this.#opts.metrics.serviceProbeDuration.observe({ service: svc.name }, (result.latencyMs ?? 0) / 1000);
    if (result.status === 'up') this.#opts.onServiceUp?.(svc.name);
    if (previous?.status !== result.status) {
      const level = result.status === 'up' ? 'info' : 'warn';
      this.#opts.logger[level]({ service: svc.name, from: previous?.status, to: result.status, error: result.error }, 'service health changed');
      this.#opts.onServiceStatusChange?.(svc.name, result.status);
    }
  }

  #buildSnapshot(checkedAt: string | null): HealthSnapshot {
    const services = Object.fromEntries(this.#results);
    const statuses = [...this.#results.values()].map((r) => r.status);
    const upCount = statuses.filter((s) => s === 'up').length;
    const status: OverallStatus =
      statuses.length === 0 || upCount === statuses.length ? 'ok' : upCount === 0 && checkedAt !== null ? 'down' : 'degraded';
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
