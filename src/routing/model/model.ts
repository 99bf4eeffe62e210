import { FeatureExtractor, type FeatureSettings, type RoutingInput } from './features.js';
import { modelFileSchema, type ModelFile } from './format.js';

/*
 * The linear model at inference time: dense float32 weights (buckets x labels, row-major, so
 * one feature's weights for every label sit in one cache line), a bias per label, and a
 * feature extractor with preallocated buffers. `predictInto` allocates nothing.
 */

/** A model file that cannot be used, with one line per problem. */
export class ModelFileError extends Error {
  readonly problems: readonly string[];
  constructor(source: string, problems: readonly string[]) {
    super(`${source}: ${problems.length === 1 ? problems[0] : `\n  ${problems.join('\n  ')}`}`);
    this.name = 'ModelFileError';
    this.problems = problems;
  }
}

export interface Prediction {
  readonly label: string;
  readonly confidence: number;
  /** Probability per label, in the model's label order. */
  readonly probabilities: Readonly<Record<string, number>>;
}

/** Sparse rows -> base64 (little-endian uint32 rows, float32 values). */
export function encodeWeights(dense: ArrayLike<number>, buckets: number, labels: number, epsilon = 0): { rows: string; values: string } {
  const rows: number[] = [];
  for (let b = 0; b < buckets; b++) {
    for (let c = 0; c < labels; c++) {
      if (Math.abs(dense[b * labels + c]!) > epsilon) {
        rows.push(b);
        break;
      }
    }
  }
  const rowBuf = Buffer.alloc(rows.length * 4);
  const valBuf = Buffer.alloc(rows.length * labels * 4);
  rows.forEach((b, i) => {
    rowBuf.writeUInt32LE(b, i * 4);
    for (let c = 0; c < labels; c++) valBuf.writeFloatLE(dense[b * labels + c]!, (i * labels + c) * 4);
  });
  return { rows: rowBuf.toString('base64'), values: valBuf.toString('base64') };
}

/** The sparse rows' indices of a model file (little-endian uint32, base64): for trained models, whose file is not decoded. */
function decodeRowIndex(file: ModelFile): Uint32Array {
  const rowBuf = Buffer.from(file.weights.rows, 'base64');
  const rows = new Uint32Array(rowBuf.length >>> 2);
  for (let i = 0; i < rows.length; i++) rows[i] = rowBuf.readUInt32LE(i * 4);
  return rows;
}

/**
 * base64 sparse rows -> dense float32 (buckets x labels) and the rows' indices; problems are
 * appended to `problems`.
 */
function decodeWeights(file: ModelFile, problems: string[]): { dense: Float32Array; rowIndex: Uint32Array } {
  const labels = file.labels.length;
  const buckets = file.features.buckets;
  const dense = new Float32Array(buckets * labels);
  const rowBuf = Buffer.from(file.weights.rows, 'base64');
  const valBuf = Buffer.from(file.weights.values, 'base64');
  const rowIndex = new Uint32Array(rowBuf.length >>> 2);
  if (rowBuf.length % 4 !== 0) {
    problems.push('weights.rows: not a whole number of uint32 values');
    return { dense, rowIndex };
  }
  const rows = rowBuf.length / 4;
  if (valBuf.length !== rows * labels * 4) {
    problems.push(`weights.values: expected ${rows * labels} float32 values (${rows} rows x ${labels} labels), found ${valBuf.length / 4}`);
    return { dense, rowIndex };
  }
  let previous = -1;
  for (let i = 0; i < rows; i++) {
    const b = rowBuf.readUInt32LE(i * 4);
    if (b >= buckets || b <= previous) {
      problems.push(`weights.rows[${i}]: ${b} is out of order or not below buckets (${buckets})`);
      return { dense, rowIndex };
    }
    previous = b;
    rowIndex[i] = b;
    for (let c = 0; c < labels; c++) {
      const v = valBuf.readFloatLE((i * labels + c) * 4);
      if (!Number.isFinite(v)) {
        problems.push(`weights.values[${i * labels + c}]: not a finite number`);
        return { dense, rowIndex };
      }
      dense[b * labels + c] = v;
    }
  }
  return { dense, rowIndex };
}

