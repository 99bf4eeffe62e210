import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { z } from 'zod';

/*
 * A local stand-in for the HuggingFace Inference API's zero-shot-classification task, kept
 * honest by the task's own spec from @huggingface/tasks: every request body must validate
 * against spec/input.json, and every answer is checked against spec/output.json before it
 * is sent. It also answers the Hub's provider-mapping lookup and the router's model path,
 * so the serverless code path (no endpoint URL) can be exercised with a redirected fetch.
 */

const tasksRoot = join(dirname(createRequire(import.meta.url).resolve('@huggingface/tasks/package.json')), 'src/tasks');
const specDir = join(tasksRoot, 'zero-shot-classification/spec');
const common = JSON.parse(readFileSync(join(tasksRoot, 'common-definitions.json'), 'utf8')) as { definitions: Record<string, unknown> };

function schema(file: string): z.ZodType {
  const json = JSON.parse(readFileSync(join(specDir, file), 'utf8')) as Record<string, unknown>;
  delete json.$schema;
  // output.json refers to the shared ClassificationOutput definition: inline it.
  if (json.items && typeof json.items === 'object' && '$ref' in (json.items as object)) json.items = common.definitions.ClassificationOutput;
  return z.fromJSONSchema(json as never);
}

export const zeroShotInput = schema('input.json');
export const zeroShotOutput = schema('output.json');

export type HfMode = 'ok' | 'unauthorized' | 'rate-limited' | 'loading' | 'malformed' | 'legacy';

export interface HfServer {
  readonly url: string;
  mode: HfMode;
  readonly requests: Array<{ method: string; path: string; authorization?: string; body?: unknown }>;
  /** Requests whose body did not validate against the spec (should stay empty). */
  readonly invalid: unknown[];
  close(): Promise<void>;
}

/** A toy zero-shot classifier: shared words between the text and each candidate label, softmaxed. */
function classify(text: string, labels: readonly string[]): Array<{ label: string; score: number }> {
  const words = new Set(text.toLowerCase().split(/[^a-z0-9]+/).filter((w) => w.length > 2));
  const raw = labels.map((l) => l.toLowerCase().split(/[^a-z0-9]+/).filter((w) => w.length > 2 && words.has(w)).length);
  const exp = raw.map((r) => Math.exp(r));
  const sum = exp.reduce((a, b) => a + b, 0);
  return labels.map((label, i) => ({ label, score: exp[i]! / sum })).sort((a, b) => b.score - a.score);
}

export async function startHfServer(model = 'facebook/bart-large-mnli'): Promise<HfServer> {
  const requests: HfServer['requests'] = [];
  const invalid: unknown[] = [];
  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json', 'x-request-id': 'hf-test' }).end(JSON.stringify(body));
  };
  const state = { mode: 'ok' as HfMode };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = (req.url ?? '/').split('?')[0]!;
      let body: unknown;
      try {
        body = chunks.length > 0 ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined;
      } catch {
        body = Buffer.concat(chunks).toString('utf8');
      }
      requests.push({ method: req.method ?? '', path, ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}), body });
      // The Hub: which provider serves the model.
      if (req.method === 'GET' && path === `/api/models/${model}`) {
        json(res, 200, { _id: 'x', id: model, inferenceProviderMapping: { 'hf-inference': { status: 'live', providerId: model, task: 'zero-shot-classification' } } });
        return;
      }
      if (req.method !== 'POST' || (path !== '/' && path !== `/hf-inference/models/${model}`)) {
        json(res, 404, { error: `Model ${path} does not exist` });
        return;
      }
      if (state.mode === 'unauthorized' || !/^Bearer hf_/.test(req.headers.authorization ?? '')) {
        json(res, 401, { error: 'Invalid credentials in Authorization header' });
        return;
      }
      if (state.mode === 'rate-limited') return json(res, 429, { error: 'Rate limit reached. You reached free usage limit (reset hourly).' });
      if (state.mode === 'loading') return json(res, 503, { error: `Model ${model} is currently loading`, estimated_time: 0.05 });
      const parsed = zeroShotInput.safeParse(body);
      if (!parsed.success) {
        invalid.push(body);
        json(res, 400, { error: `Invalid input: ${parsed.error.issues[0]?.message}` });
        return;
      }
      const input = parsed.data as { inputs: string; parameters: { candidate_labels: string[] } };
      if (state.mode === 'malformed') return json(res, 200, { something: 'else' });
      const answer = classify(input.inputs, input.parameters.candidate_labels);
      if (state.mode === 'legacy') return json(res, 200, { sequence: input.inputs, labels: answer.map((a) => a.label), scores: answer.map((a) => a.score) });
      const checked = zeroShotOutput.parse(answer); // the answer must follow the spec too
      json(res, 200, checked);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get mode() {
      return state.mode;
    },
    set mode(m: HfMode) {
      state.mode = m;
    },
    requests,
    invalid,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** fetch that sends huggingface.co and router.huggingface.co to the local server (the serverless path). */
export function redirectingFetch(serverUrl: string): typeof fetch {
  return (input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    return fetch(url.replace(/^https:\/\/(router\.)?huggingface\.co/, serverUrl), init);
  };
}
