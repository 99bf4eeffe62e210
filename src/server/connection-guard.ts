import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyBaseLogger } from 'fastify';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ClientConnectionsConfig } from '../config/index.js';
import { CidrSet, clientKey, parseClientAddress } from '../ratelimit/client-key.js';

/*
 * Caps on open client connections (issue 11, item 4), counted on the raw socket as it is
 * accepted, before any HTTP parsing:
 * - per client address (IPv4-mapped IPv6 folded to IPv4, IPv6 per /64 like the rate
 *   limiter): past `maxConnectionsPerIp` a new connection is destroyed at once, so one
 *   address cannot take the file descriptors every other client (and the health prober)
 *   needs. Loopback is not exempt; the proxies named in `server.trustProxy` are (every
 *   client arrives through them).
 * - in all: Node's `server.maxConnections` (default 3/4 of the open-file limit), leaving
 *   descriptors for upstream pools, the prober, Redis and files.
 */

/**
 * Listen backlog (the kernel caps it at net.core.somaxconn). Node's default, 511, overflows
 * when a burst of connections arrives faster than the event loop accepts them, and every
 * client whose SYN is dropped then waits for a retransmission: in the slow-clients e2e
 * (2,000 connects from one address in 0.45 s) the other client's first request took 1.0-1.1 s
 * in 2 runs of 3 with 511, and 0.15-0.45 s in 4 runs of 4 with 4096.
 */
export const LISTEN_BACKLOG = 4096;

/** The key a connection is counted under: the rate limiter's client key (IPv4, mapped IPv6 unwrapped; IPv6 per /64); null when not an address. */
export function connectionKey(address: string | undefined): string | null {
  if (address === undefined || parseClientAddress(address) === null) return null;
  return clientKey(address);
}

/** Ranges of the keywords `server.trustProxy` accepts (as proxy-addr, which Fastify uses, defines them). */
const PROXY_KEYWORDS: Readonly<Record<string, readonly string[]>> = {
  loopback: ['127.0.0.0/8', '::1/128'],
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
  uniquelocal: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
};

/** Trusted proxies (a trustProxy list) as a matcher; `true`/`false` name no address, so none is exempt. */
export function trustedProxies(trustProxy: boolean | readonly string[]): (address: string) => boolean {
  if (typeof trustProxy === 'boolean' || trustProxy.length === 0) return () => false;
  const proxies = new CidrSet(trustProxy.flatMap((e) => PROXY_KEYWORDS[e] ?? [e]));
  return (address) => proxies.has(address);
}

/** The soft open-file limit of this process (Linux /proc/self/limits), or null when unknown. */
export function openFileLimit(limitsText?: string): number | null {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return null;
    }
  }
  const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(text);
  if (!m || m[1] === 'unlimited') return null;
  return Number(m[1]);
}

/** `maxConnections`, or 3/4 of the open-file limit; null: no global cap (limit unknown). */
export function globalConnectionCap(config: Pick<ClientConnectionsConfig, 'maxConnections'>, fdLimit = openFileLimit()): number | null {
  if (config.maxConnections !== undefined) return config.maxConnections;
  return fdLimit === null ? null : Math.max(1, Math.floor((fdLimit * 3) / 4));
}

export interface ConnectionGuardOptions {
  readonly maxPerIp: number;
  /** null: no global cap. */
  readonly maxConnections: number | null;
  /** Peers never capped per address (trusted proxies). */
  readonly exempt?: (address: string) => boolean;
  readonly registry?: Registry;
  /** At most one warning per this many ms (a flood must not flood the log). */
  readonly logEveryMs?: number;
}

export class ConnectionGuard {
  readonly #opts: ConnectionGuardOptions;
  readonly #open = new Map<string, number>();
  readonly #refused: Counter<'reason'>;
  #total = 0;
  #log: FastifyBaseLogger | undefined;
  #lastWarn = -Infinity;
  #refusedSinceWarn = 0;

  constructor(opts: ConnectionGuardOptions) {
    this.#opts = opts;
    const registers = opts.registry ? [opts.registry] : [];
    this.#refused = new Counter({
      name: 'gateway_connections_refused_total',
      help: 'Client connections closed on accept: per_ip (server.maxConnectionsPerIp) or global (server.maxConnections)',
      labelNames: ['reason'],
      registers,
    });
    for (const reason of ['per_ip', 'global']) this.#refused.inc({ reason }, 0);
    const guard = this;
    new Gauge({
      name: 'gateway_client_connections',
      help: 'Open client connections',
      registers,
      collect() {
        this.set(guard.#total);
      },
    });
  }

  attach(server: Server, log: FastifyBaseLogger): void {
    this.#log = log;
    if (this.#opts.maxConnections !== null) server.maxConnections = this.#opts.maxConnections;
    // Node closes connections past maxConnections itself and tells us with 'drop'.
    server.on('drop', (data?: { remoteAddress?: string }) => this.#refuse('global', data?.remoteAddress));
    server.on('connection', (socket: Socket) => this.admit(socket));
  }

  /** Open connections of one key (tests). */
  openFor(key: string): number {
    return this.#open.get(key) ?? 0;
  }

  get open(): number {
    return this.#total;
  }

  /** Counts the socket in, or destroys it when its address is over the cap. */
  admit(socket: Socket): boolean {
    const address = socket.remoteAddress;
    const key = this.#opts.maxPerIp > 0 && address !== undefined && !this.#opts.exempt?.(address) ? connectionKey(address) : null;
    if (key !== null) {
      const n = this.#open.get(key) ?? 0;
      if (n >= this.#opts.maxPerIp) {
        socket.destroy();
        this.#refuse('per_ip', key);
        return false;
      }
      this.#open.set(key, n + 1);
    }
    this.#total += 1;
    socket.once('close', () => {
      this.#total -= 1;
      if (key === null) return;
      const left = (this.#open.get(key) ?? 1) - 1;
      if (left <= 0) this.#open.delete(key);
      else this.#open.set(key, left);
    });
    return true;
  }

  #refuse(reason: 'per_ip' | 'global', client: string | undefined): void {
    this.#refused.inc({ reason });
    this.#refusedSinceWarn += 1;
    const now = performance.now();
    if (now - this.#lastWarn < (this.#opts.logEveryMs ?? 10_000)) return;
    this.#lastWarn = now;
    const cap = reason === 'per_ip' ? { maxConnectionsPerIp: this.#opts.maxPerIp } : { maxConnections: this.#opts.maxConnections };
    this.#log?.warn({ reason, client, ...cap, refused: this.#refusedSinceWarn }, 'client connections refused: over the connection cap');
    this.#refusedSinceWarn = 0;
  }
}