export class RoutingModel {
  /**
   * The file without its weight strings: their base64 (1.4 MB for the shipped model) would
   * stay on the V8 heap for the life of the process, next to the dense weights made from
   * them. `file` rebuilds them, byte for byte, from the dense weights and the row indices.
   */
  readonly #file: ModelFile;
  readonly #rowIndex: Uint32Array;
  readonly id: string;
  readonly labels: readonly string[];
  readonly features: FeatureSettings;
  readonly weights: Float32Array;
  readonly bias: Float64Array;
  readonly extractor: FeatureExtractor;
  /** Non-zero rows in the file (for model cards and admin views). */
  readonly rows: number;
  /** Scratch output of `predict` (callers of `predictInto` pass their own). */
  readonly #scratch: Float64Array;

  private constructor(file: ModelFile, weights: Float32Array, rowIndex: Uint32Array) {
    this.#file = { ...file, weights: { encoding: file.weights.encoding, rows: '', values: '' } };
    this.#rowIndex = rowIndex;
    this.id = file.id;
    this.labels = Object.freeze([...file.labels]);
    this.features = Object.freeze({ ...file.features, textFields: Object.freeze([...file.features.textFields]), headers: Object.freeze([...file.features.headers]) });
    this.weights = weights;
    this.bias = Float64Array.from(file.bias);
    this.extractor = new FeatureExtractor(this.features);
    this.rows = this.#rowIndex.length;
    this.#scratch = new Float64Array(this.labels.length);
  }

