import cluster from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';

/*
 * /metrics across the worker processes of WORKER_THREADS (src/server/cluster.ts): every worker
 * answers /metrics with the sum over all workers, which prom-client's AggregatorRegistry
 * computes in the primary from each worker's registry (its own IPC protocol). A worker that
 * gets a scrape asks the primary over the same IPC channel and waits for the text.
 */

const REQUEST = 'unified-gateway:metrics-request';
const ANSWER = 'unified-gateway:metrics-answer';
/** Longer than prom-client's own 5 s per-worker timeout, so its error comes back first. */
const ANSWER_TIMEOUT_MS = 6000;

interface MetricsRequest {
  readonly type: typeof REQUEST;
  readonly id: number;
}

interface MetricsAnswer {
  readonly type: typeof ANSWER;
  readonly id: number;
  readonly text?: string;
  readonly error?: string;
}

function isRequest(message: unknown): message is MetricsRequest {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === REQUEST && typeof (message as { id?: unknown }).id === 'number';
}

function isAnswer(message: unknown): message is MetricsAnswer {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === ANSWER && typeof (message as { id?: unknown }).id === 'number';
}

/** In the primary: answer workers' scrape requests with the aggregate of every worker's registry. */
export function serveClusterMetrics(): void {
  const aggregator = new AggregatorRegistry();
  cluster.on('message', (worker, message: unknown) => {
    if (!isRequest(message)) return;
    aggregator.clusterMetrics().then(
      (text) => worker.isConnected() && worker.send({ type: ANSWER, id: message.id, text } satisfies MetricsAnswer),
      (err: unknown) => worker.isConnected() && worker.send({ type: ANSWER, id: message.id, error: (err as Error).message } satisfies MetricsAnswer),
    );
  });
}

/** What GET /metrics serves: this registry, or in a cluster worker, every worker's together. */
export interface MetricsSource {
  readonly contentType: string;
  text(): Promise<string>;
}

/**
 * The registry's own text outside a cluster; in a worker of one, the primary's aggregate.
 * (The worker's registry is what it contributes: AggregatorRegistry.setRegistries.)
 */
export function metricsSource(registry: Registry): MetricsSource {
  const send = process.send?.bind(process);
  if (!cluster.isWorker || send === undefined) return { contentType: registry.contentType, text: () => registry.metrics() };
  // Constructing one installs prom-client's worker-side listener; the registry is this worker's part.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([registry]);
  let next = 0;
  const pending = new Map<number, { resolve: (text: string) => void; reject: (err: Error) => void; timer: NodeJS.Timeout }>();
  process.on('message', (message: unknown) => {
    if (!isAnswer(message)) return;
    const waiting = pending.get(message.id);
    if (waiting === undefined) return;
    pending.delete(message.id);
    clearTimeout(waiting.timer);
    if (typeof message.text === 'string') waiting.resolve(message.text);
    else waiting.reject(new Error(`metrics aggregation failed: ${message.error ?? 'no answer'}`));
  });
  return {
    contentType: registry.contentType,
    text: () =>
      new Promise<string>((resolve, reject) => {
        const id = next++;
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error('metrics aggregation: the primary did not answer'));
        }, ANSWER_TIMEOUT_MS);
        pending.set(id, { resolve, reject, timer });
        send({ type: REQUEST, id } satisfies MetricsRequest);
      }),
  };
}
