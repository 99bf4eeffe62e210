import { Pool } from 'undici';
import type { ServiceConfig } from '../config/index.js';

/** One upstream host of a service: its connection pool and the base path its URL carries. */
export interface Upstream {
  readonly service: string;
  /** Audience of the identity assertion sent to this host: the service, or for a URL-set canary the service it is a canary of. */
  readonly audience: string;
  readonly origin: string;
  /** Path part of the configured URL without trailing slash ('' for a bare origin). */
  readonly basePath: string;
  readonly pool: Pool;
  /** Requests sent to this host that have not had their response headers yet (forward() counts). */
  outstanding: number;
  /** The health prober's last verdict on this host; a down host gets no traffic while others are up. */
  down: boolean;
  /** This host's circuit breaker is open (src/resilience): skipped like a down host. */
  breakerOpen: boolean;
}

export interface UpstreamPoolOptions {
  readonly connections: number;
  /** Cap on connect time; a refused or unreachable host fails fast instead. */
  readonly connectTimeoutMs: number;
}

function splitUrl(url: string): { origin: string; basePath: string } {
  const u = new URL(url);
  return { origin: u.origin, basePath: u.pathname.replace(/\/+$/, '') };
}

/**
 * The undici pools of every enabled service, created once at boot (`connections` is
 * CONNECTION_POOL_SIZE per upstream host) and closed on shutdown.
 */
export class UpstreamRegistry {
  readonly #byService = new Map<string, { upstreams: Upstream[]; next: number }>();

  constructor(services: Iterable<ServiceConfig>, options: UpstreamPoolOptions) {
    for (const svc of services) {
      if (!svc.enabled) continue;
      const upstreams = svc.urls.map((url) => {
        const { origin, basePath } = splitUrl(url);
        const pool = new Pool(origin, {
          connections: options.connections,
          pipelining: 1,
          connect: { timeout: options.connectTimeoutMs },
        });
        return { service: svc.name, audience: svc.canaryOf ?? svc.name, origin, basePath, pool, outstanding: 0, down: false, breakerOpen: false };
      });
      this.#byService.set(svc.name, { upstreams, next: 0 });
    }
  }

  /**
   * The upstream for the next request of a service: the host with the fewest outstanding
   * requests among those neither marked down by the prober nor with an open breaker, ties
   * going round robin. When every
   * host is down the next one in turn is tried anyway (the breaker and fallback then decide).
   * No allocation; a service has a handful of hosts.
   */
  pick(service: string): Upstream | undefined {
    const entry = this.#byService.get(service);
    if (entry === undefined) return undefined;
    const list = entry.upstreams;
    const n = list.length;
    if (n === 1) return list[0];
    const start = entry.next;
    entry.next = start + 1 === n ? 0 : start + 1;
    let best: Upstream | undefined;
    for (let i = 0; i < n; i++) {
      const u = list[(start + i) % n]!;
      if (!u.down && !u.breakerOpen && (best === undefined || u.outstanding < best.outstanding)) best = u;
    }
    return best ?? list[start];
  }

  /** A host's circuit breaker opened (true) or left open (false). */
  setBreakerOpen(service: string, origin: string, open: boolean): void {
    for (const u of this.#byService.get(service)?.upstreams ?? []) if (u.origin === origin) u.breakerOpen = open;
  }

  /** The health prober's verdict on one host of a service (matched by origin). */
  setHostDown(service: string, origin: string, down: boolean): void {
    for (const u of this.#byService.get(service)?.upstreams ?? []) if (u.origin === origin) u.down = down;
  }

  all(service: string): readonly Upstream[] {
    return this.#byService.get(service)?.upstreams ?? [];
  }

  async close(): Promise<void> {
    const pools = [...this.#byService.values()].flatMap((e) => e.upstreams.map((u) => u.pool));
    await Promise.allSettled(pools.map((p) => p.close()));
  }

  /** Forcefully drop connections that are still busy after the shutdown deadline. */
  async destroy(): Promise<void> {
    const pools = [...this.#byService.values()].flatMap((e) => e.upstreams.map((u) => u.pool));
    await Promise.allSettled(pools.map((p) => p.destroy()));
  }
}