  /** The model file, as read (weights re-encoded from the dense array: the same bytes). */
  get file(): ModelFile {
    const L = this.labels.length;
    const rows = this.#rowIndex;
    const values = Buffer.allocUnsafe(rows.length * L * 4);
    for (let i = 0; i < rows.length; i++) {
      for (let c = 0; c < L; c++) values.writeFloatLE(this.weights[rows[i]! * L + c]!, (i * L + c) * 4);
    }
    const rowBytes = Buffer.allocUnsafe(rows.length * 4);
    for (let i = 0; i < rows.length; i++) rowBytes.writeUInt32LE(rows[i]!, i * 4);
    return { ...this.#file, weights: { encoding: this.#file.weights.encoding, rows: rowBytes.toString('base64'), values: values.toString('base64') } };
  }

  /** What model listings show, without rebuilding the weights. */
  get createdAt(): string {
    return this.#file.createdAt;
  }

  get evaluation(): ModelFile['evaluation'] {
    return this.#file.evaluation;
  }

  /** Validate (zod, then the weights) and build. Throws ModelFileError naming each problem. */
  static fromJson(value: unknown, source = 'model'): RoutingModel {
    const parsed = modelFileSchema.safeParse(value);
    if (!parsed.success) {
      throw new ModelFileError(
        source,
        parsed.error.issues.map((i) => `${i.path.length > 0 ? i.path.map(String).join('.') : '(root)'}: ${i.message}`),
      );
    }
    const problems: string[] = [];
    const { dense, rowIndex } = decodeWeights(parsed.data, problems);
    if (problems.length > 0) throw new ModelFileError(source, problems);
    return new RoutingModel(parsed.data, dense, rowIndex);
  }

  /** Build from trained dense weights (the trainer). */
  static fromTrained(file: ModelFile, dense: Float32Array): RoutingModel {
    return new RoutingModel(file, dense, decodeRowIndex(file));
  }

  /**
   * Probabilities per label (model order) into `out`; returns the index of the most likely
   * label. Allocates nothing.
   */
  predictInto(input: RoutingInput, out: Float64Array): number {
    const ex = this.extractor;
    const n = ex.extract(input);
    const L = this.labels.length;
    const w = this.weights;
    const idx = ex.index;
    const sgn = ex.sign;
    for (let c = 0; c < L; c++) out[c] = 0;
    for (let i = 0; i < n; i++) {
      const base = idx[i]! * L;
      const s = sgn[i]!;
      for (let c = 0; c < L; c++) out[c]! += s * w[base + c]!;
    }
    const scale = n > 0 ? 1 / Math.sqrt(n) : 0;
    let max = -Infinity;
    for (let c = 0; c < L; c++) {
      const z = out[c]! * scale + this.bias[c]!;
      out[c] = z;
      if (z > max) max = z;
    }
    let sum = 0;
    for (let c = 0; c < L; c++) {
      const e = Math.exp(out[c]! - max);
      out[c] = e;
      sum += e;
    }
    let best = 0;
    for (let c = 0; c < L; c++) {
      out[c]! /= sum;
      if (out[c]! > out[best]!) best = c;
    }
    return best;
  }

  /** Convenience form (allocates the result): label, confidence and every probability. */
  predict(input: RoutingInput): Prediction {
    const best = this.predictInto(input, this.#scratch);
    const probabilities: Record<string, number> = {};
    this.labels.forEach((l, i) => (probabilities[l] = this.#scratch[i]!));
    return { label: this.labels[best]!, confidence: this.#scratch[best]!, probabilities };
  }

  /**
   * Why the model decides as it does: probabilities, and the features that pushed hardest
   * towards (positive) or away from (negative) the predicted label. Slow; for the CLI.
   */
  explain(input: RoutingInput, top = 10): {
    prediction: Prediction;
    features: number;
    /** Single hashed features (a word, one of its character n-grams, a bigram, the path, ...). */
    contributions: Array<{ feature: string; label: string; weight: number; perLabel: Record<string, number> }>;
    /** The same summed per word (the word and its character n-grams) or other feature: easier to read. */
    groups: Array<{ feature: string; label: string; weight: number; perLabel: Record<string, number> }>;
  } {
    const prediction = this.predict(input);
    const ex = this.extractor;
    ex.names = [];
    let n: number;
    let names: string[];
    try {
      n = ex.extract(input);
      names = ex.names;
    } finally {
      ex.names = null;
    }
    const L = this.labels.length;
    const scale = n > 0 ? 1 / Math.sqrt(n) : 0;
    const target = this.labels.indexOf(prediction.label);
    // The same feature can occur several times (a repeated word): sum per name.
    const byName = new Map<string, number[]>();
    for (let i = 0; i < n; i++) {
      const name = names[i] ?? `#${ex.index[i]}`;
      let acc = byName.get(name);
      if (acc === undefined) byName.set(name, (acc = new Array<number>(L).fill(0)));
      for (let c = 0; c < L; c++) acc[c]! += ex.sign[i]! * this.weights[ex.index[i]! * L + c]! * scale;
    }
    // Contributions to the chosen label relative to the mean over labels (softmax is shift invariant).
    const byGroup = new Map<string, number[]>();
    for (const [feature, acc] of byName) {
      const word = /^chars:\S+ \((.+)\)$/.exec(feature)?.[1] ?? /^word:(.+)$/.exec(feature)?.[1];
      const key = word !== undefined ? `word "${word}"` : feature.replace(/^bigram:(.+)$/, 'bigram "$1"');
      let g = byGroup.get(key);
      if (g === undefined) byGroup.set(key, (g = new Array<number>(L).fill(0)));
      for (let c = 0; c < L; c++) g[c]! += acc[c]!;
    }
    const view = (entries: Iterable<[string, number[]]>) => {
      const out = [...entries].map(([feature, acc]) => {
        const mean = acc.reduce((a, b) => a + b, 0) / L;
        const perLabel: Record<string, number> = {};
        this.labels.forEach((l, c) => (perLabel[l] = acc[c]! - mean));
        return { feature, label: prediction.label, weight: acc[target]! - mean, perLabel };
      });
      out.sort((a, b) => Math.abs(b.weight) - Math.abs(a.weight) || a.feature.localeCompare(b.feature));
      return out.slice(0, top);
    };
    return { prediction, features: n, contributions: view(byName), groups: view(byGroup) };
  }
}
