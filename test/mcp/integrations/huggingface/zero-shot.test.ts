import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVICE_DESCRIPTIONS, validateAgainstZeroShot, ValidatorError, ZeroShotClassifier } from '../../../../mcp/integrations/huggingface/index.js';
import { loadDataFiles } from '../../../../src/routing/model/data.js';
import { entryPath, loadModelFile, packageModelsDir, readPointer } from '../../../../src/routing/model/files.js';
import { redirectingFetch, startHfServer, zeroShotInput, zeroShotOutput, type HfServer } from '../../../helpers/hf-server.js';

let hf: HfServer;

/** A loopback port where nothing listens (fetch refuses port 1 outright as a "bad port"). */
async function closedPort(): Promise<number> {
  const { createServer } = await import('node:net');
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}
beforeAll(async () => {
  hf = await startHfServer();
});
afterAll(() => hf.close());

const labels = Object.values(SERVICE_DESCRIPTIONS);

describe('the local Inference API stand-in follows the task spec', () => {
  it('input and output schemas come from @huggingface/tasks and accept/refuse what the spec says', () => {
    expect(zeroShotInput.safeParse({ inputs: 'x', parameters: { candidate_labels: ['a'] } }).success).toBe(true);
    expect(zeroShotInput.safeParse({ inputs: 'x' }).success).toBe(false);
    expect(zeroShotInput.safeParse({ inputs: 'x', parameters: {} }).success).toBe(false);
    expect(zeroShotOutput.safeParse([{ label: 'a', score: 0.2 }]).success).toBe(true);
    expect(zeroShotOutput.safeParse({ labels: ['a'], scores: [1] }).success).toBe(false);
  });
});

describe('zero-shot classifier (@huggingface/inference)', () => {
  it('talks to a dedicated endpoint (HF_ENDPOINT_URL) in the documented wire format', async () => {
    hf.mode = 'ok';
    const c = new ZeroShotClassifier({ token: 'hf_test', endpointUrl: hf.url, model: 'facebook/bart-large-mnli', hypothesisTemplate: 'This request is about {}.' });
    const scores = await c.classify('how many peers are on the mesh network', labels);
    expect(scores[0]!.label).toBe(SERVICE_DESCRIPTIONS.p2p);
    expect(scores.reduce((a, s) => a + s.score, 0)).toBeCloseTo(1, 6);
    const last = hf.requests.at(-1)!;
    expect(last).toMatchObject({ method: 'POST', path: '/', authorization: 'Bearer hf_test' });
    expect(last.body).toEqual({ inputs: 'how many peers are on the mesh network', parameters: { candidate_labels: labels, hypothesis_template: 'This request is about {}.' } });
    expect(hf.invalid).toEqual([]);
  });

  it('uses the serverless path without an endpoint: Hub lookup, then the router (same client code)', async () => {
    hf.mode = 'ok';
    const before = hf.requests.length;
    const c = new ZeroShotClassifier({ token: 'hf_test', model: 'facebook/bart-large-mnli', fetch: redirectingFetch(hf.url) });
    expect(c.target).toBe('the HuggingFace Inference API');
    await c.classify('submit a compute job to the fog nodes', labels);
    const paths = hf.requests.slice(before).map((r) => `${r.method} ${r.path}`);
    expect(paths).toContain('POST /hf-inference/models/facebook/bart-large-mnli');
    expect(hf.invalid).toEqual([]);
  });

  it('accepts the legacy {labels, scores} answer', async () => {
    hf.mode = 'legacy';
    const c = new ZeroShotClassifier({ token: 'hf_test', endpointUrl: hf.url, model: 'm' });
    expect((await c.classify('peers and mesh links', labels))[0]!.label).toBe(SERVICE_DESCRIPTIONS.p2p);
  });

  const failure = async (mode: HfServer['mode'], options: Partial<ConstructorParameters<typeof ZeroShotClassifier>[0]> = {}) => {
    hf.mode = mode;
    const c = new ZeroShotClassifier({ token: 'hf_test', endpointUrl: hf.url, model: 'm', maxLoadingWaitMs: 300, ...options });
    try {
      await c.classify('x', labels);
    } catch (err) {
      expect(err).toBeInstanceOf(ValidatorError);
      return err as ValidatorError;
    }
    throw new Error('expected a failure');
  };

  it('turns 401, 429, a loading model, bad output and an unreachable host into clear errors with exit codes', async () => {
    expect(await failure('unauthorized')).toMatchObject({ kind: 'auth', status: 401, exitCode: 4, message: expect.stringMatching(/refused the token \(HTTP 401\): check HF_TOKEN/) });
    expect(await failure('rate-limited')).toMatchObject({ kind: 'rate-limit', status: 429, exitCode: 5 });
    const loading = await failure('loading');
    expect(loading).toMatchObject({ kind: 'loading', exitCode: 6, message: expect.stringMatching(/still loading .* \(estimated 1 s\)/) });
    expect(hf.requests.filter((r) => r.method === 'POST').length).toBeGreaterThan(2); // it retried while loading
    expect(await failure('malformed')).toMatchObject({ kind: 'output', exitCode: 7 });
    const closed = await closedPort();
    expect(await failure('ok', { endpointUrl: `http://127.0.0.1:${closed}` })).toMatchObject({ kind: 'network', exitCode: 3, message: expect.stringContaining(`cannot reach http://127.0.0.1:${closed} (ECONNREFUSED)`) });
    expect(() => new ZeroShotClassifier({ model: 'm' })).toThrow(/HF_TOKEN is not set/);
  });
});

describe('validate: the local model against the zero-shot model on labelled data', () => {
  it('reports both accuracies, their agreement and the disagreements', async () => {
    hf.mode = 'ok';
    const dir = packageModelsDir();
    const model = loadModelFile(entryPath(dir, readPointer(dir)!));
    const data = loadDataFiles([join(dir, 'data/validation.jsonl')]);
    const progress: number[] = [];
    const report = await validateAgainstZeroShot({
      data,
      model,
      classifier: new ZeroShotClassifier({ token: 'hf_test', endpointUrl: hf.url, model: 'facebook/bart-large-mnli' }),
      zeroShotModel: 'facebook/bart-large-mnli',
      limit: 25,
      concurrency: 3,
      onProgress: (done) => progress.push(done),
    });
    expect(report.examples).toBe(25);
    expect(report.local.accuracy).toBeGreaterThan(0.8);
    expect(report.zeroShot.examples).toBe(25);
    expect(report.agreement).toBeGreaterThanOrEqual(0);
    expect(report.disagreements.length).toBe(Math.round((1 - report.agreement) * 25));
    expect(progress.at(-1)).toBe(25);
    // 5 per service (the sample is spread over the services)
    expect(Object.values(report.local.perClass).map((c) => c.support)).toEqual([5, 5, 5, 5, 5]);
    expect(hf.invalid).toEqual([]);
  });
});
