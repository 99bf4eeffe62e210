import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { describe } from 'vitest';
import { onCleanup, waitFor, writeTempFile } from './gateway.js';

/*
 * Debian's haproxy in front of gateway replicas, for the e2e tests of what a load balancer
 * sees (rolling restarts). `.ci/run` installs it; without it those suites are skipped with
 * the reason printed, as the Redis suites are.
 */

const HAPROXY_BIN = ['/usr/sbin/haproxy', '/usr/bin/haproxy'].find((bin) => spawnSync(bin, ['-v']).status === 0);
export const HAPROXY_AVAILABLE = HAPROXY_BIN !== undefined;

const HAPROXY_MISSING_MESSAGE = 'haproxy not found: install it with `sudo apt-get install haproxy` (Debian/Ubuntu; .ci/run does it)';

/** `describe` that runs only with haproxy installed; otherwise skipped, with the reason in its name. */
export function describeWithHaproxy(name: string, fn: () => void): void {
  if (HAPROXY_AVAILABLE) describe(name, fn);
  else describe.skip(`${name} [SKIPPED: ${HAPROXY_MISSING_MESSAGE}]`, fn);
}

/** A port free right now on loopback (for processes that must come back on the same port). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

export interface Haproxy {
  readonly url: string;
}

/**
 * haproxy balancing round-robin over `servers` (host:port), health-checking `checkPath` every
 * `interval`, marking a server down after `fall` failed checks, and never retrying a request
 * on another server (`retries 0`, no redispatch): what a Kubernetes Service does not do either.
 */
export async function startHaproxy(servers: readonly number[], options: { checkPath: string; interval: string; fall: number; rise: number }): Promise<Haproxy> {
  if (HAPROXY_BIN === undefined) throw new Error('haproxy is not installed');
  const port = await freePort();
  const config = [
    'global',
    '  maxconn 4096',
    'defaults',
    '  mode http',
    '  timeout connect 2s',
    '  timeout client 30s',
    '  timeout server 30s',
    '  retries 0',
    '  no option redispatch',
    'frontend fe',
    `  bind 127.0.0.1:${port}`,
    '  default_backend gateways',
    'backend gateways',
    '  balance roundrobin',
    `  option httpchk GET ${options.checkPath}`,
    '  http-check expect status 200',
    `  default-server inter ${options.interval} fall ${options.fall} rise ${options.rise}`,
    ...servers.map((p, i) => `  server gw${i} 127.0.0.1:${p} check`),
    '',
  ].join('\n');
  const file = writeTempFile(config, 'haproxy.cfg');
  const child = spawn(HAPROXY_BIN, ['-db', '-f', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  onCleanup(async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`haproxy exited: ${stderr}`);
      return (await fetch(`${url}${options.checkPath}`).then((r) => r.status === 200, () => false)) ? true : undefined;
    },
    10_000,
    'haproxy to route to a ready server',
    100,
  );
  return { url };
}
