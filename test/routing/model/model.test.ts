import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { modelFileSchema } from '../../../src/routing/model/format.js';
import { ModelFileError, RoutingModel } from '../../../src/routing/model/model.js';
import { modelFile, query, SERVICES } from './helpers.js';

function problems(value: unknown): string[] {
  try {
    RoutingModel.fromJson(value, 'm.json');
  } catch (err) {
    expect(err).toBeInstanceOf(ModelFileError);
    return [...(err as ModelFileError).problems];
  }
  throw new Error('expected the model to be refused');
}

describe('model file', () => {
  it('round-trips sparse weights exactly (float32)', () => {
    const dense = new Float32Array(1024 * 5);
    dense[7 * 5 + 2] = 1.5;
    dense[900 * 5 + 4] = -0.125;
    const model = RoutingModel.fromJson(JSON.parse(JSON.stringify(modelFile({ dense }))));
    expect(model.rows).toBe(2);
    expect(model.weights[7 * 5 + 2]).toBe(1.5);
    expect(model.weights[900 * 5 + 4]).toBe(-0.125);
    expect(model.weights.reduce((a, b) => a + Math.abs(b), 0)).toBe(1.625);
  });

  it('gives its file back as read, weights rebuilt byte for byte (every shipped model, and a row of zeros)', () => {
    const dir = join(fileURLToPath(new URL('../../../routing-models/models/', import.meta.url)));
    const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const json = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { weights: unknown };
      const model = RoutingModel.fromJson(json, f);
      expect(model.file.weights, f).toEqual(json.weights);
      expect(JSON.stringify(model.file), f).toBe(JSON.stringify(modelFileSchema.parse(json)));
    }
    // A row whose weights are all zero stays in the file (it is not re-derived from the values).
    const rows = Buffer.alloc(8);
    rows.writeUInt32LE(3, 0);
    rows.writeUInt32LE(9, 4);
    const values = Buffer.alloc(2 * 5 * 4);
    values.writeFloatLE(-0.5, 5 * 4);
    const file = { ...modelFile(), weights: { encoding: 'sparse-f32-base64', rows: rows.toString('base64'), values: values.toString('base64') } };
    const model = RoutingModel.fromJson(file);
    expect(model.rows).toBe(2);
    expect(model.file.weights).toEqual(file.weights);
    expect(model.createdAt).toBe(file.createdAt);
  });

  it('gives probabilities that sum to 1, the bias deciding when weights are zero', () => {
    const model = RoutingModel.fromJson(modelFile({ bias: [0, 0, 3, 0, 0] }));
    const out = new Float64Array(5);
    const best = model.predictInto(query('anything at all'), out);
    expect(model.labels[best]).toBe('knowledge');
    expect(out.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    const p = model.predict(query('x'));
    expect(p.label).toBe('knowledge');
    expect(p.confidence).toBeCloseTo(Math.exp(3) / (Math.exp(3) + 4), 10);
    expect(Object.keys(p.probabilities)).toEqual([...SERVICES]);
  });

  it('refuses files that do not follow the format, naming each problem', () => {
    const good = modelFile();
    expect(problems({ ...good, format: 'other' })[0]).toMatch(/^format: /);
    expect(problems({ ...good, formatVersion: 2 })[0]).toMatch(/^formatVersion: /);
    expect(problems({ ...good, labels: ['twin', 'twin', 'fog', 'p2p', 'knowledge'] })).toContain('labels: labels must be unique');
    expect(problems({ ...good, bias: [0] })).toContain('bias: needs one value per label (5)');
    expect(problems({ ...good, extra: 1 })[0]).toMatch(/unrecognized|extra/i);
    expect(problems({ ...good, features: { ...good.features, buckets: 1000 } })).toContain('features.buckets: a power of two');
    expect(problems({ ...good, weights: { ...good.weights, values: 'AAAA' } })[0]).toMatch(/^weights\.values: expected/);
    expect(problems({ ...good, weights: { encoding: 'sparse-f32-base64', rows: Buffer.from(new Uint32Array([5000]).buffer).toString('base64'), values: Buffer.alloc(20).toString('base64') } })[0]).toMatch(
      /^weights\.rows\[0\]: 5000 is out of order or not below buckets/,
    );
    const nan = Buffer.alloc(20);
    nan.writeFloatLE(Number.NaN, 0);
    expect(problems({ ...good, weights: { encoding: 'sparse-f32-base64', rows: Buffer.from(new Uint32Array([3]).buffer).toString('base64'), values: nan.toString('base64') } })[0]).toMatch(
      /not a finite number/,
    );
    expect(problems({ ...good, features: { ...good.features, lexicon: 'klingon-1' } })[0]).toMatch(/^features\.lexicon: a lexicon this gateway knows \(domain-1/);
    expect(problems('nope')[0]).toMatch(/^\(root\): /);
  });

  it('explains a decision with the features that weigh most', () => {
    const dense = new Float32Array(1024 * 5);
    const model0 = RoutingModel.fromJson(modelFile());
    const ex = model0.extractor;
    ex.names = [];
    const n = ex.extract(query('peer'));
    const i = ex.names.indexOf('word:peer');
    ex.names = null;
    expect(i).toBeGreaterThanOrEqual(0);
    dense[ex.index[i]! * 5 + 4] = 5 * ex.sign[i]!; // "peer" -> p2p
    const model = RoutingModel.fromJson(modelFile({ dense }));
    const e = model.explain(query('peer'), 3);
    expect(n).toBe(e.features);
    expect(e.prediction.label).toBe('p2p');
    expect(e.contributions[0]!.feature).toBe('word:peer');
    expect(e.contributions[0]!.weight).toBeGreaterThan(0);
    expect(e.groups[0]!.feature).toBe('word "peer"');
  });
});
