import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { RouteConfig } from '../config/index.js';
import { GatewayError } from '../errors.js';
import type { GatewayMetrics } from '../metrics/registry.js';
import '../routing/route-table.js';
import { forwardsBody } from '../proxy/body.js';
import { bodyType, inspectBufferedBody, inspectJsonBody, looksBinary, readBody } from './body-inspection.js';
import { InspectionBudget, inspectRequest, type Finding, type InspectionLimits, type InspectOptions } from './detect/index.js';
import { multipartBoundary, MultipartInspector, type UploadFacts } from './multipart.js';
import { IGNORE_THREATS, type ThreatSink } from './threat-signals.js';
import { routeOf } from '../request-route.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The JSON body (declared JSON, or a typeless body that parses), parsed once by validation, for later stages (routing model). */
    jsonBody?: unknown;
    /** The file and small fields of a multipart body, as its inspector saw them (routing model). */
    multipartFacts?: UploadFacts;
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
 * the body after authentication, in every format an upstream may parse (body-inspection.ts,
 * multipart.ts). A finding is a 403 naming the rule class, never the value, and a threat
 * signal for the client.
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
    // Past the inspection budget is a size problem, not a sign of attack.
    if (finding.rule !== 'input_too_large') threats.record(client, 'input_rejected', finding.rule);
    return rejection(finding);
  };

  // Synchronous: a callback hook, no promise per request.
  app.addHook('onRequest', (request, _reply, done) => {
    const route = routeOf(request).config.gatewayRoute;
    const options = route && byRoute.get(route);
    if (options === undefined || options.mode === 'off') return done();
    const url = request.url;
    const q = url.indexOf('?');
    // One budget for everything this request carries: target, headers and (later) its body.
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
    done();
  });

  const refuse = (request: FastifyRequest, finding: Finding): GatewayError => {
    request.log.warn({ rule: finding.rule, location: finding.location }, 'input rejected');
    return reject(request.ip, finding);
  };

  const inspectBody = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const route = routeOf(request).config.gatewayRoute;
    if (route === undefined) return;
    const options = byRoute.get(route);
    // The body's inspections draw on the budget the request's head started (limits.inspect*).
    const inspection =
      options !== undefined && options.mode !== 'off'
        ? { ...(options as InspectOptions & { mode: 'strict' | 'text' }), budget: request.inspectionBudget ?? new InspectionBudget(opts.inspection) }
        : undefined;
    // The limit of bodies the gateway holds to inspect: the route's JSON limit (limits.jsonBodyBytes or its own smaller one).
    const limit = routeOf(request).bodyLimit;
    const encoding = request.headers['content-encoding'];

    // A declared JSON body, buffered by the proxy's parser: parsed on every route, inspected where validation is on.
    const rawJson = request.rawJsonBody;
    if (rawJson !== undefined) {
      const result = inspectJsonBody(rawJson, encoding, limit, inspection);
      request.jsonBody = result.json?.value;
      if (result.finding !== null) throw refuse(request, result.finding);
      return;
    }
    if (inspection === undefined || !forwardsBody(request)) return;
    const type = bodyType(request.headers['content-type']);
    if (type.kind === 'binary') return;

    if (type.kind === 'multipart') {
      if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') {
        throw new GatewayError('GW_REQUEST_UNSUPPORTED_MEDIA_TYPE', 'The gateway cannot inspect a multipart body with a Content-Encoding');
      }
      const boundary = multipartBoundary(type.media!);
      if (boundary === null) throw new GatewayError('GW_REQUEST_INVALID', 'A multipart Content-Type needs a boundary of 1 to 70 allowed characters');
      const gate = new MultipartInspector({
        boundary,
        formData: type.media!.subtype === 'form-data',
        inspection,
        textBytes: limit,
        holdBytes: limit,
        reject: (finding) => refuse(request, finding),
      });
      const source = request.raw;
      const aborted = () => gate.destroy(new GatewayError('GW_REQUEST_ABORTED'));
      source.once('error', aborted);
      source.once('close', () => {
        if (!source.complete) aborted();
      });
      // Whatever is left of the body when the answer is out (refused, or answered before the upstream read it all) is read and dropped.
      reply.raw.once('finish', () => {
        if (!source.complete) {
          source.unpipe(gate);
          source.resume();
        }
      });
      source.pipe(gate);
      await gate.ready;
      request.inspectedBody = gate;
      request.multipartFacts = gate.facts;
      return;
    }

    // JSON that the proxy's parser did not read (a method Fastify parses no body for), typeless, text, form.
    const declared = Number(request.headers['content-length']);
    const sniff = type.kind === 'typeless' && encoding === undefined;
    if (!sniff && declared > limit) throw new GatewayError('GW_REQUEST_BODY_TOO_LARGE', `A body the gateway inspects may be at most ${limit} bytes`);
    // A typeless body whose first bytes are binary streams on uninspected, as any binary upload.
    const read = await readBody(request.raw, limit, sniff ? looksBinary : undefined);
    if (read === null) return;
    request.inspectedBody = read.body;
    if (read.binary) return;
    const result = type.kind === 'json' ? inspectJsonBody(read.body, encoding, limit, inspection) : inspectBufferedBody(read.body, type, encoding, limit, inspection);
    if (result.json !== undefined) request.jsonBody = result.json.value;
    if (result.finding !== null) throw refuse(request, result.finding);
  };

  // A callback hook: most requests carry no body (nothing to inspect or wait for) and pay no
  // promise; those with one go through inspectBody().
  app.addHook('preHandler', (request, reply, done) => {
    if (routeOf(request).config.gatewayRoute === undefined || (request.rawJsonBody === undefined && !forwardsBody(request))) return done();
    inspectBody(request, reply).then(() => done(), done);
  });
}

export default fp(validationPlugin, { name: 'gateway-validation', fastify: '5.x' });
