import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { loadConfigFromProcess, SERVICE_NAMES, type GatewayConfig } from '../config/index.js';
import { modelCard } from '../routing/model/card.js';
import { DataError, exampleText, loadDataFiles, resolveDataFiles, type DataSet } from '../routing/model/data.js';
import { evaluate, formatEvaluation, table, thresholdTable } from '../routing/model/evaluation.js';
import { DEFAULT_FEATURE_SETTINGS, type RoutingInput } from '../routing/model/features.js';
import { cardPathFor, checkLabels, entryPath, listModels, loadModelFile, modelPathForId, packageModelsDir, promoteModel, readPointer, rollbackModel } from '../routing/model/files.js';
import { ModelFileError, type RoutingModel } from '../routing/model/model.js';
import { DEFAULT_TRAINING, train } from '../routing/model/trainer.js';
// The HuggingFace client is loaded by `model validate` only (import() below), not by every `serve`.
import { ValidatorError } from '../../mcp/integrations/huggingface/errors.js';

/*
 * `unified-gateway model ...`: the operators' tools for the routing model. Every failure is
 * one message and an exit code, never a stack trace.
 */

const out = (s = '') => process.stdout.write(`${s}\n`);
const err = (s: string) => process.stderr.write(`${s}\n`);
const f4 = (x: number) => x.toFixed(4);

/** A failure with its own exit code (usage and config: 2). */
class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

function action<A extends unknown[]>(name: string, fn: (...args: A) => Promise<void> | void): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (e) {
      if (e instanceof ValidatorError) {
        err(`unified-gateway model ${name}: ${e.message}`);
        process.exitCode = e.exitCode;
      } else if (e instanceof CliError || e instanceof ModelFileError || e instanceof DataError) {
        err(`unified-gateway model ${name}: ${e.message}`);
        process.exitCode = e instanceof CliError ? e.exitCode : 1;
      } else {
        err(`unified-gateway model ${name}: ${(e as Error)?.message ?? String(e)}`);
        process.exitCode = 1;
      }
    }
  };
}

/** The gateway config (for routing.modelsDir, routing.services, HF_TOKEN); exits 2 on problems. */
function gatewayConfig(): GatewayConfig {
  const result = loadConfigFromProcess();
  if (!result.ok) throw new CliError(`configuration problems:\n  ${result.problems.join('\n  ')}`, 2);
  return result.config;
}

function modelsDir(option: string | undefined, config?: GatewayConfig): string {
  if (option !== undefined) return resolve(option);
  const configured = config?.routing.modelsDir;
  return configured !== undefined ? resolve(configured) : packageModelsDir();
}

/** --model FILE, or the active model of the folder. */
function modelFrom(option: string | undefined, dir?: string): RoutingModel {
  if (option !== undefined) return loadModelFile(option);
  const folder = dir ?? modelsDir(undefined, gatewayConfig());
  const pointer = readPointer(folder);
  if (pointer === null) throw new CliError(`no --model given and ${join(folder, 'active.json')} does not exist`, 2);
  return loadModelFile(entryPath(folder, pointer));
}

function intOption(value: string | undefined, name: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new CliError(`${name} must be a whole number from ${min} to ${max}, got "${value}"`, 2);
  return n;
}

function numberOption(value: string | undefined, name: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max) throw new CliError(`${name} must be a number from ${min} to ${max}, got "${value}"`, 2);
  return n;
}

function counts(data: DataSet): string {
  const byLabel = new Map<string, number>();
  for (const e of data.examples) byLabel.set(e.service, (byLabel.get(e.service) ?? 0) + 1);
  return [...byLabel].map(([l, n]) => `${l} ${n}`).join(', ');
}

function dataName(data: DataSet): string {
  return data.files.map((f) => f.split('/').pop()).join('+');
}

function thresholdReport(rows: ReturnType<typeof thresholdTable>): string {
  return table(
    ['threshold', 'decided by the model', 'accuracy of those'],
    rows.map((r) => [r.threshold.toFixed(2), f4(r.coverage), f4(r.accuracy)]),
  );
}

