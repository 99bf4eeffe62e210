import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SERVICE_NAMES } from '../../../src/config/index.js';
import { exampleText, loadDataFiles } from '../../../src/routing/model/data.js';
import { evaluate } from '../../../src/routing/model/evaluation.js';
import { checkLabels, entryPath, loadModelFile, packageModelsDir, readPointer } from '../../../src/routing/model/files.js';

/*
 * The model that ships in routing-models/: it loads, covers the five services, was trained on
 * the shipped training split, and meets the acceptance figures on data it never saw.
 */
const dir = packageModelsDir();
const pointer = readPointer(dir)!;
const model = loadModelFile(entryPath(dir, pointer));
const train = loadDataFiles([join(dir, 'data/train.jsonl')]);
const validation = loadDataFiles([join(dir, 'data/validation.jsonl')]);
const holdout = loadDataFiles([join(dir, 'data/holdout.jsonl')]);
const fresh = loadDataFiles([join(dir, 'data/holdout-fresh.jsonl')]);
const december = loadDataFiles([join(dir, 'data/holdout-2026-12.jsonl')]);
const decemberB = loadDataFiles([join(dir, 'data/holdout-2026-12-b.jsonl')]);
const decemberC = loadDataFiles([join(dir, 'data/holdout-2026-12-c.jsonl')]);

describe('the shipped routing model', () => {
  it('is the active model, with the five services as labels', () => {
    expect(pointer.id).toBe(model.id);
    expect(() => checkLabels(model, SERVICE_NAMES)).not.toThrow();
  });

  it('was trained on the shipped training split (data hash) and stores its validation figures', () => {
    expect(model.file.training.dataHash).toBe(train.hash);
    expect(model.file.evaluation?.dataHash).toBe(validation.hash);
  });

  it('has at least 300 training examples per service, and validation/holdout texts that are not in training', () => {
    for (const s of SERVICE_NAMES) expect(train.examples.filter((e) => e.service === s).length).toBeGreaterThanOrEqual(300);
    const norm = (t: string) => t.toLowerCase().replace(/[^a-z0-9]+/g, ' ').trim();
    const seen = new Set(train.examples.map((e) => norm(exampleText(e))));
    const leaked = [...validation.examples, ...holdout.examples, ...fresh.examples, ...december.examples, ...decemberB.examples, ...decemberC.examples].filter((e) => seen.has(norm(exampleText(e))) && exampleText(e) !== '');
    expect(leaked.map((e) => e.source)).toEqual([]);
  });

  it('scores at least 0.95 accuracy and macro-F1 on the validation split, as its file says', () => {
    const r = evaluate(model, validation);
    expect(r.accuracy).toBeGreaterThanOrEqual(0.95);
    expect(r.macroF1).toBeGreaterThanOrEqual(0.95);
    expect(r.accuracy).toBe(model.file.evaluation!.accuracy);
    expect(r.macroF1).toBe(model.file.evaluation!.macroF1);
    expect(r.confusion).toEqual(model.file.evaluation!.confusion);
  });

  it('holds on the holdout split written last (fresh phrasing, never tuned on)', () => {
    const r = evaluate(model, holdout);
    expect(r.accuracy).toBeGreaterThanOrEqual(0.95);
    expect(r.macroF1).toBeGreaterThanOrEqual(0.95);
  });

  it('holds on holdout-fresh.jsonl (issue 15: written last, after the model was fixed; 40 per service)', () => {
    for (const s of SERVICE_NAMES) expect(fresh.examples.filter((e) => e.service === s).length).toBeGreaterThanOrEqual(30);
    const r = evaluate(model, fresh);
    expect(r.accuracy).toBeGreaterThanOrEqual(0.96);
    expect(r.macroF1).toBeGreaterThanOrEqual(0.96);
  });

  it('holds on holdout-2026-12.jsonl (issue 15: written after rm-fba51059f2f2, which scored 0.9300 on it; its misses named a class, other languages, that pass 7 then covered)', () => {
    for (const s of SERVICE_NAMES) expect(december.examples.filter((e) => e.service === s).length).toBeGreaterThanOrEqual(38);
    const r = evaluate(model, december);
    expect(r.accuracy).toBeGreaterThanOrEqual(0.96);
    expect(r.macroF1).toBeGreaterThanOrEqual(0.96);
  });

  it('holds on holdout-2026-12-b.jsonl (issue 15: written after rm-c6d20247d314 was fixed, which scored 0.9541 on it; the classes of its misses were read before pass 8)', () => {
    for (const s of SERVICE_NAMES) expect(decemberB.examples.filter((e) => e.service === s).length).toBeGreaterThanOrEqual(38);
    const r = evaluate(model, decemberB);
    expect(r.accuracy).toBeGreaterThanOrEqual(0.95);
    expect(r.macroF1).toBeGreaterThanOrEqual(0.95);
  });

  it('holds on holdout-2026-12-c.jsonl (issue 15: the last set, written after rm-8b93f860fbaa was fixed and committed before it was scored: 0.9619 / 0.9620)', () => {
    for (const s of SERVICE_NAMES) expect(decemberC.examples.filter((e) => e.service === s).length).toBeGreaterThanOrEqual(40);
    const r = evaluate(model, decemberC);
    expect(r.accuracy).toBeGreaterThanOrEqual(0.96);
    expect(r.macroF1).toBeGreaterThanOrEqual(0.96);
  });

  it('has a model card next to it', () => {
    expect(readFileSync(entryPath(dir, pointer).replace(/\.json$/, '.md'), 'utf8')).toContain(`# Routing model ${model.id}`);
  });
});
