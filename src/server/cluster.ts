import cluster, { type Worker } from 'node:cluster';
import type { GatewayConfig } from '../config/index.js';
import { serveClusterMetrics } from '../metrics/cluster.js';
import { runUntilSignal } from './run.js';

/*
 * WORKER_THREADS > 1: N gateway processes on one port (node:cluster; the primary accepts and
 * hands connections round-robin). Each worker is a whole gateway, as a replica is: shared
 * state goes through the state store (with REDIS_URL exact across workers, as across replicas;
 * in memory mode it is per worker, see docs/operations.md). The primary serves no request:
 * it forks, restarts crashed workers, aggregates /metrics (src/metrics/cluster.ts), and turns
 * signals into worker shutdowns:
 *
 * - SIGTERM: every worker drains as a single process does (/readyz 503 at once, serving for
 *   server.drainDelayMs, then in-flight requests finish); the primary exits when all have.
 * - SIGINT: the same without the drain delay.
 * - SIGHUP: rolling restart, one worker at a time: a new worker is forked and listening before
 *   the old one is told to drain, so the port always has a worker that accepts.
 *
 * The signal reaches workers as an IPC message, not a signal: a terminal's Ctrl-C goes to the
 * whole process group, and a worker that also got it from the primary would see two.
 */

export const STOP_MESSAGE = 'unified-gateway:stop';

export interface StopMessage {
  readonly type: typeof STOP_MESSAGE;
  readonly signal: 'SIGTERM' | 'SIGINT';
}

function isStopMessage(message: unknown): message is StopMessage {
  return (
    typeof message === 'object' &&
    message !== null &&
    (message as { type?: unknown }).type === STOP_MESSAGE &&
    ((message as { signal?: unknown }).signal === 'SIGTERM' || (message as { signal?: unknown }).signal === 'SIGINT')
  );
}

/** Restart backoff of a worker that crashed: doubles while crashes come quickly, up to this. */
const MAX_RESTART_DELAY_MS = 30_000;

/**
 * The primary writes a few lines (fork, crash, restart, stop) in the gateway's log shape
 * (pino's JSON fields). By hand because it has no Fastify instance and pino is only a
 * dependency of Fastify's, not of this package.
 */
function primaryLog(level: 'info' | 'warn' | 'error', fields: Record<string, unknown>, msg: string): void {
  const levels = { info: 30, warn: 40, error: 50 } as const;
  process.stdout.write(`${JSON.stringify({ level: levels[level], time: Date.now(), name: 'unified-gateway', component: 'cluster', pid: process.pid, ...fields, msg })}\n`);
}

/** `unified-gateway serve`: one gateway process, or with WORKER_THREADS > 1 a primary and its workers. */
export async function serve(config: GatewayConfig): Promise<void> {
  if (config.workerThreads <= 1) {
    await runUntilSignal(config);
    return;
  }
  if (cluster.isWorker) {
    await runWorker(config);
    return;
  }
  runPrimary(config);
}

async function runWorker(config: GatewayConfig): Promise<void> {
  // The primary decides when to stop (see above): a Ctrl-C that reaches the whole process
  // group is the primary's to handle; a SIGTERM sent to this worker alone still drains it.
  process.on('SIGINT', () => {});
  let stop: ((signal: StopMessage['signal']) => void) | undefined;
  let early: StopMessage['signal'] | undefined;
  process.on('message', (message: unknown) => {
    if (!isStopMessage(message)) return;
    if (stop !== undefined) stop(message.signal);
    else early ??= message.signal; // still starting: stop once listening
  });
  await runUntilSignal(config, { signals: ['SIGTERM'], stopper: (s) => (stop = s) });
  if (early !== undefined) stop?.(early);
}

/** Workers not yet exited (cluster.workers can still hold one whose IPC channel has not closed). */
function liveWorkers(): Worker[] {
  return Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && !w.isDead());
}

