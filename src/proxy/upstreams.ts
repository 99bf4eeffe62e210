import { Pool } from 'undici';
import type { ServiceConfig } from '../config/index.js';

/** One upstream host of a service: its connection pool and the base path its URL carries. */
export interface Upstream {
  readonly service: string;
  readonly origin: string;
  /** Path part of the configured URL without trailing slash ('' for a bare origin). */
  readonly basePath: string;
  readonly pool: Pool;
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
        return { service: svc.name, origin, basePath, pool };
      });
      this.#byService.set(svc.name, { upstreams, next: 0 });
    }
  }

  /** The upstream to use for the next request of a service (round robin over its hosts). */
  pick(service: string): Upstream | undefined {
    const entry = this.#byService.get(service);
    if (entry === undefined) return undefined;
    const upstream = entry.upstreams[entry.next % entry.upstreams.length];
    entry.next = (entry.next + 1) % entry.upstreams.length;
    return upstream;
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
