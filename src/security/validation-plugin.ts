import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { RouteConfig } from '../config/index.js';
import { GatewayError } from '../errors.js';
import type { GatewayMetrics } from '../metrics/registry.js';
import '../server/route-config.js';
import { InspectionBudget, inspectRequest, type Finding, type InspectionLimits, type InspectOptions } from './detect/index.js';
import { IGNORE_THREATS, type ThreatSink } from './threat-signals.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The JSON body, parsed once by validation, for later stages (routing model). */
    jsonBody?: unknown;
    /** What this request may still have inspected (limits.inspect*): shared by every inspection of it. */
    inspectionBudget?: InspectionBudget;
  }
}

export interface ValidationPluginOptions {
  readonly routes: readonly RouteConfig[];
  readonly metrics: GatewayMetrics;
  readonly threats?: ThreatSink;
  /** limits.inspectValueBytes / inspectRequestBytes; default: the detectors' defaults. */
  readonly inspection?: InspectionLimits;
}

/** Field names go into the error message only when they cannot carry a payload. */
const SAFE_FIELD = /^[A-Za-z0-9_.[\]-]{1,64}$/;

function rejection(finding: Finding): GatewayError {
  if (finding.rule === 'input_too_large') return new GatewayError('GW_SECURITY_INPUT_TOO_LARGE', `The request ${finding.location} has more text than the gateway inspects`);
  const where = finding.field !== undefined && SAFE_FIELD.test(finding.field) ? `${finding.location} (${finding.field})` : finding.location;
  return new GatewayError('GW_SECURITY_INPUT_REJECTED', `Rejected by the ${finding.rule} rule in the request ${where}`);
}

/**
 * Input validation of proxied requests: path, query and user-data headers as soon as the
 * request arrives (before authentication, so scanners are seen even without credentials),
 * the JSON body once it is read. A finding is a 403 naming the rule class, never the value,
 * and a threat signal for the client.
 */
async function validationPlugin(app: FastifyInstance, opts: ValidationPluginOptions): Promise<void> {
  const threats = opts.threats ?? IGNORE_THREATS;
  const { metrics } = opts;
  // Per-route options built once, not per request.
  const byRoute = new Map<RouteConfig, InspectOptions>(
    opts.routes.map((r) => [r, { mode: r.validation, textFields: new Set(r.textFields), freeTextFields: new Set(r.freeTextFields) }]),
  );

  const reject = (client: string, finding: Finding): GatewayError => {
    metrics.inputRejections.inc({ rule: finding.rule, location: finding.location });
    if (finding.rule !== 'input_too_large') threats.record(client, 'input_rejected', finding.rule);
    return rejection(finding);
  };

  app.addHook('onRequest', async (request) => {
    const route = request.routeOptions.config.gatewayRoute;
    const options = route && byRoute.get(route);
    if (options === undefined || options.mode === 'off') return;
    const url = request.url;
    const q = url.indexOf('?');
    request.inspectionBudget = new InspectionBudget(opts.inspection);
    const finding = inspectRequest(
      { path: q < 0 ? url : url.slice(0, q), query: q < 0 ? '' : url.slice(q + 1), headers: request.headers },
      options,
      request.inspectionBudget,
    );
    if (finding !== null) {
      request.log.warn({ rule: finding.rule, location: finding.location }, 'input rejected');
      throw reject(request.ip, finding);
    }
  });

  app.addHook('preHandler', async (request) => {
    const raw = request.rawJsonBody;
    if (raw === undefined) return;
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      throw new GatewayError('GW_REQUEST_INVALID', 'The body is declared as JSON but does not parse');
    }
    request.jsonBody = body;
    const route = request.routeOptions.config.gatewayRoute;
    const options = route && byRoute.get(route);
    if (options === undefined || options.mode === 'off') return;
    const finding = inspectRequest({ path: '/', query: '', headers: {}, body }, options, request.inspectionBudget ?? new InspectionBudget(opts.inspection));
    if (finding !== null) {
      request.log.warn({ rule: finding.rule, location: finding.location }, 'input rejected');
      throw reject(request.ip, finding);
    }
  });
}

export default fp(validationPlugin, { name: 'gateway-validation', fastify: '5.x' });
