import { z } from 'zod';
import { LEXICONS } from './lexicon.js';

/*
 * The routing model file (JSON): one zod schema is the single source of its shape and type.
 * Weights are stored sparsely: the buckets that carry any weight (`rows`, little-endian
 * uint32, ascending) and, per row, one float32 per label (little-endian), both base64.
 */

export const MODEL_FORMAT = 'unified-gateway/routing-model' as const;
export const MODEL_FORMAT_VERSION = 1 as const;

const label = z.string().regex(/^[a-z][a-z0-9-]{0,62}$/, 'labels are service names (lowercase letters, digits, dashes)');
const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'base64');
const probability = z.number().min(0).max(1);
const sha256 = z.string().regex(/^sha256:[0-9a-f]{64}$/, 'sha256:<64 hex>');

export const featureSettingsSchema = z.strictObject({
  buckets: z
    .number()
    .int()
    .min(1 << 10)
    .max(1 << 22)
    .refine((b) => Number.isInteger(Math.log2(b)), 'a power of two'),
  wordBigrams: z.boolean(),
  charNgramMin: z.number().int().min(0).max(8),
  charNgramMax: z.number().int().min(0).max(8),
  textFields: z.array(z.string().min(1).max(64)).min(1).max(16),
  headers: z.array(z.string().regex(/^[a-z0-9-]{1,64}$/, 'a lowercase header name')).max(16),
  maxTextChars: z.number().int().min(16).max(100_000),
  foldDigits: z.boolean(),
  /** Optional: models trained before it do not have it (off). */
  foldAccents: z.boolean().optional(),
  /** A lexicon of lexicon.ts by name (optional, as foldAccents). */
  lexicon: z
    .string()
    .refine((name) => Object.hasOwn(LEXICONS, name), { message: `a lexicon this gateway knows (${Object.keys(LEXICONS).join(', ')})` })
    .optional(),
});

export const perClassSchema = z.strictObject({
  precision: probability,
  recall: probability,
  f1: probability,
  support: z.number().int().min(0),
});

export const evaluationSchema = z.strictObject({
  /** Which data the figures are for (file name) and its hash. */
  data: z.string(),
  dataHash: sha256,
  examples: z.number().int().min(0),
  accuracy: probability,
  macroF1: probability,
  logLoss: z.number().min(0),
  perClass: z.record(label, perClassSchema),
  /** confusion.matrix[i][j]: examples of labels[i] predicted as labels[j]. */
  confusion: z.strictObject({ labels: z.array(label), matrix: z.array(z.array(z.number().int().min(0))) }),
});

export const trainingSchema = z.strictObject({
  trainer: z.string(),
  dataHash: sha256,
  files: z.array(z.string()),
  examples: z.number().int().min(1),
  /** Synthetic no-information requests trained towards the uniform distribution. */
  backgroundExamples: z.number().int().min(0).default(0),
  seed: z.number().int(),
  epochs: z.number().int().min(1),
  learningRate: z.number().positive(),
  l2: z.number().min(0),
});

export const modelFileSchema = z
  .strictObject({
    format: z.literal(MODEL_FORMAT),
    formatVersion: z.literal(MODEL_FORMAT_VERSION),
    id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'letters, digits, ".", "_" and "-" (at most 64)'),
    createdAt: z.iso.datetime(),
    description: z.string().max(2000).optional(),
    labels: z
      .array(label)
      .min(2)
      .max(64)
      .refine((l) => new Set(l).size === l.length, 'labels must be unique'),
    features: featureSettingsSchema,
    bias: z.array(z.number().finite()),
    weights: z.strictObject({
      encoding: z.literal('sparse-f32-base64'),
      rows: base64,
      values: base64,
    }),
    training: trainingSchema,
    evaluation: evaluationSchema.optional(),
  })
  .superRefine((m, ctx) => {
    if (m.bias.length !== m.labels.length) ctx.addIssue({ code: 'custom', path: ['bias'], message: `needs one value per label (${m.labels.length})` });
    if (m.features.charNgramMin > m.features.charNgramMax) {
      ctx.addIssue({ code: 'custom', path: ['features', 'charNgramMin'], message: 'must not exceed charNgramMax' });
    }
    if (m.evaluation !== undefined) {
      const c = m.evaluation.confusion;
      if (c.matrix.length !== c.labels.length || c.matrix.some((row) => row.length !== c.labels.length)) {
        ctx.addIssue({ code: 'custom', path: ['evaluation', 'confusion'], message: 'the matrix must be labels x labels' });
      }
    }
  });

export type ModelFile = z.output<typeof modelFileSchema>;
export type Evaluation = z.output<typeof evaluationSchema>;
export type TrainingInfo = z.output<typeof trainingSchema>;
