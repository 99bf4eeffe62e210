import { createHash } from 'node:crypto';
import { exampleInput, unknownLabels, type DataSet } from './data.js';
import type { RoutingInput } from './features.js';
import { evaluate, storedEvaluation, type EvaluationResult } from './evaluation.js';
import { FeatureExtractor, type FeatureSettings } from './features.js';
import { MODEL_FORMAT, MODEL_FORMAT_VERSION, type ModelFile } from './format.js';
import { encodeWeights, RoutingModel } from './model.js';

/*
 * The project's own trainer: multinomial logistic regression on the hashed features, fitted
 * by stochastic gradient descent with AdaGrad step sizes and L2 regularisation (applied to
 * the rows an example touches, the usual sparse approximation). Deterministic for a seed:
 * the only randomness is the order of examples in each epoch, drawn from a seeded PRNG, and
 * the arithmetic is done in float64 in a fixed order.
 */

export interface TrainOptions {
  readonly labels: readonly string[];
  readonly features: FeatureSettings;
  readonly seed: number;
  readonly epochs: number;
  readonly learningRate: number;
  readonly l2: number;
  /**
   * Synthetic requests that carry no information about the service (no text, gibberish,
   * filler words), trained towards the uniform distribution so that the model is unsure on
   * such input (and the gateway sends it to the default service). 0 turns them off.
   */
  readonly backgroundExamples?: number;
  readonly id?: string;
  readonly description?: string;
  /** Default: now. Not part of the model id, so the same seed and data give the same id. */
  readonly createdAt?: Date;
  /** Scored after every epoch (progress) and stored as the model's evaluation at the end. */
  readonly validation?: DataSet;
  readonly validationName?: string;
  readonly onEpoch?: (progress: EpochProgress) => void;
}

export interface EpochProgress {
  readonly epoch: number;
  readonly epochs: number;
  readonly loss: number;
  readonly trainAccuracy: number;
  readonly validation?: { readonly accuracy: number; readonly macroF1: number };
}

export interface TrainResult {
  readonly model: RoutingModel;
  readonly file: ModelFile;
  readonly validation?: EvaluationResult;
}

export const DEFAULT_TRAINING = Object.freeze({ seed: 42, epochs: 24, learningRate: 0.4, l2: 2e-5, backgroundExamples: 120 });

/** mulberry32: a small, fast, seedable PRNG (32-bit state). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Vector {
  readonly index: Int32Array;
  readonly sign: Float64Array;
  readonly scale: number;
  /** Index of the label, or -1 for a background example (uniform target). */
  readonly label: number;
}

function vector(extractor: FeatureExtractor, input: RoutingInput, label: number): Vector {
  const n = extractor.extract(input);
  return {
    index: extractor.index.slice(0, n),
    sign: Float64Array.from(extractor.sign.subarray(0, n)),
    scale: n > 0 ? 1 / Math.sqrt(n) : 0,
    label,
  };
}

const FILLER = ['ok', 'yes', 'no', 'the', 'and', 'what', 'hmm', 'please', 'thanks', 'hi', 'so', 'well', 'maybe', 'this', 'that', 'it', 'a', 'is', 'test', 'hello world', 'asdf', 'lorem ipsum', '...', '?'];
const CONSONANTS = 'bcdfghjklmnpqrstvwxz';
const VOWELS = 'aeiouy';

/**
 * Requests with no information about the service: empty text, made-up words, filler words;
 * for /v1/query and (with a meaningless file) /v1/upload. Drawn from their own seeded PRNG.
 */
export function backgroundInputs(count: number, seed: number, textFields: readonly string[]): RoutingInput[] {
  const random = prng(seed ^ 0x5bd1e995);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const word = () => {
    let w = '';
    const len = 3 + Math.floor(random() * 6);
    for (let i = 0; i < len; i++) w += i % 2 === 0 ? pick([...CONSONANTS]) : pick([...VOWELS]);
    return w;
  };
  const out: RoutingInput[] = [];
  for (let i = 0; i < count; i++) {
    const kind = i % 4;
    const text =
      kind === 0 ? '' : kind === 1 ? Array.from({ length: 1 + Math.floor(random() * 4) }, word).join(' ') : kind === 2 ? pick(FILLER) : `${pick(FILLER)} ${word()}`;
    const field = pick(textFields);
    if (i % 5 === 4) {
      out.push({
        method: 'POST',
        path: '/v1/upload',
        contentType: 'multipart/form-data',
        file: { name: `${word()}.${pick(['bin', 'dat', 'tmp', 'file', 'out'])}`, type: 'application/octet-stream' },
        ...(text !== '' ? { body: { [field]: text } } : {}),
      });
    } else {
      out.push({ method: 'POST', path: '/v1/query', contentType: 'application/json', body: text === '' ? {} : { [field]: text } });
    }
  }
  return out;
}

function modelId(file: Omit<ModelFile, 'id' | 'createdAt' | 'evaluation' | 'description'>): string {
  const h = createHash('sha256');
  h.update(JSON.stringify([file.labels, file.features, file.bias, file.training]));
  h.update(file.weights.rows);
  h.update(file.weights.values);
  return `rm-${h.digest('hex').slice(0, 12)}`;
}