function runPrimary(config: GatewayConfig): void {
  const count = config.workerThreads;
  let stopping: StopMessage['signal'] | undefined;
  let everListened = false;
  let restartDelayMs = 1000;
  let lastCrash = 0;
  /** Workers being replaced or stopped on purpose: their exit is expected. */
  const retiring = new Set<Worker>();
  let exitCode = 0;

  serveClusterMetrics();
  if (config.redisUrl === undefined) {
    primaryLog(
      'warn',
      { workers: count },
      'WORKER_THREADS > 1 without REDIS_URL: shared state is per worker process (rate-limit counters, blocked clients, traffic weights, MCP sessions, the response cache); set REDIS_URL to share it',
    );
  }

  const fork = (): Worker => {
    const worker = cluster.fork();
    worker.once('listening', () => {
      everListened = true;
    });
    return worker;
  };

  cluster.on('exit', (worker, code, signal) => {
    const expected = retiring.delete(worker) || stopping !== undefined;
    // The primary's own exit status says whether the shutdown was clean.
    if (stopping !== undefined && code !== 0) exitCode = 1;
    if (expected) {
      if (stopping !== undefined && liveWorkers().length === 0) {
        primaryLog('info', { exitCode }, 'all workers stopped');
        process.exit(exitCode);
      }
      return;
    }
    if (!everListened) {
      // Not one worker got as far as listening (a port in use, a bad model file): do not loop.
      primaryLog('error', { worker: worker.process.pid, code, signal }, 'a worker failed before any listened; stopping');
      stopAll('SIGINT');
      return;
    }
    const now = Date.now();
    restartDelayMs = now - lastCrash < MAX_RESTART_DELAY_MS ? Math.min(restartDelayMs * 2, MAX_RESTART_DELAY_MS) : 1000;
    lastCrash = now;
    primaryLog('error', { worker: worker.process.pid, code, signal, restartInMs: restartDelayMs }, 'worker exited unexpectedly; starting a new one');
    setTimeout(() => {
      if (stopping === undefined) fork();
    }, restartDelayMs).unref();
  });

  const stopAll = (signal: StopMessage['signal']) => {
    stopping = signal;
    const workers = liveWorkers();
    if (workers.length === 0) process.exit(exitCode);
    for (const worker of workers) {
      if (worker.isConnected()) worker.send({ type: STOP_MESSAGE, signal } satisfies StopMessage);
      else worker.process.kill(signal);
    }
  };

  let restarting = false;
  /** Replace each worker in turn: the new one listens before the old one drains. */
  const rollingRestart = async () => {
    if (restarting || stopping !== undefined) return;
    restarting = true;
    try {
      const old = liveWorkers();
      primaryLog('info', { workers: old.length }, 'rolling restart of the workers');
      for (const worker of old) {
        if (stopping !== undefined) return;
        const replacement = fork();
        const up = await new Promise<boolean>((resolve) => {
          replacement.once('listening', () => resolve(true));
          replacement.once('exit', () => resolve(false));
        });
        if (!up) {
          primaryLog('error', { worker: replacement.process.pid }, 'rolling restart: the new worker did not start; the old one keeps serving');
          return;
        }
        retiring.add(worker);
        const gone = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
        if (worker.isConnected()) worker.send({ type: STOP_MESSAGE, signal: 'SIGTERM' } satisfies StopMessage);
        else worker.process.kill('SIGTERM');
        await gone;
      }
      primaryLog('info', {}, 'rolling restart done');
    } finally {
      restarting = false;
    }
  };

  let signals = 0;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      signals += 1;
      if (signals > 1) {
        primaryLog('warn', { signal }, 'second signal: stopping the workers now');
        for (const w of liveWorkers()) w.process.kill('SIGKILL');
        process.exit(1);
      }
      primaryLog('info', { signal, workers: liveWorkers().length }, 'shutting down the workers');
      stopAll(signal);
    });
  }
  process.on('SIGHUP', () => void rollingRestart());

  primaryLog('info', { workers: count, port: config.server.port }, 'starting workers');
  for (let i = 0; i < count; i++) fork();
}
