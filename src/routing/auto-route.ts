import type { FastifyReply, FastifyRequest } from 'fastify';
import '../auth/principal.js';
import { grants } from '../auth/scopes.js';
import type { GatewayConfig, HttpMethod, RouteConfig } from '../config/index.js';
import { GatewayError } from '../errors.js';
import type { GatewayMetrics } from '../metrics/registry.js';
import { countWords, type DecisionLog } from './decision-log.js';
import type { RoutingInput } from './model/features.js';
import type { RoutingModelManager } from './model/manager.js';
import type { RoutingModel } from './model/model.js';
import { isMultipartFormData, parseMultipartPrefix, peekBody, rawUploadFacts, type UploadFacts } from './upload-input.js';

/*
 * POST /v1/query and POST /v1/upload carry no service name: the routing model picks the
 * service per request. A caller with `write` scope may name it instead (X-Target-Service
 * header, or a `service` field in the JSON body or the upload form). Below the confidence
 * threshold the request goes to the default service, or is answered 300
 * GW_ROUTING_AMBIGUOUS with the candidates (routing.ambiguous). Every decision is counted in
 * gateway_routing_decisions{service,auto_detected} and shown in x-routed-to,
 * x-routing-confidence, x-routing-reason and x-routing-model.
 *
 * Routing only decides: the proxy owns the two routes like every other (src/proxy/plugin.ts)
 * and calls the decision as the routing step of its request path, which then applies the
 * chosen service's split, cache, backpressure, breaker, retries and fallback.
 */

export type RoutingDecision =
  | { readonly reason: 'model' | 'low-confidence'; readonly service: string; readonly confidence: number; readonly model: string; readonly predicted: string }
  | {
      readonly reason: 'ambiguous';
      readonly service: null;
      readonly confidence: number;
      readonly model: string;
      readonly predicted: string;
      readonly candidates: ReadonlyArray<{ readonly service: string; readonly probability: number }>;
    }
  | { readonly reason: 'override'; readonly service: string; readonly confidence: 1 };

export interface DecisionSettings {
  readonly confidenceThreshold: number;
  readonly defaultService: string;
  readonly ambiguous: 'default' | '300';
}

const MAX_LABELS = 64;
const CANDIDATES = 3;

/** The model part of the decision, as a plain object (testable without Fastify). */
export class AutoRouter {
  readonly #settings: DecisionSettings;
  readonly #isEnabled: (service: string) => boolean;
  readonly #out = new Float64Array(MAX_LABELS);
  readonly #masks = new WeakMap<RoutingModel, Uint8Array | null>();

  constructor(settings: DecisionSettings, isEnabled: (service: string) => boolean) {
    this.#settings = settings;
    this.#isEnabled = isEnabled;
  }

