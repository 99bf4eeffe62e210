import { Counter, type LabelValues, type Metric, type MetricObjectWithValues, type MetricValue, type Registry } from 'prom-client';

/*
 * The metrics counted on every request, counted cheaply. prom-client's inc() and observe()
 * validate the label object's names, hash it into a string and look that string up in an
 * object used as a dictionary on every call; its histogram also makes a closure per
 * observation (issue 18's profiles: 3-4% of the gateway's busy CPU on the proxied and the
 * cached path, about 0.9 KB allocated per request). Here a label set is found in a Map by its
 * values, checked once when first seen, and its figures are plain numbers:
 *
 * - TalliedCounter keeps a prom-client Counter in the registry and adds the counts gathered
 *   since the last scrape to it when the registry collects (its public `collect` and `inc`).
 * - TalliedHistogram keeps its own buckets and gives the registry its values in the format
 *   prom-client's Histogram gives them (same names, labels, order, `le` values): prom-client
 *   has no way to add many observations at once, which collect-time adding would need.
 *
 * Both answer get() and reset() like prom-client's metrics, so /metrics, the cluster
 * aggregate (getMetricsAsJSON in each worker) and the admin metric queries read them as before.
 */

/** Label values as the request path gives them (numbers are shown as prom-client shows them). */
type Labels<T extends string> = Partial<Record<T, string | number>>;

/**
 * The cells of a metric, one per label set, found by its values one label at a time (a Map per
 * level): no key string is built per call, and the values the request path passes (the
 * method, a route pattern, a service name) are mostly the same string objects every time,
 * whose hash V8 keeps. Numbers are looked up as the strings prom-client would show.
 */
class LabelTree<T extends string, C> {
  readonly #names: readonly T[];
  readonly #root = new Map<unknown, unknown>();
  /** Every cell, in the order first seen (the exposition's order, as prom-client's). */
  readonly cells: C[] = [];

  constructor(names: readonly T[]) {
    this.#names = names;
  }

  /** The cell of this label set, if seen before. */
  get(labels: Labels<T> | undefined): C | undefined {
    const names = this.#names;
    let node: Map<unknown, unknown> | undefined = this.#root;
    for (let i = 0; i < names.length && node !== undefined; i++) {
      node = node.get(valueOf(labels, names[i]!)) as Map<unknown, unknown> | undefined;
    }
    return names.length === 0 ? (this.#root.get('') as C | undefined) : (node as C | undefined);
  }

  /** A label set seen for the first time. */
  add(labels: Labels<T> | undefined, cell: C): C {
    const names = this.#names;
    let node = this.#root;
    for (let i = 0; i < names.length - 1; i++) {
      const value = valueOf(labels, names[i]!);
      let next = node.get(value) as Map<unknown, unknown> | undefined;
      if (next === undefined) {
        next = new Map();
        node.set(value, next);
      }
      node = next;
    }
    node.set(names.length === 0 ? '' : valueOf(labels, names[names.length - 1]!), cell);
    this.cells.push(cell);
    return cell;
  }

  clear(): void {
    this.#root.clear();
    this.cells.length = 0;
  }
}

function valueOf<T extends string>(labels: Labels<T> | undefined, name: T): string | undefined {
  const value = labels?.[name];
  return typeof value === 'number' ? String(value) : value;
}

/** The label set stored for a new cell, after the check prom-client makes on every call. */
function checkedLabels<T extends string>(metric: string, names: readonly T[], labels: Labels<T> | undefined): LabelValues<T> {
  const copy: Labels<T> = {};
  for (const [name, value] of Object.entries(labels ?? {}) as [T, string | number | undefined][]) {
    if (!names.includes(name)) throw new Error(`${metric}: added label "${name}" is not included in initial labelset: ${JSON.stringify(names)}`);
    if (value !== undefined) copy[name] = value;
  }
  return copy as LabelValues<T>;
}

export interface TalliedConfig<T extends string> {
  readonly name: string;
  readonly help: string;
  readonly labelNames?: readonly T[];
  readonly registers: readonly Registry[];
}

interface CounterCell<T extends string> {
  readonly labels: LabelValues<T>;
  pending: number;
  /** Added to the prom-client counter at least once (a series counted 0 times still shows). */
  shown: boolean;
}

/** A counter whose increments are tallied per label set and handed to prom-client at scrape time. */
export class TalliedCounter<T extends string = string> {
  readonly name: string;
  readonly #counter: Counter<T>;
  readonly #names: readonly T[];
  readonly #cells: LabelTree<T, CounterCell<T>>;

  constructor(config: TalliedConfig<T>) {
    this.name = config.name;
    this.#names = config.labelNames ?? [];
    const cells = (this.#cells = new LabelTree(this.#names));
    this.#counter = new ResettingCounter<T>(() => cells.clear(), {
      name: config.name,
      help: config.help,
      labelNames: this.#names,
      registers: [...config.registers],
      collect() {
        for (const cell of cells.cells) {
          if (cell.pending === 0 && cell.shown) continue;
          this.inc(cell.labels, cell.pending);
          cell.pending = 0;
          cell.shown = true;
        }
      },
    });
  }

