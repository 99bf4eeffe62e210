/**
 * Leave-one-pass-out estimate for choosing features and training settings (issue 15): the
 * authoring passes were written separately, in different styles, so training on all passes
 * but one and scoring the one left out estimates how the model does on phrasing it has not
 * seen, without touching the held-out files (holdout*.jsonl are never read here).
 *
 *   node routing-models/data/authoring/generate-training.mjs --split /tmp/passes
 *   npx tsx routing-models/data/authoring/cross-validate.ts --passes /tmp/passes [--variant '{"charNgramMin":2}'] ...
 *
 * Folds: every pass-*.jsonl of --passes except pass-templates.jsonl (always trained on, it is
 * the base), plus routing-models/data/validation.jsonl. Each --variant is a JSON object of
 * feature settings and training options overriding the defaults; one line per variant with
 * each fold's accuracy / macro-F1 and their mean. `--misses` also prints every example of a
 * fold that the model trained without it routed wrong (to read the classes of misses).
 */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exampleText, loadDataFiles, type DataSet } from '../../../src/routing/model/data.js';
import { evaluate } from '../../../src/routing/model/evaluation.js';
import { DEFAULT_FEATURE_SETTINGS, type FeatureSettings } from '../../../src/routing/model/features.js';
import { DEFAULT_TRAINING, train } from '../../../src/routing/model/trainer.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const LABELS = ['twin', 'agent-controller', 'knowledge', 'fog', 'p2p'];
const argv = process.argv.slice(2);
const passesDir = argv[argv.indexOf('--passes') + 1]!;
const variants = argv.flatMap((a, i) => (argv[i - 1] === '--variant' ? [JSON.parse(a) as Record<string, unknown>] : []));
if (variants.length === 0) variants.push({});
const showMisses = argv.includes('--misses');

const base = join(passesDir, 'pass-templates.jsonl');
const folds = [
  ...readdirSync(passesDir).filter((f) => f.startsWith('pass-') && f.endsWith('.jsonl') && f !== 'pass-templates.jsonl').sort().map((f) => join(passesDir, f)),
  join(HERE, '..', 'validation.jsonl'),
];

const merge = (sets: DataSet[]): DataSet => ({ examples: sets.flatMap((s) => s.examples), files: sets.flatMap((s) => s.files), hash: 'sha256:' + '0'.repeat(64) });
const loaded = new Map(folds.map((f) => [f, loadDataFiles([f])]));
const baseSet = loadDataFiles([base]);

for (const v of variants) {
  const { epochs, learningRate, l2, backgroundExamples, ...feat } = v as Record<string, number>;
  const features = Object.fromEntries(Object.entries({ ...DEFAULT_FEATURE_SETTINGS, ...feat }).filter(([, x]) => x !== null)) as unknown as FeatureSettings;
  const cells: string[] = [];
  let acc = 0;
  let f1 = 0;
  const confused = new Map<string, number>();
  for (const fold of folds) {
    const trainSet = merge([baseSet, ...folds.filter((f) => f !== fold).map((f) => loaded.get(f)!)]);
    const { model } = train(trainSet, {
      labels: LABELS,
      features,
      seed: DEFAULT_TRAINING.seed,
      epochs: epochs ?? DEFAULT_TRAINING.epochs,
      learningRate: learningRate ?? DEFAULT_TRAINING.learningRate,
      l2: l2 ?? DEFAULT_TRAINING.l2,
      backgroundExamples: backgroundExamples ?? DEFAULT_TRAINING.backgroundExamples,
    });
    const r = evaluate(model, loaded.get(fold)!);
    if (showMisses) {
      const texts = new Map(loaded.get(fold)!.examples.map((e) => [e.source, exampleText(e)]));
      for (const p of r.predictions) {
        if (p.predicted !== p.expected) process.stdout.write(`miss ${p.source}  ${p.expected} -> ${p.predicted} ${p.confidence.toFixed(2)}  ${texts.get(p.source)}\n`);
      }
    }
    acc += r.accuracy;
    f1 += r.macroF1;
    cells.push(`${fold.split('/').pop()} ${r.accuracy.toFixed(4)}/${r.macroF1.toFixed(4)}`);
    const m = r.confusion.matrix;
    m.forEach((row, i) => row.forEach((n, j) => { if (i !== j && n > 0) confused.set(`${r.confusion.labels[i]}->${r.confusion.labels[j]}`, (confused.get(`${r.confusion.labels[i]}->${r.confusion.labels[j]}`) ?? 0) + n); }));
  }
  const top = [...confused].sort((a, b) => b[1] - a[1]).slice(0, 4).map(([k, n]) => `${k} ${n}`).join(', ');
  process.stdout.write(`${JSON.stringify(v)}  mean ${(acc / folds.length).toFixed(4)}/${(f1 / folds.length).toFixed(4)}  ${cells.join('  ')}  [${top}]\n`);
}
