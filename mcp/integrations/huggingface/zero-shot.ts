import { InferenceClient, InferenceClientHubApiError, InferenceClientProviderApiError, InferenceClientProviderOutputError } from '@huggingface/inference';

/*
 * Zero-shot classification through @huggingface/inference: the serverless Inference API
 * (HF_TOKEN; model resolved on the Hub, then POSTed to the router) or a dedicated Inference
 * Endpoint (HF_ENDPOINT_URL). The wire format is the task's spec in @huggingface/tasks:
 *   request  {"inputs": "<text>", "parameters": {"candidate_labels": [...], "hypothesis_template": "..."}}
 *   response [{"label": "...", "score": 0.93}, ...]   (the legacy {labels, scores} form is accepted too)
 * Failures become a ValidatorError with a kind and a process exit code, never a raw stack.
 */

import { ValidatorError, type ValidatorErrorKind } from './errors.js';

export { VALIDATOR_EXIT_CODES, ValidatorError, type ValidatorErrorKind } from './errors.js';

export interface ZeroShotOptions {
  /** HF_TOKEN (hf_...). */
  readonly token?: string;
  /** HF_ENDPOINT_URL: a dedicated Inference Endpoint; absent: the serverless Inference API. */
  readonly endpointUrl?: string;
  /** The zero-shot model on the Hub, e.g. facebook/bart-large-mnli. */
  readonly model: string;
  readonly hypothesisTemplate?: string;
  /** Per request. */
  readonly timeoutMs?: number;
  /** How long to keep retrying while the model is loading (503), in total. */
  readonly maxLoadingWaitMs?: number;
  /** Replaces global fetch (tests; proxies). */
  readonly fetch?: typeof fetch;
}

export interface LabelScore {
  readonly label: string;
  readonly score: number;
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET', 'CERT_HAS_EXPIRED', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE']);

function causeCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let i = 0; i < 4 && e !== null && typeof e === 'object'; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

function statusOf(err: InferenceClientProviderApiError | InferenceClientHubApiError): number | undefined {
  return (err as { httpResponse?: { status?: number } }).httpResponse?.status;
}

function bodyOf(err: InferenceClientProviderApiError | InferenceClientHubApiError): unknown {
  return (err as { httpResponse?: { body?: unknown } }).httpResponse?.body;
}

/** Map anything the client threw to a ValidatorError with a message an operator can act on. */
export function classifyError(err: unknown, where: string): ValidatorError {
  if (err instanceof ValidatorError) return err;
  if (err instanceof InferenceClientProviderApiError || err instanceof InferenceClientHubApiError) {
    const status = statusOf(err);
    const detail = err.message.replace(/^Failed to perform inference: /, '');
    if (status === 401 || status === 403) {
      return new ValidatorError('auth', `${where} refused the token (HTTP ${status}): check HF_TOKEN (a read token from https://huggingface.co/settings/tokens) and its access to the model`, status);
    }
    if (status === 429) return new ValidatorError('rate-limit', `${where} is rate limiting this token (HTTP 429): wait, lower --concurrency or --limit, or use a dedicated endpoint (HF_ENDPOINT_URL)`, status);
    if (status === 503) {
      const body = bodyOf(err) as { estimated_time?: unknown } | undefined;
      const eta = typeof body?.estimated_time === 'number' ? ` (estimated ${Math.ceil(body.estimated_time)} s)` : '';
      return new ValidatorError('loading', `the model is still loading on ${where}${eta}: run again in a minute, or raise --max-wait`, status);
    }
    if (status === 404) return new ValidatorError('api', `${where} does not serve this model (HTTP 404): ${detail}`, status);
    if (err instanceof InferenceClientHubApiError && status === undefined) return new ValidatorError('network', `cannot reach the HuggingFace Hub: ${detail}`);
    return new ValidatorError('api', `${where} answered HTTP ${status ?? '?'}: ${detail}`, status);
  }
  if (err instanceof InferenceClientProviderOutputError) return new ValidatorError('output', `${where} answered in an unexpected format: ${err.message}`);
  const code = causeCode(err);
  const name = (err as { name?: string } | null)?.name;
  if (name === 'TimeoutError' || name === 'AbortError') return new ValidatorError('network', `${where} did not answer in time`);
  if ((code !== undefined && NETWORK_CODES.has(code)) || (err instanceof TypeError && /fetch failed/i.test(err.message))) {
    return new ValidatorError('network', `cannot reach ${where}${code ? ` (${code})` : ''}: check the network, a proxy, or HF_ENDPOINT_URL`);
  }
  return new ValidatorError('api', `${where} failed: ${(err as Error)?.message ?? String(err)}`);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class ZeroShotClassifier {
  readonly #client: InferenceClient;
  readonly #opts: ZeroShotOptions;
  /** Where requests go, for messages. */
  readonly target: string;

  constructor(opts: ZeroShotOptions) {
    if (opts.token === undefined && opts.endpointUrl === undefined) {
      throw new ValidatorError(
        'config',
        'HF_TOKEN is not set: the validator calls the HuggingFace Inference API with a token (https://huggingface.co/settings/tokens), or a dedicated endpoint set in HF_ENDPOINT_URL',
      );
    }
    this.#opts = opts;
    this.#client = new InferenceClient(opts.token, opts.endpointUrl !== undefined ? { endpointUrl: opts.endpointUrl } : {});
    this.target = opts.endpointUrl ?? 'the HuggingFace Inference API';
  }

  /** Scores per candidate label, best first. Retries while the model loads (503), within maxLoadingWaitMs. */
  async classify(text: string, candidateLabels: readonly string[]): Promise<LabelScore[]> {
    const deadline = Date.now() + (this.#opts.maxLoadingWaitMs ?? 60_000);
    for (let attempt = 0; ; attempt++) {
      try {
        const out = await this.#client.zeroShotClassification(
          {
            ...(this.#opts.endpointUrl === undefined ? { model: this.#opts.model, provider: 'hf-inference' as const } : {}),
            inputs: text,
            parameters: {
              candidate_labels: [...candidateLabels],
              ...(this.#opts.hypothesisTemplate ? { hypothesis_template: this.#opts.hypothesisTemplate } : {}),
            },
          },
          {
            retry_on_error: false,
            signal: AbortSignal.timeout(this.#opts.timeoutMs ?? 30_000),
            ...(this.#opts.fetch ? { fetch: this.#opts.fetch } : {}),
          },
        );
        return [...out].sort((a, b) => b.score - a.score).map((o) => ({ label: o.label, score: o.score }));
      } catch (err) {
        const error = classifyError(err, this.target);
        if (error.kind !== 'loading') throw error;
        const body = err instanceof InferenceClientProviderApiError ? (bodyOf(err) as { estimated_time?: unknown } | undefined) : undefined;
        const eta = typeof body?.estimated_time === 'number' ? body.estimated_time * 1000 : 5000;
        const wait = Math.min(Math.max(eta, 50), 20_000, deadline - Date.now());
        if (wait <= 0) throw error;
        await sleep(wait);
      }
    }
  }
}
