import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import type { DataSet, Example } from '../../../src/routing/model/data.js';
import { DEFAULT_FEATURE_SETTINGS, type FeatureSettings } from '../../../src/routing/model/features.js';
import { MODEL_FORMAT, MODEL_FORMAT_VERSION, type ModelFile } from '../../../src/routing/model/format.js';
import { encodeWeights } from '../../../src/routing/model/model.js';

export const SERVICES = ['twin', 'agent-controller', 'knowledge', 'fog', 'p2p'] as const;

/** A small labelled set (a few phrasings per service), enough for a model to learn the words. */
export function toyData(): DataSet {
  const texts: Record<string, string[]> = {
    twin: ['remind me to call mom', 'add a note about my dentist', 'my preference is short answers', 'what did I write in my notes', 'set a reminder for tomorrow'],
    'agent-controller': ['deploy the support agent', 'train the agent on new data', 'evaluate my agent', 'create an agent that answers email', 'roll back the agent'],
    knowledge: ['what does the handbook say', 'search the documents for policy', 'ingest this pdf into the knowledge base', 'summarize the report', 'find docs about security'],
    fog: ['status of job 42', 'cancel my compute job', 'how many gpu nodes are free', 'price per cpu hour', 'submit a batch job'],
    p2p: ['connect to peer alice', 'sync my folder with my laptop', 'nat hole punching fails', 'send a message to peer bob', 'show the mesh links'],
  };
  const examples: Example[] = [];
  for (const [service, list] of Object.entries(texts)) {
    list.forEach((t, i) => examples.push({ request: { method: 'POST', path: '/v1/query', body: { query: t } }, service, source: `toy:${service}:${i}` }));
  }
  return { examples, files: ['toy.jsonl'], hash: `sha256:${'0'.repeat(64)}` };
}

/** A valid model file from dense weights (all zero unless given) and a bias. */
export function modelFile(options: { bias?: number[]; labels?: readonly string[]; features?: Partial<FeatureSettings>; id?: string; dense?: Float32Array } = {}): ModelFile {
  const labels = [...(options.labels ?? SERVICES)];
  const features = { ...DEFAULT_FEATURE_SETTINGS, buckets: 1024, ...options.features, textFields: [...DEFAULT_FEATURE_SETTINGS.textFields], headers: [...DEFAULT_FEATURE_SETTINGS.headers] };
  const dense = options.dense ?? new Float32Array(features.buckets * labels.length);
  return {
    format: MODEL_FORMAT,
    formatVersion: MODEL_FORMAT_VERSION,
    id: options.id ?? 'rm-test',
    createdAt: '2026-01-01T00:00:00.000Z',
    labels,
    features,
    bias: options.bias ?? labels.map(() => 0),
    weights: { encoding: 'sparse-f32-base64', ...encodeWeights(dense, features.buckets, labels.length) },
    training: { trainer: 'test', dataHash: `sha256:${'0'.repeat(64)}`, files: ['x.jsonl'], examples: 1, backgroundExamples: 0, seed: 1, epochs: 1, learningRate: 0.1, l2: 0 },
  };
}

/** A model that sends everything to one label (bias only). */
export function constantModelFile(label: string, id = `rm-always-${label}`): ModelFile {
  return modelFile({ id, bias: SERVICES.map((s) => (s === label ? 8 : 0)) });
}

/** A temp dir removed after the file's tests. */
export function tempDir(prefix = 'ugw-rm-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export const query = (text: string, field = 'query') => ({ method: 'POST', path: '/v1/query', contentType: 'application/json', body: { [field]: text } });
