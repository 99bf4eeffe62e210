import type { EvaluationResult, ThresholdRow } from './evaluation.js';
import { formatEvaluation, table } from './evaluation.js';
import type { ModelFile } from './format.js';

/** A model card (markdown) for a trained model: what it is, what it was trained on, how it scores. */
export function modelCard(file: ModelFile, extra: { rows: number; bytes: number; validation?: EvaluationResult; thresholds?: readonly ThresholdRow[]; trainingSummary?: string }): string {
  const f = file.features;
  const t = file.training;
  const lines = [
    `# Routing model ${file.id}`,
    '',
    file.description ?? 'Chooses the service that answers `POST /v1/query` and `POST /v1/upload` requests.',
    '',
    '| | |',
    '|---|---|',
    `| Id | \`${file.id}\` |`,
    `| Created | ${file.createdAt} |`,
    `| Format | ${file.format} v${file.formatVersion} |`,
    `| Labels (services) | ${file.labels.map((l) => `\`${l}\``).join(', ')} |`,
    `| Model | multinomial logistic regression on hashed features (${t.trainer}) |`,
    `| Features | ${f.buckets} hashed buckets; words${f.wordBigrams ? ' + word bigrams' : ''}${f.charNgramMin > 0 ? ` + character ${f.charNgramMin}-${f.charNgramMax}-grams` : ''}${f.lexicon !== undefined ? ` + concepts of the \`${f.lexicon}\` lexicon` : ''} of ${f.textFields.map((x) => `\`${x}\``).join('/')} and the upload's file name (first ${f.maxTextChars} characters${f.foldAccents === true ? ', accents folded' : ''}); method, path, content type, file extension and type${f.headers.length > 0 ? `, headers ${f.headers.map((h) => `\`${h}\``).join(', ')}` : ''} |`,
    `| Weights | ${extra.rows} non-zero rows x ${file.labels.length} labels, ${Math.round(extra.bytes / 1024)} KB file |`,
    `| Training data | ${t.files.join(', ')}: ${t.examples} examples (+${t.backgroundExamples} synthetic no-information requests trained towards "unsure"), \`${t.dataHash}\` |`,
    `| Training | seed ${t.seed}, ${t.epochs} epochs, AdaGrad learning rate ${t.learningRate}, L2 ${t.l2} |`,
    '',
  ];
  if (extra.trainingSummary) lines.push(extra.trainingSummary, '');
  const e = file.evaluation;
  if (e) {
    lines.push(
      `## Evaluation on ${e.data}`,
      '',
      `Data hash \`${e.dataHash}\`. Rows of the confusion matrix are the true labels, columns the predictions.`,
      '',
      '```',
      formatEvaluation(e),
      '```',
      '',
    );
  }
  if (extra.thresholds) {
    lines.push(
      '## Confidence threshold',
      '',
      'Share of requests the model decides itself (probability at or above the threshold; the rest go to `routing.defaultService` or get a 300) and its accuracy on them:',
      '',
      '```',
      table(
        ['threshold', 'decided', 'accuracy'],
        extra.thresholds.map((r) => [r.threshold.toFixed(2), r.coverage.toFixed(4), r.accuracy.toFixed(4)]),
      ),
      '```',
      '',
    );
  }
  lines.push(
    '## Intended use and limits',
    '',
    '- Routes requests of the AI Village clients among the services above; English first, with a little German, French and Spanish in the data.',
    '- Text with no clue about the service (empty, filler words, made-up words) is meant to get a low probability: the gateway then uses the default service.',
    '- It only knows the phrasing of its data: check new kinds of traffic with `model eval` on fresh examples, and run a candidate in shadow mode before promoting it.',
    '',
  );
  return lines.join('\n');
}
