import { z } from 'zod';
import type { Checker } from './check.js';
import { httpUrl, serviceNameSchema } from './fields.js';
import { SERVICE_NAMES, type KnownServices } from './services.js';

/* ML routing of POST /v1/query and /v1/upload (src/routing/model, routing-models/). */

export const routingEnv = z.object({
  /** A dedicated Inference Endpoint for `model validate`; default: the serverless Inference API (the token is HF_TOKEN). */
  HF_ENDPOINT_URL: httpUrl.optional(),
});

export const routingSchema = z
  .strictObject({
    /** Serve POST /v1/query and /v1/upload, whose service the routing model chooses. */
    enabled: z.boolean().default(true),
    /** The operators' folder (models/, active.json); default: routing-models/ of the installed gateway. */
    modelsDir: z.string().min(1).optional(),
    /** A model file to use instead of the active pointer of modelsDir. */
    model: z.string().min(1).optional(),
    /** A candidate model run beside the active one on live traffic (shadow mode), off the hot path. */
    shadowModel: z.string().min(1).optional(),
    /** The services the model chooses among; a model's labels must be exactly these. Default: the five. */
    services: z.array(serviceNameSchema).min(2).optional(),
    /** Below this probability the model's choice is not trusted (see `ambiguous`). */
    confidenceThreshold: z.number().min(0).max(1).default(0.5),
    defaultService: serviceNameSchema.default('knowledge'),
    /** Below the threshold: forward to defaultService, or answer 300 GW_ROUTING_AMBIGUOUS with the candidates. */
    ambiguous: z
      .union([z.literal('default'), z.literal('300'), z.literal(300)])
      .transform((v): 'default' | '300' => (v === 'default' ? 'default' : '300'))
      .default('default'),
    /** Follow active.json: switch models at runtime when `model promote`/`rollback` changes it. */
    watchPointer: z.boolean().default(true),
    /** Requests waiting for the shadow model; past it, requests are not shadowed. */
    shadowQueueSize: z.number().int().min(1).max(100_000).default(1024),
    /** Zero-shot-classification model of `model validate` (HF_TOKEN / HF_ENDPOINT_URL from the environment). */
    validatorModel: z.string().min(1).default('facebook/bart-large-mnli'),
  })
  .prefault({});
type RoutingFile = z.output<typeof routingSchema>;

/**
 * The model chooses among configured services, each once, the default among them. `c` is
 * rooted at the file's `routing`; `known` holds every service, canaries of splits included.
 */
export function checkRouting(c: Checker, routing: RoutingFile, known: KnownServices | undefined): void {
  if (!c.valid('services')) return;
  const routed = routing.services ?? [...SERVICE_NAMES];
  if (known !== undefined) {
    routing.services?.forEach((name, i) => {
      const unknown = known.unknown(name);
      if (unknown !== undefined) c.problem(['services', i], unknown);
    });
  }
  if (new Set(routed).size !== routed.length) c.problem(['services'], 'a service is listed twice');
  if (c.valid('defaultService') && !routed.includes(routing.defaultService)) {
    c.problem(['defaultService'], `"${routing.defaultService}" is not one of routing.services (${routed.join(', ')})`);
  }
}

export function resolveRouting(env: z.output<typeof routingEnv>, file: RoutingFile) {
  const { validatorModel, services, ...rest } = file;
  return {
    ...rest,
    /** The services the model chooses among (its labels must be exactly these). */
    services: services ?? [...SERVICE_NAMES],
    /** The HuggingFace zero-shot validator (`model validate`); the token is in `secrets.hfToken`. */
    validator: { model: validatorModel, ...(env.HF_ENDPOINT_URL !== undefined ? { endpointUrl: env.HF_ENDPOINT_URL } : {}) },
  };
}
