import { exposureWarnings, type GatewayConfig } from '../config/index.js';
import { buildGateway, type Gateway } from './app.js';

/**
 * Run a gateway until SIGTERM/SIGINT, then shut it down gracefully. `onStop` runs after the
 * gateway has closed (the demo stops its stand-ins there).
 */
export async function runUntilSignal(
  config: GatewayConfig,
  hooks: {
    onListening?: (gateway: Gateway, url: string) => void | Promise<void>;
    onStop?: () => Promise<void>;
    /** The signals that stop it (default SIGTERM and SIGINT); a cluster worker takes SIGINT from its primary (src/server/cluster.ts). */
    signals?: readonly ('SIGTERM' | 'SIGINT')[];
    /** Receives the stop function, for a stop that comes another way than a process signal (the cluster primary's message). */
    stopper?: (stop: (signal: 'SIGTERM' | 'SIGINT') => void) => void;
  } = {},
): Promise<Gateway> {
  const gateway = await buildGateway(config);
  const url = await gateway.listen();
  for (const warning of exposureWarnings(config)) gateway.app.log.warn({ host: config.server.host, environment: config.environment }, warning);
  gateway.app.log.info({ url, routes: gateway.table.active.map((r) => `${r.prefix} -> ${r.service}`) }, 'gateway listening');
  await hooks.onListening?.(gateway, url);

  let stopping = false;
  const stop = (signal: 'SIGTERM' | 'SIGINT') => {
    if (stopping) {
      gateway.app.log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    // SIGTERM comes from an orchestrator: wait for load balancers to notice /readyz before
    // closing. SIGINT is someone at a terminal (Ctrl-C): no one to drain for.
    const drainDelayMs = signal === 'SIGTERM' ? config.server.drainDelayMs : 0;
    gateway.app.log.info({ signal, drainDelayMs }, 'shutting down: draining in-flight requests');
    gateway
      .close({ drainDelayMs })
      .then(() => hooks.onStop?.())
      .then(
        () => {
          gateway.app.log.info('shutdown complete');
          process.exit(0);
        },
        (err: unknown) => {
          gateway.app.log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  for (const signal of hooks.signals ?? ['SIGTERM', 'SIGINT']) process.once(signal, stop);
  hooks.stopper?.(stop);
  return gateway;
}