  /** 1 for labels whose service is switched off on this gateway; null when none is. */
  #mask(model: RoutingModel): Uint8Array | null {
    let mask = this.#masks.get(model);
    if (mask === undefined) {
      const m = Uint8Array.from(model.labels, (l) => (this.#isEnabled(l) ? 0 : 1));
      mask = m.some((x) => x === 1) ? m : null;
      this.#masks.set(model, mask);
    }
    return mask;
  }

  /** The probabilities of the last decide() with `model` (copied; call right after it). */
  lastProbabilities(model: RoutingModel): Record<string, number> {
    const out: Record<string, number> = {};
    for (let c = 0; c < model.labels.length; c++) out[model.labels[c]!] = Math.round(this.#out[c]! * 10_000) / 10_000;
    return out;
  }

  /** Decide with `model`; `onPredicted` sees the model's own top label (for shadow comparison). */
  decide(model: RoutingModel, input: RoutingInput, onPredicted?: (label: string) => void): RoutingDecision {
    const out = this.#out;
    const L = model.labels.length;
    let best = model.predictInto(input, out);
    const predicted = model.labels[best]!;
    onPredicted?.(predicted);
    const mask = this.#mask(model);
    if (mask !== null) {
      // Switched-off services cannot be chosen: renormalise over the others.
      let sum = 0;
      for (let c = 0; c < L; c++) {
        if (mask[c] === 1) out[c] = 0;
        sum += out[c]!;
      }
      best = -1;
      for (let c = 0; c < L; c++) {
        if (sum > 0) out[c]! /= sum;
        if (mask[c] === 0 && (best < 0 || out[c]! > out[best]!)) best = c;
      }
      if (best < 0) throw new GatewayError('GW_SERVICE_DISABLED', 'Every service the routing model chooses among is disabled on this gateway');
    }
    const confidence = out[best]!;
    const { confidenceThreshold, defaultService, ambiguous } = this.#settings;
    if (confidence >= confidenceThreshold) return { reason: 'model', service: model.labels[best]!, confidence, model: model.id, predicted };
    if (ambiguous === 'default') return { reason: 'low-confidence', service: defaultService, confidence, model: model.id, predicted };
    const order = Array.from({ length: L }, (_v, c) => c)
      .filter((c) => mask === null || mask[c] === 0)
      .sort((a, b) => out[b]! - out[a]!);
    return {
      reason: 'ambiguous',
      service: null,
      confidence,
      model: model.id,
      predicted,
      candidates: order.slice(0, CANDIDATES).map((c) => ({ service: model.labels[c]!, probability: Math.round(out[c]! * 10_000) / 10_000 })),
    };
  }
}

export interface AutoRouteDecisionOptions {
  readonly config: Pick<GatewayConfig, 'routing' | 'services'>;
  readonly manager: RoutingModelManager;
  readonly metrics: Pick<GatewayMetrics, 'routingDecisions' | 'routingConfidence'>;
  /** Recent decisions (analyze_routing, review_routing, the Memory recorder): one ring write per decision. */
  readonly decisionLog?: DecisionLog;
  /** Salted hash of a principal's subject, logged with the decision (only with per-principal usage on). */
  readonly principalHash?: (subject: string) => string;
}

/**
 * The routing step of an auto-routed request: the service that answers it, with the routing
 * headers set on the reply. Throws 300 GW_ROUTING_AMBIGUOUS, 403 (naming a service without
 * write scope) or 400 (an unknown service).
 */
export type Decide = (request: FastifyRequest, reply: FastifyReply) => Promise<string>;

/** Bytes of a multipart body read to find the file name, type and form fields. */
const UPLOAD_PEEK_BYTES = 16 * 1024;
const UPLOAD_PEEK_TIMEOUT_MS = 1000;
const TEXT_FIELDS = ['query', 'prompt', 'message'] as const;

/** The route-table entries of the auto-routed endpoints (their auth and validation policies). */
export function autoRoutes(): RouteConfig[] {
  const base = { service: 'auto', methods: ['POST'] as HttpMethod[], validation: 'strict' as const, textFields: [...TEXT_FIELDS], freeTextFields: [] };
  return [
    // Asking is reading: `read` is enough for the model's choice; naming the service needs `write`.
    { id: 'auto-query', prefix: '/v1/query', auth: { required: true, scope: 'read' }, ...base },
    { id: 'auto-upload', prefix: '/v1/upload', auth: { required: true, scope: 'write' }, ...base },
  ];
}

function stringField(body: unknown, key: string): string | undefined {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return undefined;
  const v = (body as Record<string, unknown>)[key];
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

/** What the model sees of an upload: JSON description, multipart prefix, or raw-upload headers. */
async function uploadInput(request: FastifyRequest, fieldNames: ReadonlySet<string>): Promise<{ input: RoutingInput; fields: Readonly<Record<string, string>> }> {
  const contentType = request.headers['content-type'];
  const json = request.jsonBody;
  let facts: UploadFacts;
  if (json !== undefined) {
    const described = (json as { file?: unknown } | null)?.file;
    const name = stringField(described, 'name') ?? stringField(json, 'filename') ?? stringField(json, 'file_name');
    const type = stringField(described, 'type') ?? stringField(json, 'content_type') ?? stringField(json, 'mime_type');
    facts = { ...(name !== undefined || type !== undefined ? { file: { ...(name ? { name } : {}), ...(type ? { type } : {}) } } : {}), fields: {} };
  } else {
    const inspected = request.multipartFacts;
    if (inspected !== undefined) {
      // Input validation is reading the body already (src/security/multipart.ts): its parse, not a second look.
      const fields = Object.fromEntries(Object.entries(inspected.fields).filter(([name]) => fieldNames.has(name)));
      facts = { ...(inspected.file !== undefined ? { file: inspected.file } : {}), fields };
    } else if (contentType !== undefined && isMultipartFormData(contentType)) {
      const hasBody = request.headers['transfer-encoding'] !== undefined || (request.headers['content-length'] ?? '0') !== '0';
      facts = hasBody ? await parseMultipartPrefix(await peekBody(request.raw, UPLOAD_PEEK_BYTES, UPLOAD_PEEK_TIMEOUT_MS), contentType, fieldNames) : { fields: {} };
    } else {
      facts = rawUploadFacts(request.headers, request.url);
    }
  }
  return {
    input: { method: request.method, path: request.url, contentType, headers: request.headers, body: json ?? facts.fields, file: facts.file },
    fields: facts.fields,
  };
}

/** The word count of the first text field of a /v1/query body, for the decision log. */
function wordsOf(body: unknown): { words?: number } {
  for (const f of TEXT_FIELDS) {
    const text = stringField(body, f);
    if (text !== undefined) return { words: countWords(text) };
  }
  return {};
}

function formatConfidence(c: number): string {
  return c.toFixed(4);
}

/**
 * The routing decisions of the auto-routed endpoints: the model's choice, or the service a
 * write-scoped caller names. One per gateway; `for(route)` gives each route its routing step.
 */
export class AutoRouteDecider {
  readonly #config: AutoRouteDecisionOptions['config'];
  readonly #manager: RoutingModelManager;
  readonly #metrics: AutoRouteDecisionOptions['metrics'];
  readonly #router: AutoRouter;
  readonly #log: DecisionLog | undefined;
  readonly #principalHash: ((subject: string) => string) | undefined;
  readonly #fieldNames = new Set<string>([...TEXT_FIELDS, 'service']);

  constructor(opts: AutoRouteDecisionOptions) {
    this.#config = opts.config;
    this.#manager = opts.manager;
    this.#metrics = opts.metrics;
    this.#router = new AutoRouter(opts.config.routing, (s) => opts.config.services[s]?.enabled === true);
    this.#log = opts.decisionLog;
    this.#principalHash = opts.principalHash;
  }

  /** The routing step of `route` (one of autoRoutes()). */
  for(route: RouteConfig): Decide {
    const isUpload = route.id === 'auto-upload';
    return (request, reply) => this.#decide(request, reply, isUpload);
  }

  async #decide(request: FastifyRequest, reply: FastifyReply, isUpload: boolean): Promise<string> {
    const services = this.#config.services;
    let input: RoutingInput;
    let formFields: Readonly<Record<string, string>> = {};
    if (isUpload) ({ input, fields: formFields } = await uploadInput(request, this.#fieldNames));
    else input = { method: request.method, path: request.url, contentType: request.headers['content-type'], headers: request.headers, body: request.jsonBody };

    const header = request.headers['x-target-service'];
    const named = (typeof header === 'string' && header.trim() !== '' ? header : undefined) ?? stringField(request.jsonBody, 'service') ?? formFields.service;
    let decision: RoutingDecision;
    let probabilities: Record<string, number> | undefined;
    if (named !== undefined) {
      const principal = request.principal;
      if (principal === null || !grants(principal.scopes, 'write')) {
        throw new GatewayError('GW_AUTH_INSUFFICIENT_SCOPE', 'Naming the service (X-Target-Service or "service") needs the write scope', {
          headers: { 'www-authenticate': 'Bearer error="insufficient_scope", scope="write"' },
        });
      }
      const service = named.trim().toLowerCase();
      if (!(service in services)) {
        throw new GatewayError('GW_ROUTING_UNKNOWN_SERVICE', `No service "${service.slice(0, 64)}" (known: ${Object.keys(services).join(', ')})`);
      }
      decision = { reason: 'override', service, confidence: 1 };
    } else {
      const manager = this.#manager;
      const model = manager.active;
      decision = this.#router.decide(model, input, (label) => manager.shadowCompare(input, label));
      if (this.#log !== undefined) probabilities = this.#router.lastProbabilities(model);
    }
    if (this.#log !== undefined) {
      const subject = request.principal?.subject;
      this.#log.add({
        requestId: request.id,
        at: Date.now(),
        service: decision.service,
        reason: decision.reason,
        confidence: decision.confidence,
        path: isUpload ? '/v1/upload' : '/v1/query',
        ...(!isUpload ? wordsOf(request.jsonBody) : {}),
        ...(decision.reason !== 'override' ? { model: decision.model, predicted: decision.predicted } : {}),
        ...(probabilities !== undefined ? { probabilities } : {}),
        ...(subject !== undefined ? { subject } : {}),
        ...(this.#principalHash !== undefined && subject !== undefined ? { principal: this.#principalHash(subject) } : {}),
      });
    }

    this.#metrics.routingDecisions.inc({ service: decision.service ?? 'none', auto_detected: decision.reason === 'model' ? 'true' : 'false' });
    if (decision.reason === 'model') this.#metrics.routingConfidence.observe({ service: decision.service }, decision.confidence);
    const headers: Record<string, string> = {
      'x-routing-confidence': formatConfidence(decision.confidence),
      'x-routing-reason': decision.reason,
      ...(decision.reason !== 'override' ? { 'x-routing-model': decision.model } : {}),
    };
    if (decision.reason === 'ambiguous') {
      const list = decision.candidates.map((c) => `${c.service} (${c.probability.toFixed(2)})`).join(', ');
      throw new GatewayError('GW_ROUTING_AMBIGUOUS', `Could not tell which service should answer; candidates: ${list}. Resend with X-Target-Service (write scope) or rephrase.`, {
        headers: { ...headers, 'x-routing-candidates': decision.candidates.map((c) => `${c.service};p=${c.probability}`).join(', ') },
      });
    }
    reply.header('x-routed-to', decision.service).headers(headers);
    return decision.service;
  }
}