export function train(data: DataSet, options: TrainOptions): TrainResult {
  const { labels, features, seed, epochs, learningRate, l2 } = options;
  const missing = unknownLabels(data, labels);
  if (missing.length > 0) throw new Error(`training data has labels that are not services of the model: ${missing.join(', ')}`);
  if (options.validation) {
    const vMissing = unknownLabels(options.validation, labels);
    if (vMissing.length > 0) throw new Error(`validation data has labels that are not services of the model: ${vMissing.join(', ')}`);
  }
  const L = labels.length;
  const labelIndex = new Map(labels.map((l, i) => [l, i]));
  const extractor = new FeatureExtractor(features);
  const background = options.backgroundExamples ?? 0;
  const vectors = [
    ...data.examples.map((e) => vector(extractor, exampleInput(e), labelIndex.get(e.service)!)),
    ...backgroundInputs(background, seed, features.textFields).map((input) => vector(extractor, input, -1)),
  ];

  const B = features.buckets;
  const W = new Float64Array(B * L);
  const G = new Float64Array(B * L); // AdaGrad: sum of squared gradients per weight
  const bias = new Float64Array(L);
  const biasG = new Float64Array(L);
  const eps = 1e-8;
  const z = new Float64Array(L);
  const g = new Float64Array(L);
  const order = Int32Array.from(vectors, (_v, i) => i);
  const random = prng(seed);

  const snapshot = (): RoutingModel => {
    const file = buildFile(W, bias);
    return RoutingModel.fromTrained(file, Float32Array.from(W));
  };
  const trainingInfo = {
    trainer: 'sgd-adagrad-multinomial-logistic/1',
    dataHash: data.hash,
    files: data.files.map((f) => f.split('/').pop()!),
    examples: data.examples.length,
    backgroundExamples: background,
    seed,
    epochs,
    learningRate,
    l2,
  };
  const buildFile = (weights: Float64Array, b: Float64Array): ModelFile => {
    const base = {
      format: MODEL_FORMAT,
      formatVersion: MODEL_FORMAT_VERSION,
      labels: [...labels],
      features: { ...features, textFields: [...features.textFields], headers: [...features.headers] },
      bias: Array.from(b, (x) => Math.fround(x)),
      weights: { encoding: 'sparse-f32-base64' as const, ...encodeWeights(Float32Array.from(weights), B, L, 1e-7) },
      training: trainingInfo,
    };
    return {
      ...base,
      id: options.id ?? modelId(base),
      createdAt: (options.createdAt ?? new Date()).toISOString(),
      ...(options.description !== undefined ? { description: options.description } : {}),
    } as ModelFile;
  };

  for (let epoch = 1; epoch <= epochs; epoch++) {
    // Fisher-Yates with the seeded PRNG.
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      const t = order[i]!;
      order[i] = order[j]!;
      order[j] = t;
    }
    let loss = 0;
    let right = 0;
    for (let k = 0; k < order.length; k++) {
      const v = vectors[order[k]!]!;
      const { index, sign, scale, label } = v;
      const n = index.length;
      for (let c = 0; c < L; c++) z[c] = 0;
      for (let i = 0; i < n; i++) {
        const base = index[i]! * L;
        for (let c = 0; c < L; c++) z[c]! += sign[i]! * W[base + c]!;
      }
      let max = -Infinity;
      let best = 0;
      for (let c = 0; c < L; c++) {
        z[c] = z[c]! * scale + bias[c]!;
        if (z[c]! > max) {
          max = z[c]!;
          best = c;
        }
      }
      let sum = 0;
      for (let c = 0; c < L; c++) sum += Math.exp(z[c]! - max);
      if (label >= 0) {
        for (let c = 0; c < L; c++) g[c] = Math.exp(z[c]! - max) / sum - (c === label ? 1 : 0);
        loss -= Math.log(Math.max(g[label]! + 1, 1e-12));
        if (best === label) right++;
      } else {
        // Background: towards the uniform distribution (loss reported as KL divergence, 0 when reached).
        loss -= Math.log(L);
        for (let c = 0; c < L; c++) {
          const p = Math.exp(z[c]! - max) / sum;
          g[c] = p - 1 / L;
          loss -= Math.log(Math.max(p, 1e-12)) / L;
        }
      }

      for (let i = 0; i < n; i++) {
        const base = index[i]! * L;
        const x = sign[i]! * scale;
        for (let c = 0; c < L; c++) {
          const w = base + c;
          const grad = g[c]! * x + l2 * W[w]!;
          G[w]! += grad * grad;
          W[w]! -= (learningRate * grad) / (Math.sqrt(G[w]!) + eps);
        }
      }
      for (let c = 0; c < L; c++) {
        biasG[c]! += g[c]! * g[c]!;
        bias[c]! -= (learningRate * g[c]!) / (Math.sqrt(biasG[c]!) + eps);
      }
    }
    if (options.onEpoch) {
      let validation: EpochProgress['validation'];
      if (options.validation && (epoch === epochs || epoch % Math.max(1, Math.floor(epochs / 8)) === 0)) {
        const r = evaluate(snapshot(), options.validation);
        validation = { accuracy: r.accuracy, macroF1: r.macroF1 };
      }
      options.onEpoch({
        epoch,
        epochs,
        loss: loss / order.length,
        trainAccuracy: right / data.examples.length,
        ...(validation ? { validation } : {}),
      });
    }
  }

  const file = buildFile(W, bias);
  // Round-trip through the stored form so the returned model is exactly what a load gives.
  let model = RoutingModel.fromJson(file, 'trained model');
  let validation: EvaluationResult | undefined;
  if (options.validation) {
    validation = evaluate(model, options.validation, options.validationName);
    const withEvaluation: ModelFile = { ...file, evaluation: storedEvaluation(validation) };
    model = RoutingModel.fromJson(withEvaluation, 'trained model');
    return { model, file: withEvaluation, validation };
  }
  return { model, file };
}
