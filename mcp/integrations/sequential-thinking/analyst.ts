import { z } from 'zod';
import type { DecisionLog, LoggedDecision } from '../../../src/routing/decision-log.js';
import type { RoutingInput } from '../../../src/routing/model/features.js';
import type { UpstreamToolCaller } from '../../clients/types.js';

/*
 * Stepwise routing analyses (issue 15, Sequential Thinking): analyze_routing explains one
 * decision as numbered steps (the model's probabilities and top features; health and breaker
 * state of the candidates; the split side; fallbacks; the final upstream), review_routing finds
 * patterns in the recent decision log. Each chain is built here, in the gateway, and then
 * recorded thought by thought through the sequential-thinking server's `sequentialthinking`
 * tool (a close runner-up opens a branch with branchFromThought); when that server is down
 * the chain is still returned, marked `recordedBy: "local"`. Never on the request path: only
 * the MCP tools call this.
 */

export const analyzeRoutingInput = z
  .strictObject({
    text: z.string().min(1).max(4096).optional().describe('A request text to route now (the query/prompt/message of a /v1/query body)'),
    requestId: z.string().min(1).max(128).optional().describe('The x-request-id of a recent /v1/query or /v1/upload request (its text is never kept: probabilities only)'),
  })
  .refine((i) => (i.text === undefined) !== (i.requestId === undefined), 'give exactly one of text or requestId');

export const reviewRoutingInput = z.strictObject({
  minutes: z.number().int().min(1).max(1440).default(60).describe('Look back this many minutes in the decision log'),
});

const stepSchema = z.object({
  thoughtNumber: z.number().int(),
  thought: z.string(),
  branchFromThought: z.number().int().optional(),
  branchId: z.string().optional(),
  /** The sequential-thinking server accepted this thought. */
  recorded: z.boolean(),
});
export type Step = z.infer<typeof stepSchema>;

const recordedBy = z.enum(['sequential-thinking', 'local']);

export const analyzeRoutingOutput = z.object({
  steps: z.array(stepSchema),
  recordedBy,
  decision: z.object({
    source: z.enum(['text', 'requestId']),
    model: z.string().nullable(),
    reason: z.string(),
    service: z.string().nullable(),
    confidence: z.number(),
    probabilities: z.record(z.string(), z.number()),
    runnerUp: z.object({ service: z.string(), probability: z.number() }).nullable(),
    finalUpstream: z.string().nullable(),
  }),
});

export const reviewRoutingOutput = z.object({
  steps: z.array(stepSchema),
  recordedBy,
  decisions: z.number().int(),
  lowConfidenceShare: z.record(z.string(), z.number()).describe('Per service the model chose: share of decisions below mcp.sequentialThinking.lowConfidence'),
  shadow: z.object({ agree: z.number(), disagree: z.number(), rate: z.number().nullable() }).nullable(),
  drift: z.object({ distance: z.number(), byService: z.record(z.string(), z.number()) }).nullable().describe('Total variation distance between the chosen-service shares and the evaluation set\'s label shares'),
  featureDrift: z
    .object({ feature: z.string(), distance: z.number(), recent: z.record(z.string(), z.number()), training: z.record(z.string(), z.number()) })
    .nullable()
    .describe('Distribution of words per request text, recent vs the training set (shares per bucket; total variation distance)'),
  confusedPairs: z.array(z.object({ pair: z.tuple([z.string(), z.string()]), count: z.number().int() })),
  mostConfusedPair: z.tuple([z.string(), z.string()]).nullable(),
  recommendations: z.array(z.string()),
});

export type AnalyzeResult = z.infer<typeof analyzeRoutingOutput>;
export type ReviewResult = z.infer<typeof reviewRoutingOutput>;

