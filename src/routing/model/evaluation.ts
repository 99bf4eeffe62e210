import { exampleInput, type DataSet } from './data.js';
import type { Evaluation } from './format.js';
import type { RoutingModel } from './model.js';

/*
 * Figures of a model on labelled data: accuracy, macro-F1, per-class precision/recall/F1,
 * the confusion matrix (rows: true label, columns: predicted), log-loss, and the predictions
 * themselves for reports (compare, disagreements, threshold tables).
 */

export interface ScoredExample {
  readonly source: string;
  readonly expected: string;
  readonly predicted: string;
  readonly confidence: number;
  /** Probability the model gave the expected label. */
  readonly expectedProbability: number;
}

export interface EvaluationResult extends Evaluation {
  readonly predictions: readonly ScoredExample[];
}

const round = (x: number, digits = 4) => Math.round(x * 10 ** digits) / 10 ** digits;

export function scoreExamples(model: RoutingModel, data: DataSet): ScoredExample[] {
  const out = new Float64Array(model.labels.length);
  const index = new Map(model.labels.map((l, i) => [l, i]));
  return data.examples.map((e) => {
    const expectedIndex = index.get(e.service);
    if (expectedIndex === undefined) {
      throw new Error(`${e.source}: label "${e.service}" is not one of the model's labels (${model.labels.join(', ')})`);
    }
    const best = model.predictInto(exampleInput(e), out);
    return {
      source: e.source,
      expected: e.service,
      predicted: model.labels[best]!,
      confidence: out[best]!,
      expectedProbability: out[expectedIndex]!,
    };
  });
}

/** Figures from predictions, over `labels` (the model's label order). */
export function summarise(labels: readonly string[], predictions: readonly ScoredExample[], data: { name: string; hash: string }): EvaluationResult {
  const index = new Map(labels.map((l, i) => [l, i]));
  const matrix = labels.map(() => labels.map(() => 0));
  let correct = 0;
  let logLoss = 0;
  for (const p of predictions) {
    matrix[index.get(p.expected)!]![index.get(p.predicted)!]! += 1;
    if (p.expected === p.predicted) correct += 1;
    logLoss -= Math.log(Math.max(p.expectedProbability, 1e-12));
  }
  const perClass: Evaluation['perClass'] = {};
  const f1s: number[] = [];
  labels.forEach((label, i) => {
    const tp = matrix[i]![i]!;
    const support = matrix[i]!.reduce((a, b) => a + b, 0);
    const predicted = matrix.reduce((a, row) => a + row[i]!, 0);
    const precision = predicted > 0 ? tp / predicted : 0;
    const recall = support > 0 ? tp / support : 0;
    const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
    perClass[label] = { precision: round(precision), recall: round(recall), f1: round(f1), support };
    // Labels absent from the data and never predicted do not count towards the macro average.
    if (support > 0 || predicted > 0) f1s.push(f1);
  });
  const n = predictions.length;
  return {
    data: data.name,
    dataHash: data.hash,
    examples: n,
    accuracy: round(n > 0 ? correct / n : 0),
    macroF1: round(f1s.length > 0 ? f1s.reduce((a, b) => a + b, 0) / f1s.length : 0),
    logLoss: round(n > 0 ? logLoss / n : 0),
    perClass,
    confusion: { labels: [...labels], matrix },
    predictions,
  };
}

export function evaluate(model: RoutingModel, data: DataSet, name = data.files.map((f) => f.split('/').pop()).join('+')): EvaluationResult {
  return summarise(model.labels, scoreExamples(model, data), { name, hash: data.hash });
}

/** The part of an evaluation stored in a model file (no predictions). */
export function storedEvaluation(result: EvaluationResult): Evaluation {
  const { predictions: _predictions, ...stored } = result;
  return stored;
}

export interface ThresholdRow {
  readonly threshold: number;
  /** Share of requests the model decides (confidence >= threshold). */
  readonly coverage: number;
  /** Accuracy on those. */
  readonly accuracy: number;
}

/** Coverage and accuracy above each confidence threshold (what a threshold would send to the default). */
export function thresholdTable(predictions: readonly ScoredExample[], thresholds: readonly number[] = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]): ThresholdRow[] {
  return thresholds.map((t) => {
    const kept = predictions.filter((p) => p.confidence >= t);
    const right = kept.filter((p) => p.expected === p.predicted).length;
    return { threshold: t, coverage: round(predictions.length > 0 ? kept.length / predictions.length : 0), accuracy: round(kept.length > 0 ? right / kept.length : 0) };
  });
}

/** A text table: header row and rows, columns padded. */
export function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** The human-readable report of an evaluation: figures, per-class table, confusion matrix. */
export function formatEvaluation(result: Evaluation): string {
  const labels = result.confusion.labels;
  const pct = (x: number) => x.toFixed(4);
  const lines = [
    `examples ${result.examples}  accuracy ${pct(result.accuracy)}  macro-F1 ${pct(result.macroF1)}  log-loss ${result.logLoss.toFixed(4)}`,
    '',
    table(
      ['class', 'precision', 'recall', 'f1', 'support'],
      labels.map((l) => {
        const c = result.perClass[l]!;
        return [l, pct(c.precision), pct(c.recall), pct(c.f1), String(c.support)];
      }),
    ),
    '',
    'confusion matrix (rows: true label, columns: predicted)',
    table(
      ['', ...labels],
      labels.map((l, i) => [l, ...result.confusion.matrix[i]!.map(String)]),
    ),
  ];
  return lines.join('\n');
}
