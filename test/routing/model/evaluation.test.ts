import { describe, expect, it } from 'vitest';
import { formatEvaluation, summarise, thresholdTable, type ScoredExample } from '../../../src/routing/model/evaluation.js';

const p = (expected: string, predicted: string, confidence = 0.9): ScoredExample => ({ source: 's', expected, predicted, confidence, expectedProbability: expected === predicted ? confidence : 0.1 });

describe('evaluation figures', () => {
  // a: 3 right, 1 predicted b; b: 2 right; c: 1 right, 1 predicted a.
  const predictions = [p('a', 'a'), p('a', 'a'), p('a', 'a'), p('a', 'b', 0.4), p('b', 'b'), p('b', 'b'), p('c', 'c'), p('c', 'a', 0.55)];
  const r = summarise(['a', 'b', 'c'], predictions, { name: 'x.jsonl', hash: `sha256:${'1'.repeat(64)}` });

  it('computes accuracy, per-class precision/recall/F1, macro-F1 and the confusion matrix', () => {
    expect(r.accuracy).toBe(0.75);
    expect(r.confusion).toEqual({ labels: ['a', 'b', 'c'], matrix: [[3, 1, 0], [0, 2, 0], [1, 0, 1]] });
    expect(r.perClass.a).toEqual({ precision: 0.75, recall: 0.75, f1: 0.75, support: 4 });
    expect(r.perClass.b).toEqual({ precision: 0.6667, recall: 1, f1: 0.8, support: 2 });
    expect(r.perClass.c).toEqual({ precision: 1, recall: 0.5, f1: 0.6667, support: 2 });
    expect(r.macroF1).toBeCloseTo((0.75 + 0.8 + 2 / 3) / 3, 4);
  });

  it('tabulates coverage and accuracy per confidence threshold', () => {
    const t = thresholdTable(predictions, [0.5, 0.6]);
    expect(t[0]).toEqual({ threshold: 0.5, coverage: 0.875, accuracy: 0.8571 });
    expect(t[1]).toEqual({ threshold: 0.6, coverage: 0.75, accuracy: 1 });
  });

  it('formats a report with the figures and the matrix', () => {
    const text = formatEvaluation(r);
    expect(text).toContain('accuracy 0.7500  macro-F1 0.7389');
    expect(text).toMatch(/confusion matrix/);
    expect(text.split('\n').filter((l) => l.startsWith('c ')).at(-1)).toMatch(/^c\s+1\s+0\s+1$/);
  });
});