/** What the analyst reads of the gateway (the assembly passes the live objects). */
export interface RoutingAnalystDeps {
  readonly caller?: UpstreamToolCaller;
  readonly settings: { readonly server: string; readonly branchMargin: number; readonly lowConfidence: number };
  readonly routing: { readonly confidenceThreshold: number; readonly defaultService: string; readonly ambiguous: 'default' | '300' };
  readonly decisions?: DecisionLog;
  /** The active model. */
  readonly model?: () => {
    readonly id: string;
    explain(input: RoutingInput): { prediction: { label: string; confidence: number; probabilities: Readonly<Record<string, number>> }; groups: ReadonlyArray<{ feature: string; label: string; weight: number }> };
  };
  /** The model manager's status: the evaluation's confusion matrix (label shares) and the shadow agreement. */
  readonly modelStatus?: () => {
    readonly active: { readonly labels: readonly string[]; readonly evaluationConfusion?: { readonly labels: readonly string[]; readonly matrix: ReadonlyArray<readonly number[]> } };
    readonly shadow: unknown;
    readonly shadowAgreement: { readonly agree: number; readonly disagree: number; readonly rate: number | null };
  };
  readonly health: (service: string) => string;
  readonly breaker: (service: string) => string;
  /** "route r: stable 90 / canary 10 (canary service s-canary), sticky per client" or undefined when no split routes to it. */
  readonly split: (service: string) => string | undefined;
  /** "on failure: service twin", "on failure: static 503", or undefined (fail). */
  readonly fallback: (service: string) => string | undefined;
  /** Words per text of the model's training set (loaded once, lazily; undefined when it cannot be read). */
  readonly trainingWords?: () => readonly number[] | undefined;
  /** Where a review's summary goes (the Memory recorder). */
  readonly remember?: (text: string) => void;
  readonly clock?: () => number;
}

const round = (n: number) => Math.round(n * 10_000) / 10_000;
const pct = (n: number) => `${(n * 100).toFixed(1)}%`;

function sortedProbabilities(p: Readonly<Record<string, number>>): Array<[string, number]> {
  return Object.entries(p).sort((a, b) => b[1] - a[1]);
}

export class RoutingAnalyst {
  readonly #d: RoutingAnalystDeps;

  constructor(deps: RoutingAnalystDeps) {
    this.#d = deps;
  }

