import type { EventChannel, GatewayEvent } from '../../../src/events/index.js';
import type { DecisionLog } from '../../../src/routing/decision-log.js';
import type { UpstreamToolCaller } from '../../clients/types.js';
import { MemoryRecorder, type ModelStatus, type RecorderDeps, type RecorderSettings } from './recorder.js';
import type { RememberedHealth } from './graph.js';

export { MemoryRecorder, type RecorderEvent, type RecorderSettings, type ModelStatus } from './recorder.js';
export { memoryFileBound, rememberedHealth, rememberedBaselines, hourOfWeek, entityNames, type Baseline } from './graph.js';

/*
 * The operational memory of a gateway (DESIGN.md, Integrations): the recorder fed from the
 * gateway's own observation points, and the warm start. The gateway assembly (src/server/app.ts)
 * builds it when mcp.memory is enabled and a memory server is configured.
 *
 * Feeds, all O(1) pushes into the recorder's queue or counters (nothing on the request path waits):
 * - the event bus's gateway channel: `service.health` of this replica's own probes (each replica
 *   records what it saw), `traffic.shifted` (keyed: one delivery however many replicas announce it);
 * - breaker changes (src/resilience: onBreakerChange), passed in by the assembly;
 * - the routing decision log (src/routing/decision-log.ts): per-interval aggregates;
 * - the metrics registry (interval summaries, baselines) and the model manager's status, read at each flush.
 */

export interface OperationalMemoryDeps extends Omit<RecorderDeps, 'settings'> {
  readonly settings: RecorderSettings & { readonly warmStart: boolean; readonly warmStartWaitMs: number };
  readonly events?: EventChannel<GatewayEvent>;
  readonly decisions?: DecisionLog;
  /** Shows the remembered health states until the first probe decides (HealthProber.seedFromMemory). */
  readonly seedHealth?: (states: readonly RememberedHealth[]) => number;
  readonly modelStatus?: () => ModelStatus;
}

export class OperationalMemory {
  readonly recorder: MemoryRecorder;
  readonly #deps: OperationalMemoryDeps;
  readonly #unsubscribe: Array<() => void> = [];
  #closed = false;

  constructor(deps: OperationalMemoryDeps) {
    this.#deps = deps;
    this.recorder = new MemoryRecorder(deps);
  }

  /**
   * Warm start first (waiting at most warmStartWaitMs for the memory server, at start-up only:
   * never a request), then the feeds and the flush timer. A memory server that is down or
   * answers nonsense costs the warm start, never the start-up.
   */
  async start(): Promise<void> {
    const { settings, caller, log } = this.#deps;
    if (settings.warmStart) {
      try {
        if (await waitReady(caller, settings.server, settings.warmStartWaitMs, () => this.#closed)) {
          const loaded = await this.recorder.load();
          if (loaded !== undefined) {
            const seeded = this.#deps.seedHealth?.(loaded.health) ?? 0;
            log?.info({ services: seeded, baselines: loaded.baselines }, 'memory: warm start (health states shown with source "memory" until the first probe)');
          }
        } else log?.info({ server: settings.server }, 'memory: the memory server is not ready; no warm start');
      } catch (err) {
        log?.warn({ err: err instanceof Error ? err.message : String(err) }, 'memory: warm start failed; starting cold');
      }
    }
    const r = this.recorder;
    if (this.#deps.events) {
      this.#unsubscribe.push(
        this.#deps.events.subscribe(({ event, local }) => {
          if (event.type === 'service.health') {
            if (local) r.healthChanged(event.service, event.status, event.cause);
          } else if (event.type === 'traffic.shifted') r.trafficShifted(event.route, event.version, event.canary);
        }),
      );
    }
    if (this.#deps.decisions) this.#unsubscribe.push(this.#deps.decisions.onDecision((d) => r.decided(d)));
    r.recordTopology();
    await r.start();
  }

  /** A host breaker changed state (src/resilience onBreakerChange). */
  breakerChanged(change: { readonly service: string; readonly to: string }): void {
    this.recorder.breakerChanged(change.service, change.to);
  }

  /** Stop listening and write what is queued, waiting at most `waitMs`. */
  async close(waitMs = 3000): Promise<void> {
    this.#closed = true;
    for (const u of this.#unsubscribe.splice(0)) u();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.recorder.close(), new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs)))]);
    clearTimeout(timer);
  }
}

/** Whether `server` became ready within `waitMs` (polled: the caller interface has no readiness event). */
async function waitReady(caller: UpstreamToolCaller, server: string, waitMs: number, stop: () => boolean): Promise<boolean> {
  const deadline = performance.now() + waitMs;
  while (!caller.isReady(server)) {
    if (stop() || performance.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return true;
}
