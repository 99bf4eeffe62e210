import { z } from 'zod';
import type { UpstreamToolCaller } from '../../clients/types.js';
import { ValidatorError } from './errors.js';
import { describeReferenceModel, referenceModelSchema, type ReferenceModel } from './reference.js';
import { loadDataFiles, type DataSet } from '../../../src/routing/model/data.js';
import { evaluate } from '../../../src/routing/model/evaluation.js';
import type { RoutingModel } from '../../../src/routing/model/model.js';

/*
 * The admin service behind the MCP tool `validate_routing_model` (what `model validate` does,
 * from inside a running gateway): the active model on the validation split, the reference
 * zero-shot model found and described through the HuggingFace MCP server (the gateway's MCP
 * client pool, mcp.servers.huggingface) and, with HF_TOKEN or HF_ENDPOINT_URL, the zero-shot
 * comparison through the Inference API. Each outside part reports its own failure in the
 * answer (the local figures always come back); nothing here is on the request path.
 */

export const validateRoutingModelInput = z.strictObject({
  /** Examples sent to the zero-shot model, spread over the services (the local model scores them all). */
  limit: z.number().int().min(1).max(1000).default(50),
  /** Zero-shot reference on the Hub (default: routing.validatorModel). */
  hfModel: z.string().min(1).max(200).regex(/^[\w.-]+(\/[\w.-]+)?$/, 'a Hub model id').optional(),
});

const figures = z.object({ accuracy: z.number(), macroF1: z.number(), examples: z.number().int() });
const failure = z.object({ message: z.string(), kind: z.string() });
export const validateRoutingModelOutput = z.object({
  model: z.string(),
  data: z.string(),
  local: figures,
  referenceModel: referenceModelSchema.nullable(),
  referenceError: failure.nullable(),
  zeroShot: figures.extend({ model: z.string(), agreement: z.number() }).nullable(),
  zeroShotError: failure.nullable(),
});
export type ValidateRoutingModelOutput = z.output<typeof validateRoutingModelOutput>;

export interface ModelValidationDeps {
  /** The active routing model. */
  readonly model: () => RoutingModel;
  /** The labelled validation split (routing-models/data/validation.jsonl). */
  readonly dataFile: string;
  /** The gateway's MCP clients (absent: no pool in this setup). */
  readonly mcp?: UpstreamToolCaller;
  /** The name of the HuggingFace MCP server in mcp.servers. */
  readonly hfServer: string;
  readonly zeroShot: { readonly model: string; readonly token?: string; readonly endpointUrl?: string; readonly timeoutMs: number };
}

function failed(err: unknown): z.output<typeof failure> {
  if (err instanceof ValidatorError) return { message: err.message, kind: err.kind };
  throw err;
}

export class ModelValidationService {
  #data: DataSet | undefined;
  constructor(private readonly deps: ModelValidationDeps) {}

  async validate(input: z.output<typeof validateRoutingModelInput>): Promise<ValidateRoutingModelOutput> {
    const model = this.deps.model();
    this.#data ??= loadDataFiles([this.deps.dataFile]);
    const data = this.#data;
    const local = evaluate(model, data);
    const hfModel = input.hfModel ?? this.deps.zeroShot.model;

    let referenceModel: ReferenceModel | null = null;
    let referenceError: z.output<typeof failure> | null = null;
    if (this.deps.mcp === undefined) referenceError = { kind: 'config', message: `no MCP client pool in this gateway: configure mcp.servers.${this.deps.hfServer} (preset huggingface)` };
    else {
      try {
        referenceModel = await describeReferenceModel(this.deps.mcp, { server: this.deps.hfServer, modelId: hfModel, timeoutMs: this.deps.zeroShot.timeoutMs });
      } catch (err) {
        referenceError = failed(err);
      }
    }

    let zeroShot: ValidateRoutingModelOutput['zeroShot'] = null;
    let zeroShotError: z.output<typeof failure> | null = null;
    try {
      // Loaded here only: @huggingface/inference is not needed by a gateway that never validates.
      const hf = await import('./index.js');
      const classifier = new hf.ZeroShotClassifier({
        ...(this.deps.zeroShot.token !== undefined ? { token: this.deps.zeroShot.token } : {}),
        ...(this.deps.zeroShot.endpointUrl !== undefined ? { endpointUrl: this.deps.zeroShot.endpointUrl } : {}),
        model: hfModel,
        hypothesisTemplate: 'This request is about {}.',
        maxLoadingWaitMs: 0,
        timeoutMs: this.deps.zeroShot.timeoutMs,
      });
      const report = await hf.validateAgainstZeroShot({ data, model, classifier, zeroShotModel: hfModel, limit: input.limit, reference: referenceModel });
      zeroShot = { model: hfModel, accuracy: report.zeroShot.accuracy, macroF1: report.zeroShot.macroF1, examples: report.examples, agreement: report.agreement };
    } catch (err) {
      zeroShotError = failed(err);
    }

    return {
      model: model.id,
      data: data.files.map((f) => f.split('/').pop()).join('+'),
      local: { accuracy: local.accuracy, macroF1: local.macroF1, examples: local.examples },
      referenceModel,
      referenceError,
      zeroShot,
      zeroShotError,
    };
  }
}