  /** A decision as numbered steps, recorded through the sequential-thinking server. Throws AnalysisError for an unknown request. */
  async analyze(input: z.input<typeof analyzeRoutingInput>, caller: { readonly subject?: string; readonly admin: boolean } = { admin: true }): Promise<AnalyzeResult> {
    const { text, requestId } = analyzeRoutingInput.parse(input);
    const d = this.#d;
    let model: string | null;
    let probabilities: Record<string, number>;
    let reason: string;
    let service: string | null;
    let confidence: number;
    let features: string | undefined;
    if (text !== undefined) {
      const m = d.model?.();
      if (m === undefined) throw new AnalysisError('ML routing is off on this gateway: there is no model to analyse');
      const why = m.explain({ method: 'POST', path: '/v1/query', contentType: 'application/json', body: { query: text } });
      model = m.id;
      probabilities = Object.fromEntries(Object.entries(why.prediction.probabilities).map(([k, v]) => [k, round(v)]));
      confidence = why.prediction.confidence;
      features = why.groups
        .slice(0, 5)
        .map((g) => `${g.feature} → ${g.label} (${g.weight >= 0 ? '+' : ''}${g.weight.toFixed(2)})`)
        .join('; ');
      if (confidence >= d.routing.confidenceThreshold) [reason, service] = ['model', why.prediction.label];
      else if (d.routing.ambiguous === 'default') [reason, service] = ['low-confidence', d.routing.defaultService];
      else [reason, service] = ['ambiguous', null];
    } else {
      const found = d.decisions?.find(requestId!);
      // Another principal's request is not shown (unless to an admin), and answered as unknown: no oracle.
      const logged = found !== undefined && (caller.admin || found.subject === undefined || found.subject === caller.subject) ? found : undefined;
      if (logged === undefined) throw new AnalysisError(`no recent routing decision with request id ${requestId} on this replica (the log keeps the last ${d.decisions?.capacity ?? 0})`);
      model = logged.model ?? null;
      probabilities = { ...(logged.probabilities ?? {}) };
      confidence = logged.confidence;
      reason = logged.reason;
      service = logged.service;
    }
    const ranked = sortedProbabilities(probabilities);
    const runnerUp = ranked.length > 1 ? { service: ranked[1]![0], probability: ranked[1]![1] } : null;
    const top = ranked[0];

    const steps: Array<Omit<Step, 'recorded'>> = [];
    const add = (thought: string, branch?: { from: number; id: string }) =>
      steps.push({ thoughtNumber: steps.length + 1, thought, ...(branch ? { branchFromThought: branch.from, branchId: branch.id } : {}) });

    // 1. The model.
    if (reason === 'override') add(`The caller named the service ${service} (X-Target-Service or "service", write scope): the model was not asked.`);
    else
      add(
        `Model ${model}: ${ranked.map(([s, p]) => `${s} ${p.toFixed(4)}`).join(', ')}.${features ? ` Top features: ${features}.` : text === undefined ? ' Top features are not kept for logged requests (their text is never stored).' : ''}`,
      );
    // 2. The decision rule.
    if (reason !== 'override') {
      const threshold = d.routing.confidenceThreshold;
      add(
        reason === 'model'
          ? `Confidence ${confidence.toFixed(4)} ≥ threshold ${threshold}: the model's choice ${service} stands.`
          : reason === 'low-confidence'
            ? `Confidence ${confidence.toFixed(4)} < threshold ${threshold}: the request goes to the default service ${service} (routing.ambiguous=default).`
            : `Confidence ${confidence.toFixed(4)} < threshold ${threshold}: answered 300 GW_ROUTING_AMBIGUOUS with the candidates.`,
      );
    }
    // 3. Health and breakers of the candidates.
    const candidates = [...new Set([service, ...ranked.slice(0, 3).map(([s]) => s)].filter((s): s is string => s !== null))];
    const stateOf = (s: string) => `${s}: health ${d.health(s)}, breaker ${d.breaker(s)}`;
    add(`Candidates' state: ${candidates.map(stateOf).join('; ')}.`);
    const candidatesStep = steps.length;
    // 4. Split side.
    const sideOf = (s: string) => d.split(s) ?? `no traffic split routes to ${s}: the stable side (its own URLs) answers`;
    if (service !== null) add(`Split side: ${sideOf(service)}.`);
    // 5. Fallbacks.
    const fallbackOf = (s: string) => d.fallback(s) ?? 'none (the error is answered as is)';
    if (service !== null) add(`Fallbacks of ${service}: ${fallbackOf(service)}.`);
    // 6. The final upstream.
    let finalUpstream: string | null = service;
    if (service === null) add('Final upstream: none; the client must rephrase or name the service.');
    else {
      const unavailable = d.health(service) === 'down' || d.breaker(service) === 'open';
      const fb = d.fallback(service);
      if (unavailable && fb !== undefined) finalUpstream = `${service} (failing: ${fb})`;
      add(
        unavailable
          ? `Final upstream: ${service} is ${d.breaker(service) === 'open' ? 'behind an open breaker' : 'down'}; ${fb !== undefined ? `its fallback answers (${fb})` : 'the client gets 503 with Retry-After'}.`
          : `Final upstream: ${service}.`,
      );
    }
    // A close runner-up: the chain branches from the candidates step.
    if (top !== undefined && runnerUp !== null && reason !== 'override' && top[1] - runnerUp.probability <= d.settings.branchMargin) {
      const r = runnerUp.service;
      add(
        `Runner-up within ${d.settings.branchMargin}: ${r} at ${runnerUp.probability.toFixed(4)} vs ${top[0]} at ${top[1].toFixed(4)}. Had ${r} been chosen: ${stateOf(r)}; ${sideOf(r)}; fallbacks ${fallbackOf(r)}.`,
        { from: candidatesStep, id: `runner-up-${r}` },
      );
    }
    const recorded = await this.#record(steps);
    return {
      ...recorded,
      decision: {
        source: text !== undefined ? 'text' : 'requestId',
        model,
        reason,
        service,
        confidence: round(confidence),
        probabilities,
        runnerUp,
        finalUpstream,
      },
    };
  }

