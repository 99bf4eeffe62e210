/**
 * Micro-benchmark of the routing model (issue: "inference under 20 µs per request at p99 and
 * no allocation storm"). In-process, after a warm-up:
 *  - latency per call (performance.now() around each call) of the model alone
 *    (`predictInto`: feature extraction + linear scores + softmax) and of the whole decision the
 *    gateway makes per request (`AutoRouter.decide`: model, masking, threshold), over the
 *    validation and holdout requests (the realistic mix), and over worst-case requests whose
 *    text fills the model's whole character budget;
 *  - heap bytes allocated per call: heap used before and after many calls with no GC in
 *    between (the script re-runs itself with --expose-gc and a large young generation; a GC
 *    during the measurement is reported, not hidden).
 *
 *   npx tsx bench/routing-model.ts [--model FILE] [--iterations N] [--json]
 */
import { spawnSync } from 'node:child_process';
import { PerformanceObserver } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import { AutoRouter } from '../src/routing/auto-route.js';
import { exampleInput, loadDataFiles } from '../src/routing/model/data.js';
import type { RoutingInput } from '../src/routing/model/features.js';
import { entryPath, loadModelFile, packageModelsDir, readPointer } from '../src/routing/model/files.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) {
  // Re-run with a GC hook and a young generation large enough that a measurement window has no scavenge.
  const r = spawnSync(process.execPath, ['--expose-gc', '--max-semi-space-size=128', ...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}

const arg = (name: string) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const iterations = Number(arg('--iterations')) || 200_000;
const asJson = process.argv.includes('--json');

const dir = packageModelsDir();
const modelPath = arg('--model') ?? (() => {
  const p = readPointer(dir);
  if (!p) throw new Error(`no --model and no ${dir}/active.json`);
  return entryPath(dir, p);
})();
const model = loadModelFile(modelPath);
const data = loadDataFiles([`${dir}/data/validation.jsonl`, `${dir}/data/holdout.jsonl`]);
const typical: RoutingInput[] = data.examples.map(exampleInput);
const filler = 'please summarise what the quarterly report says about compute capacity, the peer network and our agents ';
const longText = filler.repeat(Math.ceil((model.features.maxTextChars * 2) / filler.length));
const worst: RoutingInput[] = [0, 1, 2, 3].map((i) => ({
  method: 'POST',
  path: '/v1/query',
  contentType: 'application/json',
  headers: { 'content-type': 'application/json', 'x-client-app': 'web' },
  body: { query: longText.slice(i * 7) },
}));
const router = new AutoRouter({ confidenceThreshold: 0.5, defaultService: 'knowledge', ambiguous: 'default' }, () => true);
const out = new Float64Array(model.labels.length);

function latency(inputs: readonly RoutingInput[], call: (input: RoutingInput) => unknown, n: number) {
  const samples = new Float64Array(n);
  let sink = 0;
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    const input = inputs[i % inputs.length]!;
    const t0 = performance.now();
    const r = call(input);
    samples[i] = performance.now() - t0;
    if (r === null) sink++;
  }
  const wall = performance.now() - start;
  samples.sort();
  const q = (p: number) => samples[Math.min(n - 1, Math.floor(p * n))]! * 1000;
  return { calls: n, meanUs: (wall / n) * 1000, p50Us: q(0.5), p90Us: q(0.9), p99Us: q(0.99), p999Us: q(0.999), maxUs: samples[n - 1]! * 1000, sink };
}

function allocation(inputs: readonly RoutingInput[], call: (input: RoutingInput) => unknown, n: number) {
  let gcs = 0;
  const obs = new PerformanceObserver((list) => (gcs += list.getEntries().length));
  obs.observe({ entryTypes: ['gc'] });
  gc!();
  const before = getHeapStatistics().used_heap_size;
  for (let i = 0; i < n; i++) call(inputs[i % inputs.length]!);
  const after = getHeapStatistics().used_heap_size;
  obs.disconnect();
  return { calls: n, bytesPerCall: Math.max(0, after - before) / n, gcsDuringMeasurement: gcs };
}

const predict = (input: RoutingInput) => model.predictInto(input, out);
const decide = (input: RoutingInput) => router.decide(model, input);

// Warm-up: let the JIT settle on both paths and both input kinds.
for (let i = 0; i < 50_000; i++) {
  predict(typical[i % typical.length]!);
  decide(typical[i % typical.length]!);
  if (i % 10 === 0) predict(worst[i % worst.length]!);
}

const results = {
  model: model.id,
  features: model.features,
  typicalInputs: typical.length,
  typicalTextChars: Math.round(typical.reduce((a, i) => a + JSON.stringify(i.body ?? {}).length + (i.file?.name?.length ?? 0), 0) / typical.length),
  node: process.version,
  latency: {
    'predict, typical': latency(typical, predict, iterations),
    'decide, typical': latency(typical, decide, iterations),
    [`predict, worst case (${model.features.maxTextChars} chars)`]: latency(worst, predict, Math.max(10_000, iterations / 10)),
    [`decide, worst case (${model.features.maxTextChars} chars)`]: latency(worst, decide, Math.max(10_000, iterations / 10)),
  },
  allocation: {
    'predict, typical': allocation(typical, predict, 100_000),
    'decide, typical': allocation(typical, decide, 100_000),
    'predict, worst case': allocation(worst, predict, 20_000),
  },
};

if (asJson) {
  process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
} else {
  const f = (x: number) => x.toFixed(2).padStart(8);
  process.stdout.write(`routing model ${results.model} (${model.features.buckets} buckets, char ${model.features.charNgramMin}-${model.features.charNgramMax}-grams, ${model.features.maxTextChars} chars max), ${process.version}\n`);
  process.stdout.write(`typical inputs: ${results.typicalInputs} validation + holdout requests (mean body ${results.typicalTextChars} bytes)\n\n`);
  process.stdout.write(`${'latency per call (µs)'.padEnd(44)}${['mean', 'p50', 'p90', 'p99', 'p99.9', 'max'].map((h) => h.padStart(8)).join('')}\n`);
  for (const [name, r] of Object.entries(results.latency)) {
    process.stdout.write(`${name.padEnd(44)}${f(r.meanUs)}${f(r.p50Us)}${f(r.p90Us)}${f(r.p99Us)}${f(r.p999Us)}${f(r.maxUs)}\n`);
  }
  process.stdout.write(`\n${'heap allocated per call'.padEnd(44)}${'bytes'.padStart(8)}  GCs during measurement\n`);
  for (const [name, r] of Object.entries(results.allocation)) {
    process.stdout.write(`${name.padEnd(44)}${r.bytesPerCall.toFixed(1).padStart(8)}  ${r.gcsDuringMeasurement}\n`);
  }
}
