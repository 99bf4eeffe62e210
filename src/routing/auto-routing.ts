import { createHmac, randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { DecisionLog } from './decision-log.js';
import type { GatewayConfig, RouteConfig } from '../config/index.js';
import type { GatewayMetrics } from '../metrics/registry.js';
import type { StateStore } from '../state/index.js';
import { autoRoutes } from './auto-route.js';
import { packageModelsDir } from './model/files.js';
import { RoutingModelManager, stateBroadcast, type ModelLog } from './model/manager.js';

export { AutoRouteDecider, type AutoRouteDecisionOptions, type Decide } from './auto-route.js';

/** The ML routing of a gateway: its two routes and the models behind them. */
export interface AutoRouting {
  readonly routes: readonly RouteConfig[];
  readonly manager: RoutingModelManager;
  /** The operators' folder in use. */
  readonly modelsDir: string;
  /** Recent decisions of this replica (mcp.sequentialThinking.decisionLogSize). */
  readonly decisionLog: DecisionLog;
  /** Salted principal hash for the decision log; only with mcp.memory.principalUsage. */
  readonly principalHash?: (subject: string) => string;
  start(): Promise<void>;
  close(): Promise<void>;
}

export interface AutoRoutingDeps {
  readonly state?: Pick<StateStore, 'backend' | 'publish' | 'subscribe' | 'cache' | 'onStatusChange'>;
  readonly metrics: Pick<GatewayMetrics, 'routingShadowAgreement'>;
  readonly log: ModelLog;
  /** Told when this replica activates another model (the event bus: /v1/events). */
  readonly onModelActivated?: (model: string, previous: string) => void;
}

/**
 * Load the routing models for `config.routing` (throws ModelFileError, one line per problem,
 * when the active or shadow model cannot be used) and build the two auto-routed routes.
 */
export function createAutoRouting(config: GatewayConfig, deps: AutoRoutingDeps): AutoRouting {
  const modelsDir = config.routing.modelsDir !== undefined ? resolve(config.routing.modelsDir) : packageModelsDir();
  const manager = RoutingModelManager.load({
    config: config.routing,
    dir: modelsDir,
    log: deps.log,
    // Only a shared store has other replicas to tell: the memory store is this process's own,
    // and a model file put there (~1.4 MiB of JSON text) would only be kept for nobody to read.
    ...(deps.state?.backend === 'redis' ? { broadcast: stateBroadcast(deps.state) } : {}),
    shadowCounter: deps.metrics.routingShadowAgreement,
    ...(deps.onModelActivated !== undefined ? { onActivated: deps.onModelActivated } : {}),
  });
  // A route configured for the same path (routes: in the YAML) is the operator's explicit choice: it wins.
  const routes = autoRoutes().filter((r) => {
    const configured = config.routes.find((c) => c.prefix === r.prefix);
    if (configured) deps.log.info({ path: r.prefix, service: configured.service }, 'routing: a configured route serves this path; the model does not choose its service');
    return configured === undefined;
  });
  const { memory, sequentialThinking } = config.mcp;
  const salt = memory.principalSalt ?? randomBytes(32).toString('hex');
  return {
    routes,
    manager,
    modelsDir,
    decisionLog: new DecisionLog(sequentialThinking.decisionLogSize),
    // Principals only as salted hashes (never the subject itself), and only when asked for.
    ...(memory.principalUsage ? { principalHash: (subject: string) => createHmac('sha256', salt).update(subject).digest('hex').slice(0, 16) } : {}),
    start: () => manager.start(),
    close: () => manager.close(),
  };
}