  inc(labels?: Labels<T>, value = 1): void {
    if (!(value >= 0) || !Number.isFinite(value)) throw new TypeError(`${this.name}: a counter only grows by a finite amount (got ${value})`);
    const cell = this.#cells.get(labels) ?? this.#cells.add(labels, { labels: checkedLabels(this.name, this.#names, labels), pending: 0, shown: false });
    cell.pending += value;
  }

  get(): Promise<MetricObjectWithValues<MetricValue<T>>> {
    return this.#counter.get();
  }

  reset(): void {
    this.#counter.reset();
  }
}

/** The registry resets the prom-client counter itself (resetMetrics): the tallies not yet added go with it. */
class ResettingCounter<T extends string> extends Counter<T> {
  readonly #onReset: () => void;

  constructor(onReset: () => void, config: ConstructorParameters<typeof Counter<T>>[0]) {
    super(config);
    this.#onReset = onReset;
  }

  override reset(): void {
    // prom-client's constructor calls reset() before this class's fields exist.
    if (#onReset in this) this.#onReset();
    super.reset();
  }
}

/** One value of a histogram as prom-client gives it: a bucket (`le`), the sum or the count of a label set. */
export interface HistogramValue<T extends string> {
  readonly labels: Readonly<Record<string, string | number>>;
  readonly value: number;
  readonly metricName: string;
  /** Text exposition only: the label set, printed after `le`. */
  readonly sharedLabels?: LabelValues<T>;
}

/** What get() answers, as prom-client's Histogram does. */
export interface HistogramData<T extends string> {
  readonly name: string;
  readonly help: string;
  readonly type: 'histogram';
  readonly aggregator: 'sum';
  readonly values: HistogramValue<T>[];
}

interface HistogramCell<T extends string> {
  readonly labels: LabelValues<T>;
  /** Observations per bucket (not cumulative), by index of the upper bound. */
  readonly buckets: Float64Array;
  sum: number;
  count: number;
}

export interface TalliedHistogramConfig<T extends string> extends TalliedConfig<T> {
  readonly buckets: readonly number[];
}

/** A histogram with its own buckets, exposed through a prom-client registry (see above). */
export class TalliedHistogram<T extends string = string> {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram' as const;
  readonly aggregator = 'sum' as const;
  readonly #names: readonly T[];
  readonly #bounds: readonly number[];
  readonly #cells: LabelTree<T, HistogramCell<T>>;

  constructor(config: TalliedHistogramConfig<T>) {
    this.name = config.name;
    this.help = config.help;
    this.#names = config.labelNames ?? [];
    this.#bounds = [...new Set(config.buckets)].sort((a, b) => a - b);
    this.#cells = new LabelTree(this.#names);
    // Registered as prom-client's own metrics are; it answers the registry's calls (get,
    // getForPromString, reset) with the same shapes. The cast: prom-client types registerMetric
    // with its own classes only.
    for (const registry of config.registers) registry.registerMetric(this as unknown as Metric<T>);
  }

  observe(labels: Labels<T>, value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`${this.name}: not a valid number: ${value}`);
    const cell =
      this.#cells.get(labels) ??
      this.#cells.add(labels, { labels: checkedLabels(this.name, this.#names, labels), buckets: new Float64Array(this.#bounds.length), sum: 0, count: 0 });
    cell.sum += value;
    cell.count += 1;
    const bounds = this.#bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]!) {
        cell.buckets[i]! += 1;
        break;
      }
    }
  }

  /** The registry's text exposition: bucket labels (`le`) apart, the label set shared, as prom-client does. */
  async getForPromString(): Promise<HistogramData<T>> {
    const bucketName = `${this.name}_bucket`;
    const values: HistogramValue<T>[] = [];
    for (const cell of this.#cells.cells) {
      let cumulative = 0;
      for (let i = 0; i < this.#bounds.length; i++) {
        cumulative += cell.buckets[i]!;
        values.push({ labels: { le: this.#bounds[i]! }, sharedLabels: cell.labels, value: cumulative, metricName: bucketName });
      }
      values.push(
        { labels: { le: '+Inf' }, sharedLabels: cell.labels, value: cell.count, metricName: bucketName },
        { labels: {}, sharedLabels: cell.labels, value: cell.sum, metricName: `${this.name}_sum` },
        { labels: {}, sharedLabels: cell.labels, value: cell.count, metricName: `${this.name}_count` },
      );
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /** As JSON (getMetricsAsJSON, the cluster aggregate, admin queries): each value's labels with the set merged in. */
  async get(): Promise<HistogramData<T>> {
    const data = await this.getForPromString();
    // As prom-client's: buckets carry `exemplar: null` (no exemplars kept).
    const values = data.values.map(({ sharedLabels, ...value }) => ({
      ...value,
      labels: { ...value.labels, ...sharedLabels },
      ...('le' in value.labels ? { exemplar: null } : {}),
    }));
    return { ...data, values };
  }

  reset(): void {
    this.#cells.clear();
  }
}