function truncate(s: string, n: number): string {
  const one = s.replace(/\s+/g, ' ');
  return one.length > n ? `${one.slice(0, n - 1)}…` : one;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

// ---------------------------------------------------------------------------------------------

interface TrainOptions {
  data: string;
  out: string;
  seed?: string;
  validation?: string;
  epochs?: string;
  learningRate?: string;
  l2?: string;
  buckets?: string;
  background?: string;
  labels?: string;
  id?: string;
  description?: string;
  card: boolean;
}

async function trainCommand(opts: TrainOptions): Promise<void> {
  const seed = intOption(opts.seed, '--seed', 0, 2 ** 31 - 1) ?? DEFAULT_TRAINING.seed;
  const epochs = intOption(opts.epochs, '--epochs', 1, 1000) ?? DEFAULT_TRAINING.epochs;
  const learningRate = numberOption(opts.learningRate, '--learning-rate', 1e-6, 100) ?? DEFAULT_TRAINING.learningRate;
  const l2 = numberOption(opts.l2, '--l2', 0, 1) ?? DEFAULT_TRAINING.l2;
  const background = intOption(opts.background, '--background', 0, 1_000_000) ?? DEFAULT_TRAINING.backgroundExamples;
  const buckets = intOption(opts.buckets, '--buckets', 1024, 1 << 22) ?? DEFAULT_FEATURE_SETTINGS.buckets;
  if (!Number.isInteger(Math.log2(buckets))) throw new CliError('--buckets must be a power of two', 2);
  const labels = opts.labels !== undefined ? opts.labels.split(',').map((s) => s.trim()).filter(Boolean) : [...SERVICE_NAMES];

  const isDir = existsSync(opts.data) && statSync(opts.data).isDirectory();
  const trainSet = loadDataFiles(resolveDataFiles(opts.data, 'train'));
  let validation: DataSet | undefined;
  if (opts.validation !== undefined) validation = loadDataFiles(resolveDataFiles(opts.validation, 'validation'));
  else if (isDir) {
    try {
      validation = loadDataFiles(resolveDataFiles(opts.data, 'validation'));
    } catch (e) {
      if (!(e instanceof DataError)) throw e;
    }
  }
  const features = { ...DEFAULT_FEATURE_SETTINGS, buckets };
  out(`training data   ${dataName(trainSet)}: ${trainSet.examples.length} examples (${counts(trainSet)}) + ${background} background`);
  out(validation ? `validation data ${dataName(validation)}: ${validation.examples.length} examples (${counts(validation)})` : 'validation data none (pass --validation FILE, or a directory with validation*.jsonl): figures below are not measured');
  out(
    `features        ${features.buckets} buckets; words, word bigrams, character ${features.charNgramMin}-${features.charNgramMax}-grams${features.lexicon !== undefined ? `, ${features.lexicon} lexicon concepts` : ''} of ${features.textFields.join('/')} and file names (first ${features.maxTextChars} chars${features.foldAccents === true ? ', accents folded' : ''}); method, path, content type, file type, headers ${features.headers.join(', ')}`,
  );
  out(`training        seed ${seed}, ${epochs} epochs, AdaGrad learning rate ${learningRate}, L2 ${l2}`);
  const started = performance.now();
  const result = train(trainSet, {
    labels,
    features,
    seed,
    epochs,
    learningRate,
    l2,
    backgroundExamples: background,
    ...(opts.id !== undefined ? { id: opts.id } : {}),
    ...(opts.description !== undefined ? { description: opts.description } : {}),
    ...(validation ? { validation, validationName: dataName(validation) } : {}),
    onEpoch: (p) => {
      const v = p.validation ? `  validation accuracy ${f4(p.validation.accuracy)} macro-F1 ${f4(p.validation.macroF1)}` : '';
      out(`epoch ${String(p.epoch).padStart(3)}/${p.epochs}  loss ${f4(p.loss)}  train accuracy ${f4(p.trainAccuracy)}${v}`);
    },
  });
  out(`trained in ${((performance.now() - started) / 1000).toFixed(1)} s`);

  const text = `${JSON.stringify(result.file)}\n`;
  mkdirSync(dirname(resolve(opts.out)), { recursive: true });
  writeFileSync(opts.out, text);
  const thresholds = result.validation ? thresholdTable(result.validation.predictions) : undefined;
  if (result.validation) {
    out();
    out(`validation figures (${result.validation.data})`);
    out(formatEvaluation(result.validation));
    out();
    out('confidence threshold (below it: routing.defaultService, or 300 with routing.ambiguous: 300)');
    out(thresholdReport(thresholds!));
  }
  out();
  out(`wrote ${opts.out} (id ${result.file.id}, ${result.model.rows} weight rows, ${Math.round(text.length / 1024)} KB)`);
  if (opts.card) {
    const card = cardPathFor(opts.out);
    writeFileSync(card, modelCard(result.file, { rows: result.model.rows, bytes: text.length, ...(result.validation ? { validation: result.validation } : {}), ...(thresholds ? { thresholds } : {}) }));
    out(`model card ${card}`);
  }
}

// ---------------------------------------------------------------------------------------------

async function evalCommand(opts: { model?: string; data: string; json?: boolean; errors?: string }): Promise<void> {
  const model = modelFrom(opts.model);
  const data = loadDataFiles(resolveDataFiles(opts.data, 'validation'));
  const result = evaluate(model, data);
  const thresholds = thresholdTable(result.predictions);
  const wrong = result.predictions.filter((p) => p.expected !== p.predicted);
  const byId = new Map(data.examples.map((e) => [e.source, e]));
  if (opts.json) {
    const { predictions: _p, perClass, macroF1, logLoss, ...rest } = result;
    out(
      JSON.stringify({
        model: model.id,
        ...rest,
        macro_f1: macroF1,
        log_loss: logLoss,
        per_class: perClass,
        thresholds,
        errors: wrong.map((p) => ({ source: p.source, expected: p.expected, predicted: p.predicted, confidence: Math.round(p.confidence * 10_000) / 10_000, text: exampleText(byId.get(p.source)!) })),
      }),
    );
    return;
  }
  out(`model ${model.id}  data ${result.data} (${result.dataHash.slice(0, 19)}…)`);
  out(formatEvaluation(result));
  out();
  out('confidence threshold');
  out(thresholdReport(thresholds));
  const show = intOption(opts.errors, '--errors', 0, 100_000) ?? 20;
  if (wrong.length > 0 && show > 0) {
    out();
    out(`misrouted (${wrong.length}${wrong.length > show ? `, first ${show}` : ''})`);
    out(
      table(
        ['example', 'expected', 'predicted', 'p', 'text'],
        wrong.slice(0, show).map((p) => [p.source, p.expected, p.predicted, p.confidence.toFixed(2), truncate(exampleText(byId.get(p.source)!), 70)]),
      ),
    );
  }
}

// ---------------------------------------------------------------------------------------------

async function compareCommand(opts: { model: string[]; data: string; json?: boolean; limit?: string }): Promise<void> {
  if (opts.model.length !== 2) throw new CliError('compare needs exactly two models: --model A --model B', 2);
  const [a, b] = opts.model.map((m) => loadModelFile(m)) as [RoutingModel, RoutingModel];
  const data = loadDataFiles(resolveDataFiles(opts.data, 'validation'));
  const ra = evaluate(a, data);
  const rb = evaluate(b, data);
  const byId = new Map(data.examples.map((e) => [e.source, e]));
  const disagreements = ra.predictions
    .map((pa, i) => ({ pa, pb: rb.predictions[i]! }))
    .filter(({ pa, pb }) => pa.predicted !== pb.predicted)
    .map(({ pa, pb }) => ({
      source: pa.source,
      expected: pa.expected,
      a: pa.predicted,
      aConfidence: Math.round(pa.confidence * 10_000) / 10_000,
      b: pb.predicted,
      bConfidence: Math.round(pb.confidence * 10_000) / 10_000,
      text: exampleText(byId.get(pa.source)!),
    }));
  const agreement = 1 - disagreements.length / Math.max(1, ra.predictions.length);
  if (opts.json) {
    const summary = (r: typeof ra, m: RoutingModel) => ({ model: m.id, accuracy: r.accuracy, macro_f1: r.macroF1, log_loss: r.logLoss, per_class: r.perClass });
    out(JSON.stringify({ data: ra.data, examples: ra.examples, a: summary(ra, a), b: summary(rb, b), agreement: Math.round(agreement * 10_000) / 10_000, disagreements }));
    return;
  }
  const delta = (x: number, y: number) => `${y - x >= 0 ? '+' : ''}${(y - x).toFixed(4)}`;
  out(`data ${ra.data}: ${ra.examples} examples`);
  out(`A = ${a.id}  (${opts.model[0]})`);
  out(`B = ${b.id}  (${opts.model[1]})`);
  out();
  out(
    table(
      ['', 'A', 'B', 'B - A'],
      [
        ['accuracy', f4(ra.accuracy), f4(rb.accuracy), delta(ra.accuracy, rb.accuracy)],
        ['macro-F1', f4(ra.macroF1), f4(rb.macroF1), delta(ra.macroF1, rb.macroF1)],
        ['log-loss', f4(ra.logLoss), f4(rb.logLoss), delta(ra.logLoss, rb.logLoss)],
        ...a.labels.map((l) => [`F1 ${l}`, f4(ra.perClass[l]?.f1 ?? 0), f4(rb.perClass[l]?.f1 ?? 0), delta(ra.perClass[l]?.f1 ?? 0, rb.perClass[l]?.f1 ?? 0)]),
      ],
    ),
  );
  out();
  out(`agreement ${f4(agreement)}: they disagree on ${disagreements.length} of ${ra.examples}`);
  const limit = intOption(opts.limit, '--limit', 0, 100_000) ?? 30;
  if (disagreements.length > 0 && limit > 0) {
    out();
    out(
      table(
        ['example', 'expected', 'A', 'p', 'B', 'p', 'text'],
        disagreements.slice(0, limit).map((d) => [d.source, d.expected, d.a, d.aConfidence.toFixed(2), d.b, d.bConfidence.toFixed(2), truncate(d.text, 60)]),
      ),
    );
    if (disagreements.length > limit) out(`... ${disagreements.length - limit} more (--limit N)`);
  }
}

// ---------------------------------------------------------------------------------------------

async function explainCommand(text: string, opts: { model?: string; path: string; field: string; fileName?: string; fileType?: string; top?: string; json?: boolean; features?: boolean }): Promise<void> {
  const model = modelFrom(opts.model);
  const top = intOption(opts.top, '--top', 1, 1000) ?? 12;
  const upload = opts.fileName !== undefined || opts.fileType !== undefined || opts.path === '/v1/upload';
  const input: RoutingInput = {
    method: 'POST',
    path: opts.path,
    contentType: upload ? 'multipart/form-data' : 'application/json',
    body: text === '' ? {} : { [opts.field]: text },
    ...(upload ? { file: { ...(opts.fileName ? { name: opts.fileName } : {}), ...(opts.fileType ? { type: opts.fileType } : {}) } } : {}),
  };
  const ex = model.explain(input, top);
  if (opts.json) {
    out(JSON.stringify({ model: model.id, label: ex.prediction.label, confidence: ex.prediction.confidence, probabilities: ex.prediction.probabilities, features: ex.features, contributions: ex.groups, features_detail: ex.contributions }));
    return;
  }
  out(`model ${model.id}: ${ex.prediction.label} (p=${f4(ex.prediction.confidence)})`);
  out();
  const sorted = Object.entries(ex.prediction.probabilities).sort((x, y) => y[1] - x[1]);
  for (const [label, p] of sorted) out(`  ${label.padEnd(18)} ${f4(p)}  ${'#'.repeat(Math.round(p * 40))}`);
  out();
  const rows = opts.features ? ex.contributions : ex.groups;
  out(
    `what weighs most for ${ex.prediction.label} (${ex.features} hashed features${opts.features ? '' : ', a word with its character n-grams counted together'}; relative to the mean over services, + pushes towards ${ex.prediction.label})`,
  );
  out(
    table(
      ['feature', ex.prediction.label, 'strongest other'],
      rows.map((c) => {
        const other = Object.entries(c.perLabel)
          .filter(([l]) => l !== c.label)
          .sort((x, y) => y[1] - x[1])[0]!;
        return [c.feature, `${c.weight >= 0 ? '+' : ''}${c.weight.toFixed(3)}`, `${other[0]} ${other[1] >= 0 ? '+' : ''}${other[1].toFixed(3)}`];
      }),
    ),
  );
}

// ---------------------------------------------------------------------------------------------

function promoteCommand(file: string, opts: { dir?: string }): void {
  const config = gatewayConfig();
  const dir = modelsDir(opts.dir, config);
  const { pointer, copiedTo, previous } = promoteModel(file, dir, { services: config.routing.services });
  out(`promoted ${pointer.id}`);
  out(`  model file  ${copiedTo}`);
  out(`  pointer     ${join(dir, 'active.json')} -> ${pointer.file} (previous: ${previous?.id ?? 'none'})`);
  out('gateways that use this folder switch within a second or two (routing.watchPointer); or POST /admin/routing/model/activate {"model":"pointer"}');
}

function rollbackCommand(opts: { dir?: string }): void {
  const dir = modelsDir(opts.dir, gatewayConfig());
  const { from, to } = rollbackModel(dir);
  out(`rolled back ${from.id} -> ${to.id}`);
  out(`  pointer     ${join(dir, 'active.json')} -> ${to.file}`);
}

function listCommand(opts: { dir?: string; json?: boolean }): void {
  const dir = modelsDir(opts.dir, gatewayConfig());
  const pointer = readPointer(dir);
  const rows = listModels(dir).map((id) => {
    try {
      const m = loadModelFile(modelPathForId(dir, id));
      const e = m.evaluation;
      return { id, createdAt: m.createdAt, active: pointer?.id === id, accuracy: e?.accuracy ?? null, macroF1: e?.macroF1 ?? null, evaluatedOn: e?.data ?? null, problem: null as string | null };
    } catch (e) {
      return { id, createdAt: '', active: pointer?.id === id, accuracy: null, macroF1: null, evaluatedOn: null, problem: (e as Error).message };
    }
  });
  if (opts.json) {
    out(JSON.stringify({ dir, active: pointer?.id ?? null, promotedAt: pointer?.promotedAt ?? null, history: pointer?.history ?? [], models: rows }));
    return;
  }
  out(`folder ${dir}`);
  out(`active ${pointer ? `${pointer.id} (since ${pointer.promotedAt})` : 'none'}`);
  if (pointer && pointer.history.length > 0) out(`history ${pointer.history.map((h) => h.id).join(' <- ')}`);
  out();
  out(
    table(
      ['', 'model', 'created', 'accuracy', 'macro-F1', 'evaluated on'],
      rows.map((r) => [r.active ? '*' : '', r.id, r.createdAt.slice(0, 19), r.accuracy === null ? '-' : f4(r.accuracy), r.macroF1 === null ? '-' : f4(r.macroF1), r.problem ?? r.evaluatedOn ?? '-']),
    ),
  );
}

// ---------------------------------------------------------------------------------------------

type ReferenceModel = import('../../mcp/integrations/huggingface/index.js').ReferenceModel;

/**
 * The reference zero-shot model described through the HuggingFace MCP server when
 * mcp.servers.huggingface is configured (null otherwise); offline: ValidatorError, exit 3.
 */
async function describeReference(config: GatewayConfig, modelId: string, timeoutS: number, verbose: boolean): Promise<ReferenceModel | null> {
  const { describeWithConfiguredServer, huggingFaceMcpConfigured, HF_MCP_SERVER } = await import('../../mcp/integrations/huggingface/configured.js');
  if (!huggingFaceMcpConfigured(config.mcp)) return null;
  if (verbose) out(`describing ${modelId} through the HuggingFace MCP server (mcp.servers.${HF_MCP_SERVER})`);
  return describeWithConfiguredServer(config.mcp, { modelId, timeoutMs: timeoutS * 1000 });
}

function referenceLine(r: ReferenceModel): string {
  const downloads = r.downloads === null ? '-' : r.downloads.toLocaleString('en-US');
  return [
    `reference model (HuggingFace MCP server ${r.server}, ${r.tools.join(' + ')}): ${r.id}`,
    `  revision ${r.revision}  license ${r.license ?? '-'}  downloads ${downloads}  task ${r.task ?? '-'}  ${r.foundBySearch ? 'found' : 'NOT found'} by the ${r.task ?? 'zero-shot'} search${r.alternatives.length > 0 ? ` (also: ${r.alternatives.join(', ')})` : ''}`,
  ].join('\n');
}

function latencyText(us: number): string {
  return us >= 1000 ? `${(us / 1000).toFixed(1)} ms` : `${us.toFixed(1)} µs`;
}

async function benchmarkCommand(opts: { data: string; model?: string; candidate?: string; hfModel?: string; endpoint?: string; limit?: string; repeat?: string; concurrency?: string; maxWait?: string; timeout?: string; json?: boolean }): Promise<void> {
  const config = gatewayConfig();
  const active = modelFrom(opts.model, modelsDir(undefined, config));
  checkLabels(active, config.routing.services);
  const candidate = opts.candidate !== undefined ? loadModelFile(opts.candidate) : undefined;
  if (candidate) checkLabels(candidate, config.routing.services);
  const all = loadDataFiles(resolveDataFiles(opts.data, 'validation'));
  const limit = intOption(opts.limit, '--limit', 1, 1_000_000);
  const repeat = intOption(opts.repeat, '--repeat', 1, 10_000) ?? 20;
  const concurrency = intOption(opts.concurrency, '--concurrency', 1, 64) ?? 4;
  const maxWaitS = numberOption(opts.maxWait, '--max-wait', 0, 3600) ?? 60;
  const timeoutS = numberOption(opts.timeout, '--timeout', 0.1, 600) ?? 30;
  const hfModel = opts.hfModel ?? config.routing.validator.model;
  const endpointUrl = opts.endpoint ?? config.routing.validator.endpointUrl;
  const hf = await import('../../mcp/integrations/huggingface/index.js');
  const { measureLatencies, summariseLatency } = await import('../routing/model/latency.js');
  // Every row is measured on the same requests (--limit: spread over the services).
  const data: DataSet = { ...all, examples: hf.sample(all.examples, limit).filter((e) => active.labels.includes(e.service)) };

  interface Row { role: string; model: string; accuracy: number; macro_f1: number; p50_latency_us: number; p99_latency_us: number; calls: number; note?: string }
  const rows: Row[] = [];
  const locals: Array<readonly [string, RoutingModel]> = [['active', active]];
  if (candidate !== undefined) locals.push(['candidate', candidate]);
  const latencies = measureLatencies(locals.map(([, m]) => m), data, { repeat });
  for (const [i, [role, m]] of locals.entries()) {
    const r = evaluate(m, data);
    const l = latencies[i]!;
    rows.push({ role, model: m.id, accuracy: r.accuracy, macro_f1: r.macroF1, p50_latency_us: l.p50Us, p99_latency_us: l.p99Us, calls: l.calls, note: 'in-process, one call' });
  }

  let reference: ReferenceModel | null = null;
  let referenceError: InstanceType<typeof ValidatorError> | null = null;
  try {
    reference = await describeReference(config, hfModel, timeoutS, !opts.json);
    const classifier = new hf.ZeroShotClassifier({
      ...(config.secrets.hfToken !== undefined ? { token: config.secrets.hfToken } : {}),
      ...(endpointUrl !== undefined ? { endpointUrl } : {}),
      model: hfModel,
      hypothesisTemplate: 'This request is about {}.',
      maxLoadingWaitMs: maxWaitS * 1000,
      timeoutMs: timeoutS * 1000,
    });
    const samples: number[] = [];
    const timed = {
      target: classifier.target,
      classify: async (text: string, labels: readonly string[]) => {
        const t0 = process.hrtime.bigint();
        const result = await classifier.classify(text, labels);
        samples.push(Number(process.hrtime.bigint() - t0) / 1000);
        return result;
      },
    };
    if (!opts.json) out(`asking ${classifier.target} (zero-shot ${hfModel}) about ${data.examples.length} examples of ${dataName(data)}`);
    const report = await hf.validateAgainstZeroShot({ data, model: active, classifier: timed, zeroShotModel: hfModel, concurrency, reference });
    const l = summariseLatency(samples);
    rows.push({ role: 'reference', model: hfModel, accuracy: report.zeroShot.accuracy, macro_f1: report.zeroShot.macroF1, p50_latency_us: l.p50Us, p99_latency_us: l.p99Us, calls: l.calls, note: `${classifier.target}, one request` });
  } catch (e) {
    if (!(e instanceof ValidatorError)) throw e;
    referenceError = e;
  }

  if (opts.json) {
    out(
      JSON.stringify({
        data: dataName(data),
        data_hash: data.hash,
        examples: data.examples.length,
        rows,
        reference_model: reference,
        reference_error: referenceError === null ? null : { message: referenceError.message, kind: referenceError.kind, exit_code: referenceError.exitCode },
      }),
    );
  } else {
    out();
    out(`data ${dataName(data)}: ${data.examples.length} examples, the same for every row`);
    const body = rows.map((r) => [`${r.role} ${r.model}`, f4(r.accuracy), f4(r.macro_f1), latencyText(r.p50_latency_us), latencyText(r.p99_latency_us), r.note ?? '']);
    if (referenceError !== null) body.push([`reference ${hfModel}`, '-', '-', '-', '-', `unavailable (exit ${referenceError.exitCode})`]);
    out(table(['', 'accuracy', 'macro-F1', 'p50 latency', 'p99 latency', 'latency of'], body));
    if (reference !== null) out(`\n${referenceLine(reference)}`);
  }
  if (referenceError !== null) {
    err(`unified-gateway model benchmark: reference part: ${referenceError.message}`);
    process.exitCode = referenceError.exitCode;
  }
}

// ---------------------------------------------------------------------------------------------

async function validateCommand(opts: { data: string; model?: string; hfModel?: string; endpoint?: string; limit?: string; concurrency?: string; maxWait?: string; timeout?: string; json?: boolean; disagreements?: string }): Promise<void> {
  const config = gatewayConfig();
  const model = modelFrom(opts.model, modelsDir(undefined, config));
  checkLabels(model, config.routing.services);
  const data = loadDataFiles(resolveDataFiles(opts.data, 'validation'));
  const limit = intOption(opts.limit, '--limit', 1, 1_000_000);
  const concurrency = intOption(opts.concurrency, '--concurrency', 1, 64) ?? 4;
  const maxWaitS = numberOption(opts.maxWait, '--max-wait', 0, 3600) ?? 60;
  const timeoutS = numberOption(opts.timeout, '--timeout', 0.1, 600) ?? 30;
  const hfModel = opts.hfModel ?? config.routing.validator.model;
  const endpointUrl = opts.endpoint ?? config.routing.validator.endpointUrl;
  const { validateAgainstZeroShot, ZeroShotClassifier } = await import('../../mcp/integrations/huggingface/index.js');
  const reference = await describeReference(config, hfModel, timeoutS, !opts.json);
  const classifier = new ZeroShotClassifier({
    ...(config.secrets.hfToken !== undefined ? { token: config.secrets.hfToken } : {}),
    ...(endpointUrl !== undefined ? { endpointUrl } : {}),
    model: hfModel,
    hypothesisTemplate: 'This request is about {}.',
    maxLoadingWaitMs: maxWaitS * 1000,
    timeoutMs: timeoutS * 1000,
  });
  const total = Math.min(limit ?? data.examples.length, data.examples.length);
  if (!opts.json) out(`asking ${classifier.target} (zero-shot ${hfModel}) about ${total} examples of ${dataName(data)}; local model ${model.id}`);
  let lastShown = 0;
  const report = await validateAgainstZeroShot({
    data,
    model,
    classifier,
    zeroShotModel: hfModel,
    ...(limit !== undefined ? { limit } : {}),
    concurrency,
    reference,
    onProgress: (done, all) => {
      if (opts.json) return;
      if (done === all || done - lastShown >= Math.max(10, Math.floor(all / 10))) {
        lastShown = done;
        out(`  ${done}/${all}`);
      }
    },
  });
  if (opts.json) {
    out(
      JSON.stringify({
        zero_shot_model: report.zeroShotModel,
        reference_model: report.reference,
        target: report.target,
        local_model: report.localModel,
        examples: report.examples,
        local: { accuracy: report.local.accuracy, macro_f1: report.local.macroF1, per_class: report.local.perClass },
        zero_shot: { accuracy: report.zeroShot.accuracy, macro_f1: report.zeroShot.macroF1, per_class: report.zeroShot.perClass, confusion: report.zeroShot.confusion },
        agreement: report.agreement,
        disagreements: report.disagreements,
      }),
    );
    return;
  }
  out();
  if (report.reference !== null) out(`${referenceLine(report.reference)}\n`);
  out(
    table(
      ['', 'accuracy', 'macro-F1'],
      [
        [`local ${report.localModel}`, f4(report.local.accuracy), f4(report.local.macroF1)],
        [`zero-shot ${report.zeroShotModel}`, f4(report.zeroShot.accuracy), f4(report.zeroShot.macroF1)],
      ],
    ),
  );
  out();
  out(`agreement between the two: ${f4(report.agreement)} (${report.examples - report.disagreements.length} of ${report.examples})`);
  out();
  out('zero-shot confusion matrix (rows: labelled service, columns: zero-shot choice)');
  out(table(['', ...report.zeroShot.confusion.labels], report.zeroShot.confusion.labels.map((l, i) => [l, ...report.zeroShot.confusion.matrix[i]!.map(String)])));
  const show = intOption(opts.disagreements, '--disagreements', 0, 100_000) ?? 15;
  if (report.disagreements.length > 0 && show > 0) {
    out();
    out(`disagreements (${report.disagreements.length}${report.disagreements.length > show ? `, first ${show}` : ''}): worth a look when the zero-shot model and the label agree against the local model`);
    out(
      table(
        ['example', 'label', 'local', 'zero-shot', 'p', 'text'],
        report.disagreements.slice(0, show).map((d) => [d.source, d.expected, d.local, d.zeroShot, d.zeroShotScore.toFixed(2), truncate(d.text, 60)]),
      ),
    );
  }
}

// ---------------------------------------------------------------------------------------------

export function registerModelCommands(program: Command): void {
  const model = program.command('model').description('the routing model of /v1/query and /v1/upload: train, evaluate, compare, explain, promote, validate, benchmark');

  model
    .command('train')
    .description('train a routing model (deterministic for a seed); prints progress and the validation figures')
    .requiredOption('--data <dir-or-file>', '(required) training JSONL, or a directory with train*.jsonl (and validation*.jsonl)')
    .requiredOption('--out <file>', '(required) model file to write (a model card <file>.md is written beside it)')
    .option('--seed <n>', `random seed (default ${DEFAULT_TRAINING.seed})`)
    .option('--validation <file>', 'validation JSONL (default: validation*.jsonl of the --data directory)')
    .option('--epochs <n>', `passes over the data (default ${DEFAULT_TRAINING.epochs})`)
    .option('--learning-rate <x>', `AdaGrad learning rate (default ${DEFAULT_TRAINING.learningRate})`)
    .option('--l2 <x>', `L2 regularisation (default ${DEFAULT_TRAINING.l2})`)
    .option('--buckets <n>', `hashed feature buckets, a power of two (default ${DEFAULT_FEATURE_SETTINGS.buckets})`)
    .option('--background <n>', `synthetic no-information requests trained towards "unsure" (default ${DEFAULT_TRAINING.backgroundExamples})`)
    .option('--labels <list>', `services, comma-separated (default ${SERVICE_NAMES.join(',')})`)
    .option('--id <id>', 'model id (default: rm-<hash of the trained model>)')
    .option('--description <text>', 'one line for the model card')
    .option('--no-card', 'do not write the model card')
    .action(action('train', trainCommand));

  model
    .command('eval')
    .description('accuracy, macro-F1, per-class table, confusion matrix and misrouted examples of a model on labelled data')
    .requiredOption('--data <file>', '(required) labelled JSONL (or a directory with validation*.jsonl)')
    .option('--model <file>', 'model file (default: the active model)')
    .option('--errors <n>', 'misrouted examples to list (default 20)')
    .option('--json', 'one JSON object (accuracy and macro_f1 from 0 to 1, per_class, confusion, thresholds, errors)')
    .action(action('eval', evalCommand));

  model
    .command('compare')
    .description('two models side by side on labelled data, and the requests they route differently')
    .requiredOption('--model <file>', '(required) model A, then --model B', collect, [])
    .requiredOption('--data <file>', '(required) labelled JSONL (or a directory with validation*.jsonl)')
    .option('--limit <n>', 'disagreements to list (default 30)')
    .option('--json', 'one JSON object')
    .action(action('compare', compareCommand));

  model
    .command('explain')
    .description('probabilities per service and the features that weigh most, for one request text')
    .argument('<text>', 'the request text (the query/prompt/message field)')
    .option('--model <file>', 'model file (default: the active model)')
    .option('--path <path>', 'request path', '/v1/query')
    .option('--field <name>', 'JSON body field the text is sent in', 'query')
    .option('--file-name <name>', 'an uploaded file name (implies /v1/upload)')
    .option('--file-type <type>', 'its media type')
    .option('--top <n>', 'features to show (default 12)')
    .option('--features', 'single hashed features (each character n-gram on its own) instead of per word')
    .option('--json', 'one JSON object')
    .action(action('explain', explainCommand));

  model
    .command('promote')
    .description('make a model file the active one: copy to <dir>/models/<id>.json and point <dir>/active.json at it')
    .argument('<file>', 'model file')
    .option('--dir <dir>', 'routing-models folder (default: routing.modelsDir, else the gateway\'s own)')
    .action(action('promote', promoteCommand));

  model
    .command('rollback')
    .description('point active.json back at the previously active model')
    .option('--dir <dir>', 'routing-models folder (default: routing.modelsDir, else the gateway\'s own)')
    .action(action('rollback', rollbackCommand));

  model
    .command('list')
    .description('the models of the folder, the active one and the promotion history')
    .option('--dir <dir>', 'routing-models folder (default: routing.modelsDir, else the gateway\'s own)')
    .option('--json', 'one JSON object')
    .action(action('list', listCommand));

  model
    .command('validate')
    .description('check labelled data and the local model against a HuggingFace zero-shot classifier (HF_TOKEN, HF_ENDPOINT_URL)')
    .requiredOption('--data <file>', '(required) labelled JSONL (or a directory with validation*.jsonl)')
    .option('--model <file>', 'local model (default: the active model)')
    .option('--hf-model <id>', 'zero-shot model on the Hub (default: routing.validatorModel, facebook/bart-large-mnli)')
    .option('--endpoint <url>', 'a dedicated Inference Endpoint (default: HF_ENDPOINT_URL)')
    .option('--limit <n>', 'examples to send, spread over the services (default: all)')
    .option('--concurrency <n>', 'requests in flight (default 4)')
    .option('--max-wait <seconds>', 'how long to wait for a loading model (503) before giving up (default 60)')
    .option('--timeout <seconds>', 'per request (default 30)')
    .option('--disagreements <n>', 'disagreements to list (default 15)')
    .option('--json', 'one JSON object')
    .addHelpText(
      'after',
      '\nExit codes: 0 done, 1 bad data or model file, 2 configuration (no HF_TOKEN), 3 network (unreachable, timeout),\n4 authentication (401/403), 5 rate limited (429), 6 model still loading (503), 7 other API error.',
    )
    .action(action('validate', validateCommand));

  model
    .command('benchmark')
    .description('the active model, a candidate and the HuggingFace reference on the same labelled requests: accuracy, macro-F1, p50/p99 latency')
    .requiredOption('--data <file>', '(required) labelled JSONL (or a directory with validation*.jsonl)')
    .option('--model <file>', 'the model in the "active" row (default: the active model)')
    .option('--candidate <file>', 'a candidate model file')
    .option('--hf-model <id>', 'zero-shot reference on the Hub (default: routing.validatorModel, facebook/bart-large-mnli)')
    .option('--endpoint <url>', 'a dedicated Inference Endpoint (default: HF_ENDPOINT_URL)')
    .option('--limit <n>', 'requests, spread over the services (default: all)')
    .option('--repeat <n>', 'timed passes of the local models over the requests (default 20)')
    .option('--concurrency <n>', 'reference requests in flight (default 4)')
    .option('--max-wait <seconds>', 'how long to wait for a loading reference model (503) (default 60)')
    .option('--timeout <seconds>', 'per reference request, and for the HuggingFace MCP server (default 30)')
    .option('--json', 'one JSON object (rows with accuracy, macro_f1, p50/p99_latency_us; reference_model; reference_error)')
    .addHelpText(
      'after',
      '\nThe local rows are always printed. When the reference part fails, its row says so, the reason is on stderr\nand the exit code is that of model validate: 2 configuration (no HF_TOKEN), 3 network (offline, HuggingFace MCP\nserver unreachable), 4 authentication, 5 rate limited, 6 still loading, 7 other API error.',
    )
    .action(action('benchmark', benchmarkCommand));
}