  /** Patterns over the recent decision log, as a chain (recorded), summarised into Memory. */
  async review(input: z.input<typeof reviewRoutingInput> = {}): Promise<ReviewResult> {
    const { minutes } = reviewRoutingInput.parse(input);
    const d = this.#d;
    const now = (d.clock ?? Date.now)();
    const decisions = d.decisions?.since(now - minutes * 60_000) ?? [];
    const modelled = decisions.filter((x): x is LoggedDecision & { probabilities: Record<string, number> } => x.probabilities !== undefined);

    // Low-confidence share per chosen service (by the model's own top label).
    const perService = new Map<string, [number, number]>();
    for (const x of modelled) {
      const s = x.predicted ?? x.service ?? 'none';
      const cur = perService.get(s) ?? [0, 0];
      cur[0] += 1;
      if (x.confidence < d.settings.lowConfidence) cur[1] += 1;
      perService.set(s, cur);
    }
    const lowConfidenceShare = Object.fromEntries([...perService].sort().map(([s, [n, low]]) => [s, round(low / n)]));

    // Confused pairs: the top two of a decision whose margin is small (2 × branchMargin), by count.
    const pairs = new Map<string, number>();
    for (const x of modelled) {
      const [a, b] = sortedProbabilities(x.probabilities);
      if (a === undefined || b === undefined || a[1] - b[1] > 2 * d.settings.branchMargin) continue;
      const key = [a[0], b[0]].sort().join('\u0000');
      pairs.set(key, (pairs.get(key) ?? 0) + 1);
    }
    const confusedPairs = [...pairs]
      .sort((x, y) => y[1] - x[1] || x[0].localeCompare(y[0]))
      .slice(0, 5)
      .map(([k, count]) => ({ pair: k.split('\u0000') as [string, string], count }));
    const mostConfusedPair = confusedPairs[0]?.pair ?? null;

    // Shadow disagreements (the manager counts them since the shadow was set).
    const status = d.modelStatus?.();
    const shadow = status && status.shadow !== null ? { ...status.shadowAgreement } : null;

    // Drift: the chosen-service shares now vs the label shares of the model's evaluation set.
    let drift: ReviewResult['drift'] = null;
    const confusion = status?.active.evaluationConfusion;
    if (status && confusion && modelled.length > 0) {
      const labels = confusion.labels;
      const rows = confusion.matrix.map((row) => row.reduce((a, b) => a + b, 0));
      const total = rows.reduce((a, b) => a + b, 0);
      if (total > 0) {
        const byService: Record<string, number> = {};
        let distance = 0;
        labels.forEach((label, i) => {
          const expected = rows[i]! / total;
          const seen = modelled.filter((x) => x.predicted === label).length / modelled.length;
          byService[label] = round(seen - expected);
          distance += Math.abs(seen - expected) / 2;
        });
        drift = { distance: round(distance), byService };
      }
    }

    // Feature drift: words per request, recent vs the training set (the text is never kept; its length is).
    let featureDrift: ReviewResult['featureDrift'] = null;
    const recentWords = decisions.flatMap((x) => (x.words !== undefined ? [x.words] : []));
    const trainingWords = recentWords.length > 0 ? d.trainingWords?.() : undefined;
    if (trainingWords !== undefined && trainingWords.length > 0) {
      const recent = wordBuckets(recentWords);
      const training = wordBuckets(trainingWords);
      const distance = Object.keys(recent).reduce((sum, k) => sum + Math.abs(recent[k]! - training[k]!) / 2, 0);
      featureDrift = { feature: 'words per request', distance: round(distance), recent, training };
    }

    const recommendations: string[] = [];
    for (const [s, share] of Object.entries(lowConfidenceShare)) {
      if (share > 0.2) recommendations.push(`${s}: ${pct(share)} of its decisions are low-confidence; add training phrasing for it or review routing.confidenceThreshold`);
    }
    if (mostConfusedPair !== null) recommendations.push(`add contrasting training examples for ${mostConfusedPair[0]} vs ${mostConfusedPair[1]} (the most confused pair: ${confusedPairs[0]!.count} close decisions)`);
    if (shadow?.rate !== null && shadow?.rate !== undefined && shadow.rate < 0.9) recommendations.push(`the shadow model agrees on only ${pct(shadow.rate)}: compare before promoting it`);
    if (featureDrift !== null && featureDrift.distance > 0.25)
      recommendations.push(`request phrasing drifted from the training set (words per request, distance ${featureDrift.distance}): add recent-style examples (shorter/longer requests) and retrain`);
    if (drift !== null && drift.distance > 0.2) recommendations.push(`traffic drifted from the evaluation set (distance ${drift.distance}): evaluate the model on recent phrasing and retrain`);
    if (recommendations.length === 0) recommendations.push(modelled.length === 0 ? 'no model decisions in the window: nothing to act on' : 'no action needed: confidence, agreement and drift are within bounds');

    const steps: Array<Omit<Step, 'recorded'>> = [];
    const add = (thought: string) => steps.push({ thoughtNumber: steps.length + 1, thought });
    const auto = decisions.filter((x) => x.reason === 'model').length;
    add(`Window: the last ${minutes} min, ${decisions.length} decisions (${auto} by the model with confidence, ${decisions.filter((x) => x.reason === 'override').length} named by the caller, ${decisions.length - auto - decisions.filter((x) => x.reason === 'override').length} below the threshold).`);
    add(`Low-confidence share per service (below ${d.settings.lowConfidence}): ${Object.entries(lowConfidenceShare).map(([s, v]) => `${s} ${pct(v)}`).join(', ') || 'none'}.`);
    add(shadow === null ? 'No shadow model is set: no disagreements to compare.' : `Shadow model: ${shadow.agree} agree, ${shadow.disagree} disagree${shadow.rate !== null ? ` (agreement ${pct(shadow.rate)})` : ''}.`);
    add(drift === null ? 'Drift: the active model has no evaluation set to compare with (or no decisions).' : `Drift of the chosen-service shares vs the evaluation set: distance ${drift.distance} (${Object.entries(drift.byService).map(([s, v]) => `${s} ${v >= 0 ? '+' : ''}${pct(v)}`).join(', ')}).`);
    add(
      featureDrift === null
        ? 'Feature drift: no training set to compare with (or no query texts in the window).'
        : `Feature drift, words per request vs the training set: distance ${featureDrift.distance} (recent ${Object.entries(featureDrift.recent).map(([k, v]) => `${k}: ${pct(v)}`).join(', ')}; training ${Object.entries(featureDrift.training).map(([k, v]) => `${k}: ${pct(v)}`).join(', ')}).`,
    );
    add(confusedPairs.length === 0 ? 'No close decisions: no confused pairs.' : `Most confused pairs (top two within ${2 * d.settings.branchMargin}): ${confusedPairs.map((p) => `${p.pair[0]}/${p.pair[1]} ×${p.count}`).join(', ')}.`);
    add(`Recommended: ${recommendations.join('; ')}.`);
    const recorded = await this.#record(steps);
    d.remember?.(
      `${new Date(now).toISOString()} review minutes=${minutes} decisions=${decisions.length} mostConfused=${mostConfusedPair ? mostConfusedPair.join('/') : '-'} drift=${drift?.distance ?? '-'} recordedBy=${recorded.recordedBy}`,
    );
    return { ...recorded, decisions: decisions.length, lowConfidenceShare, shadow, drift, featureDrift, confusedPairs, mostConfusedPair, recommendations };
  }

