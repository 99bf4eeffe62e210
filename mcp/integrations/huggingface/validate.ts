import { exampleInput, exampleText, type DataSet, type Example } from '../../../src/routing/model/data.js';
import { summarise, type EvaluationResult, type ScoredExample } from '../../../src/routing/model/evaluation.js';
import type { RoutingModel } from '../../../src/routing/model/model.js';
import { ValidatorError } from './errors.js';
import type { ReferenceModel } from './reference.js';
import type { LabelScore } from './zero-shot.js';

/*
 * `model validate`: an outside opinion on the labelled data and on the local model. Every
 * example's text goes to a zero-shot-classification model with one description per service
 * as the candidate labels; the report gives each classifier's accuracy on the labels, and how
 * often the two agree (and where they do not).
 */

/** What each service is, as a zero-shot candidate label (from DESIGN.md, "Services behind it"). */
export const SERVICE_DESCRIPTIONS: Readonly<Record<string, string>> = {
  twin: 'a personal assistant: conversation, my own notes, my preferences and reminders',
  'agent-controller': 'AI agents: creating, training, evaluating, deploying and running agents',
  knowledge: 'questions answered from documents: search, knowledge base, document ingestion',
  fog: 'fog computing: submitting and tracking compute jobs, capacity, nodes and pricing',
  p2p: 'the peer-to-peer network: peers, mesh links, messages between peers, sync, NAT traversal',
};

export interface Classifier {
  readonly target: string;
  classify(text: string, candidateLabels: readonly string[]): Promise<LabelScore[]>;
}

export interface ValidationReport {
  readonly zeroShotModel: string;
  /** The zero-shot model as the HuggingFace MCP server describes it (null: not configured). */
  readonly reference: ReferenceModel | null;
  readonly target: string;
  readonly localModel: string;
  readonly examples: number;
  readonly local: EvaluationResult;
  readonly zeroShot: EvaluationResult;
  /** Share of examples where both chose the same service. */
  readonly agreement: number;
  readonly disagreements: ReadonlyArray<{ source: string; text: string; expected: string; local: string; zeroShot: string; zeroShotScore: number }>;
}

/** `limit` examples spread over the services (round robin in file order), or all. */
export function sample(examples: readonly Example[], limit: number | undefined): Example[] {
  if (limit === undefined || limit >= examples.length) return [...examples];
  const byService = new Map<string, Example[]>();
  for (const e of examples) {
    let list = byService.get(e.service);
    if (!list) byService.set(e.service, (list = []));
    list.push(e);
  }
  const out: Example[] = [];
  for (let i = 0; out.length < limit; i++) {
    let added = false;
    for (const list of byService.values()) {
      if (i < list.length && out.length < limit) {
        out.push(list[i]!);
        added = true;
      }
    }
    if (!added) break;
  }
  return out;
}

export async function validateAgainstZeroShot(options: {
  readonly data: DataSet;
  readonly model: RoutingModel;
  readonly classifier: Classifier;
  readonly zeroShotModel: string;
  readonly limit?: number;
  readonly concurrency?: number;
  readonly descriptions?: Readonly<Record<string, string>>;
  /** Recorded in the report beside the comparison (describeReferenceModel). */
  readonly reference?: ReferenceModel | null;
  readonly onProgress?: (done: number, total: number) => void;
}): Promise<ValidationReport> {
  const { model, classifier } = options;
  const descriptions = options.descriptions ?? SERVICE_DESCRIPTIONS;
  const missing = model.labels.filter((l) => descriptions[l] === undefined);
  if (missing.length > 0) throw new ValidatorError('config', `no zero-shot description for ${missing.join(', ')}`);
  const candidates = model.labels.map((l) => descriptions[l]!);
  const serviceOf = new Map(model.labels.map((l) => [descriptions[l]!, l]));
  const examples = sample(options.data.examples, options.limit).filter((e) => model.labels.includes(e.service));
  const out = new Float64Array(model.labels.length);

  const local: ScoredExample[] = [];
  const zeroShot: ScoredExample[] = new Array(examples.length);
  const texts = examples.map((e) => exampleText(e, model.features.textFields) || e.request.path);
  for (const e of examples) {
    const best = model.predictInto(exampleInput(e), out);
    local.push({ source: e.source, expected: e.service, predicted: model.labels[best]!, confidence: out[best]!, expectedProbability: out[model.labels.indexOf(e.service)]! });
  }

  let next = 0;
  let done = 0;
  let failure: unknown = null;
  const worker = async () => {
    while (failure === null && next < examples.length) {
      const i = next++;
      const e = examples[i]!;
      try {
        const scores = await classifier.classify(texts[i]!, candidates);
        const top = scores[0];
        const predicted = top ? serviceOf.get(top.label) : undefined;
        if (top === undefined || predicted === undefined) throw new ValidatorError('output', `${classifier.target} answered with labels that were not the candidates`);
        const expectedScore = scores.find((s) => serviceOf.get(s.label) === e.service)?.score ?? 0;
        zeroShot[i] = { source: e.source, expected: e.service, predicted, confidence: top.score, expectedProbability: expectedScore };
      } catch (err) {
        failure ??= err;
        return;
      }
      done++;
      options.onProgress?.(done, examples.length);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency ?? 4, examples.length)) }, worker));
  if (failure !== null) throw failure;

  const dataName = options.data.files.map((f) => f.split('/').pop()).join('+');
  const agreeing = local.filter((l, i) => l.predicted === zeroShot[i]!.predicted).length;
  return {
    zeroShotModel: options.zeroShotModel,
    reference: options.reference ?? null,
    target: classifier.target,
    localModel: model.id,
    examples: examples.length,
    local: summarise(model.labels, local, { name: dataName, hash: options.data.hash }),
    zeroShot: summarise(model.labels, zeroShot, { name: dataName, hash: options.data.hash }),
    agreement: examples.length > 0 ? Math.round((agreeing / examples.length) * 10_000) / 10_000 : 0,
    disagreements: local
      .map((l, i) => ({ l, z: zeroShot[i]!, text: texts[i]! }))
      .filter(({ l, z }) => l.predicted !== z.predicted)
      .map(({ l, z, text }) => ({ source: l.source, text, expected: l.expected, local: l.predicted, zeroShot: z.predicted, zeroShotScore: Math.round(z.confidence * 1000) / 1000 })),
  };
}
