import { describe, expect, it } from 'vitest';
import { DEFAULT_FEATURE_SETTINGS } from '../../../src/routing/model/features.js';
import { evaluate } from '../../../src/routing/model/evaluation.js';
import { backgroundInputs, DEFAULT_TRAINING, prng, train } from '../../../src/routing/model/trainer.js';
import { query, SERVICES, toyData } from './helpers.js';

const options = { labels: SERVICES, features: { ...DEFAULT_FEATURE_SETTINGS, buckets: 1 << 14 }, ...DEFAULT_TRAINING, epochs: 12, backgroundExamples: 40, createdAt: new Date('2026-01-01T00:00:00Z') };

describe('trainer', () => {
  it('learns the toy data and scores it', () => {
    const data = toyData();
    const { model, file, validation } = train(data, { ...options, validation: data });
    expect(validation!.accuracy).toBe(1);
    expect(file.evaluation!.accuracy).toBe(1);
    expect(model.predict(query('please sync the folder with peer carol')).label).toBe('p2p');
    expect(model.predict(query('cancel the gpu job')).label).toBe('fog');
    expect(file.training).toMatchObject({ examples: 25, backgroundExamples: 40, seed: 42, epochs: 12, dataHash: data.hash });
  });

  it('is deterministic for a seed: same data and seed, same weights and id', () => {
    const a = train(toyData(), options).file;
    const b = train(toyData(), options).file;
    expect(b.id).toBe(a.id);
    expect(b.weights).toEqual(a.weights);
    expect(b.bias).toEqual(a.bias);
    const c = train(toyData(), { ...options, seed: 7 }).file;
    expect(c.id).not.toBe(a.id);
  });

  it('is unsure on requests without information (background examples), sure without them only by accident', () => {
    const { model } = train(toyData(), options);
    for (const text of ['', 'ok', 'zorblax quim', 'hmm']) expect(model.predict(query(text)).confidence).toBeLessThan(0.5);
  });

  it('refuses data with labels that are not among the model labels', () => {
    const data = toyData();
    expect(() => train(data, { ...options, labels: ['twin', 'fog'] })).toThrow(/not services of the model: agent-controller, knowledge, p2p/);
  });

  it('reports progress per epoch', () => {
    const seen: number[] = [];
    const data = toyData();
    train(data, { ...options, validation: data, onEpoch: (p) => seen.push(p.epoch) });
    expect(seen).toEqual(Array.from({ length: 12 }, (_v, i) => i + 1));
  });

  it('has a seeded PRNG and seeded background inputs', () => {
    const a = prng(1);
    const b = prng(1);
    expect([a(), a(), a()]).toEqual([b(), b(), b()]);
    expect(backgroundInputs(10, 3, ['query'])).toEqual(backgroundInputs(10, 3, ['query']));
    expect(backgroundInputs(10, 3, ['query']).some((i) => i.path === '/v1/upload')).toBe(true);
  });

  it('evaluates to the same figures as stored after a round trip through JSON', async () => {
    const data = toyData();
    const { file } = train(data, { ...options, validation: data });
    const { RoutingModel } = await import('../../../src/routing/model/model.js');
    const reloaded = RoutingModel.fromJson(JSON.parse(JSON.stringify(file)));
    expect(evaluate(reloaded, data).accuracy).toBe(file.evaluation!.accuracy);
  });
});