  /** Record each thought in order; any failure (or the server down) marks the chain local. */
  async #record(steps: ReadonlyArray<Omit<Step, 'recorded'>>): Promise<{ steps: Step[]; recordedBy: 'sequential-thinking' | 'local' }> {
    const { caller, settings } = this.#d;
    const out: Step[] = steps.map((s) => ({ ...s, recorded: false }));
    if (caller === undefined || !caller.isReady(settings.server)) return { steps: out, recordedBy: 'local' };
    const total = steps.length;
    for (const step of out) {
      try {
        const result = await caller.callTool(settings.server, 'sequentialthinking', {
          thought: step.thought,
          thoughtNumber: step.thoughtNumber,
          totalThoughts: total,
          nextThoughtNeeded: step.thoughtNumber < total,
          ...(step.branchFromThought !== undefined ? { branchFromThought: step.branchFromThought, branchId: step.branchId } : {}),
        });
        if (result.isError === true) break;
        step.recorded = true;
      } catch {
        break; // down in the middle: the rest stays local
      }
    }
    return { steps: out, recordedBy: out.every((s) => s.recorded) ? 'sequential-thinking' : 'local' };
  }
}

const WORD_BUCKETS: ReadonlyArray<readonly [string, number]> = [
  ['1-3', 3],
  ['4-7', 7],
  ['8-15', 15],
  ['16-31', 31],
  ['32+', Infinity],
];

/** Share of texts per words-per-text bucket. */
function wordBuckets(words: readonly number[]): Record<string, number> {
  const counts = WORD_BUCKETS.map(() => 0);
  for (const w of words) counts[WORD_BUCKETS.findIndex(([, max]) => w <= max)]! += 1;
  return Object.fromEntries(WORD_BUCKETS.map(([name], i) => [name, round(counts[i]! / Math.max(1, words.length))]));
}

/** A request the analyst cannot answer (a tool error, not a protocol error). */
export class AnalysisError extends Error {
  override readonly name = 'AnalysisError';
}
