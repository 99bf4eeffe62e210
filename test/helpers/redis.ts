import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { describe } from 'vitest';
import { onCleanup, sleep } from './gateway.js';

/*
 * A real redis-server for the shared-state tests, on a free loopback port, with no
 * persistence, in a temp dir. When the binary is missing the suites are reported as skipped
 * with the install command in their name — never silently passing. `.ci/run` installs it.
 */

function findRedisServer(): string | undefined {
  // TEST_REDIS_SERVER=/path/to/redis-server picks a binary; TEST_REDIS_SERVER=none acts as if there were none.
  const forced = process.env.TEST_REDIS_SERVER;
  if (forced === 'none') return undefined;
  if (forced !== undefined && forced !== '') return forced;
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(delimiter).concat(['/usr/bin', '/usr/local/bin', '/usr/sbin'])) {
    const candidate = join(dir, 'redis-server');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  return undefined;
}

export const REDIS_SERVER_BIN = findRedisServer();
export const REDIS_AVAILABLE = REDIS_SERVER_BIN !== undefined;
export const REDIS_MISSING_MESSAGE =
  'redis-server not found on PATH: these tests need a real Redis. Install it with `sudo apt-get install redis-server` (Debian/Ubuntu; .ci/run does it), then run the tests again';

if (!REDIS_AVAILABLE) process.stderr.write(`\n[SKIPPED] ${REDIS_MISSING_MESSAGE}\n`);

/** `describe` that runs only with redis-server installed; otherwise skipped, with the reason in its name. */
export function describeWithRedis(name: string, fn: () => void): void {
  if (REDIS_AVAILABLE) describe(name, fn);
  else describe.skip(`${name} [SKIPPED: ${REDIS_MISSING_MESSAGE}]`, fn);
}

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** The running process's pid (changes after restart). */
  pid(): number | undefined;
  /** SIGKILL: the server vanishes without closing connections cleanly. */
  kill(): Promise<void>;
  /** SIGTERM and wait. */
  stop(): Promise<void>;
  /** Start again on the same port (after kill/stop), empty. */
  restart(): Promise<void>;
  /** Send one inline command and return the raw reply (e.g. "SCRIPT FLUSH"). */
  command(line: string): Promise<string>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function rawCommand(port: number, line: string, timeoutMs = 1000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`redis on ${port}: no answer to ${line}`));
    }, timeoutMs);
    socket.on('connect', () => socket.write(`${line}\r\n`));
    socket.on('data', (d) => {
      data += d.toString('utf8');
      if (data.endsWith('\r\n')) {
        clearTimeout(timer);
        socket.end();
        resolve(data.trimEnd());
      }
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

/** Start redis-server on a free port; stopped by the gateway helper's `cleanup()`. */
export async function startRedis(): Promise<RedisServer> {
  if (REDIS_SERVER_BIN === undefined) throw new Error(REDIS_MISSING_MESSAGE);
  const dir = mkdtempSync(join(tmpdir(), 'ugw-redis-'));
  let port = await freePort();
  let child: ChildProcess | undefined;
  let output = '';

  const launch = async (): Promise<void> => {
    output = '';
    const c = spawn(
      REDIS_SERVER_BIN,
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no', '--dir', dir, '--loglevel', 'warning'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child = c;
    running.add(c);
    void exited(c).then(() => running.delete(c));
    c.stdout!.on('data', (d: Buffer) => (output += d.toString('utf8')));
    c.stderr!.on('data', (d: Buffer) => (output += d.toString('utf8')));
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (c.exitCode !== null || c.signalCode !== null) throw new Error(`redis-server exited at start:\n${output}`);
      try {
        if ((await rawCommand(port, 'PING', 500)) === '+PONG') return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`redis-server not answering on ${port} within 10 s:\n${output}`);
      await sleep(20);
    }
  };

  const halt = async (signal: NodeJS.Signals) => {
    const c = child;
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return;
    const done = exited(c);
    c.kill(signal);
    const timer = setTimeout(() => c.kill('SIGKILL'), 3000);
    await done;
    clearTimeout(timer);
  };

  // The free port can be taken between probing and binding: try a few.
  for (let attempt = 0; ; attempt += 1) {
    try {
      await launch();
      break;
    } catch (err) {
      await halt('SIGKILL');
      if (attempt >= 2 || !/Address already in use/i.test(output)) throw err;
      port = await freePort();
    }
  }
  onCleanup(async () => {
    await halt('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    pid: () => child?.pid,
    kill: () => halt('SIGKILL'),
    stop: () => halt('SIGTERM'),
    restart: async () => {
      await halt('SIGKILL');
      await launch();
    },
    command: (line: string) => rawCommand(port, line),
  };
}
