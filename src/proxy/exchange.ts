import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { errors as undiciErrors, type Pool } from 'undici';
import type { RouteConfig } from '../config/index.js';
import { GatewayError } from '../errors.js';
import type { GatewayMetrics } from '../metrics/registry.js';
import { FailedResponse, isBreakerOpen, maySendAgain, Uncounted, type Resilience, type RetryPolicy } from '../resilience/index.js';
import type { Side } from '../routing/traffic-split.js';
import { continueTrace, forwardingView, rewriteLocations, upstreamRequestHeaders } from './headers.js';
import { identityHeaders, type IdentityAssertions } from './identity.js';
import { BUFFERED_ANSWER_BYTES, CallAbort, discardBody, upstreamCall, type CallOptions, type UpstreamResponse } from './upstream-call.js';
import type { Upstream } from './upstreams.js';

/*
 * One upstream exchange: one request to one upstream host, with the gateway's headers, the
 * body taken once, one deadline, and the circuit breaker and retries around each attempt.
 * It returns the upstream's response (headers in; the body whole when small, else still
 * streaming: upstream-call.ts) or an UpstreamFailure
 * saying why there is none; it never answers the client, and never calls anything back:
 * the request path (request-path.ts) decides what a failure becomes (a fallback, an error).
 *
 * Written on undici's dispatch API (upstream-call.ts) rather than through @fastify/reply-from:
 * the request path has to act between "upstream answered with headers" and "the body starts
 * streaming to the client", which reply-from only exposes through callbacks.
 */

/** What one request sends upstream: the same for its exchange and a `service:<other>` fallback's. */
export interface Outgoing {
  /** The route the request matched: path mapping (rewritePrefix) and forwarding options. */
  readonly route: RouteConfig;
  /** Taken once (src/proxy/body.ts): a buffer may go out again; a stream only once. */
  readonly body: Buffer | Readable | null;
  /** The side of a traffic split it went to (the `side` label of gateway_service_requests). */
  readonly side: Side;
  /**
   * Milliseconds spent waiting on upstreams so far, every attempt (and a fallback's) added:
   * what gateway_proxy_overhead_seconds takes away from the request's time.
   */
  upstreamMs: number;
}

/** What an exchange needs of the gateway, created once with the proxy plugin. */
export interface ExchangeDeps {
  readonly metrics: GatewayMetrics;
  /** Breakers and retries (src/resilience). */
  readonly resilience: Resilience;
  /** Signs the identity passed upstream (x-gateway-identity); without it only the plain identity headers are sent. */
  readonly identity?: IdentityAssertions;
}

/** Failures a fallback answers for (src/resilience/fallback.ts). */
const FALLS_BACK = new Set(['circuit-open', 'unreachable', 'timeout']);

/** Why an exchange brought back no response, as the request path needs it. */
export class UpstreamFailure {
  constructor(
    /** What the client gets when nothing else answers. */
    readonly error: GatewayError,
    /** circuit-open: refused by the breaker; request: not the upstream's fault (e.g. the body went over its limit). */
    readonly reason: 'circuit-open' | 'unreachable' | 'timeout' | 'aborted' | 'error' | 'request',
    /** The request may still go to another service: nothing of it went out, or it may be sent again. */
    readonly mayResend: boolean,
  ) {}

  /** A breaker that refused, a host that could not be reached, a deadline: what fallbacks are for. */
  get fallsBack(): boolean {
    return FALLS_BACK.has(this.reason);
  }
}

/** The path to request upstream: optional prefix rewrite, then the upstream URL's base path. */
export function upstreamPath(rawUrl: string, route: Pick<RouteConfig, 'prefix' | 'rewritePrefix'>, basePath: string): string {
  let path = rawUrl;
  if (route.rewritePrefix !== undefined) {
    const rest = rawUrl.slice(route.prefix === '/' ? 0 : route.prefix.length);
    const base = route.rewritePrefix.endsWith('/') ? route.rewritePrefix.slice(0, -1) : route.rewritePrefix;
    path = rest === '' || rest.startsWith('?') ? `${base || '/'}${rest}` : `${base}${rest}`;
  }
  return basePath === '' ? path : `${basePath}${path}`;
}

/** `path` without `base` in front ('' when equal); undefined when it is not under it. */
function below(path: string, base: string): string | undefined {
  if (base === '') return path;
  if (path === base) return '';
  return path.startsWith(`${base}/`) ? path.slice(base.length) : undefined;
}

/**
 * The reverse of upstreamPath: the gateway path that an upstream path (with query or
 * fragment) stands for; undefined when it lies outside what the route maps.
 */
export function gatewayPath(path: string, route: Pick<RouteConfig, 'prefix' | 'rewritePrefix'>, basePath: string): string | undefined {
  const cut = path.search(/[?#]/);
  const pathname = cut === -1 ? path : path.slice(0, cut);
  const tail = cut === -1 ? '' : path.slice(cut);
  let rest = below(pathname, basePath);
  if (rest === undefined) return undefined;
  if (route.rewritePrefix !== undefined) {
    const base = route.rewritePrefix.endsWith('/') ? route.rewritePrefix.slice(0, -1) : route.rewritePrefix;
    rest = below(rest === '' ? '/' : rest, base);
    if (rest === undefined) return undefined;
    if (rest === '/' && base === '') rest = '';
    rest = `${route.prefix === '/' ? '' : route.prefix}${rest}`;
  }
  return `${rest === '' ? '/' : rest}${tail}`;
}

/** Abort reason of an upstream call that ran out of time. */
const UPSTREAM_TIMEOUT = new undiciErrors.HeadersTimeoutError('upstream did not answer in time');

/**
 * After a failed attempt: when the policy allows another one (idempotent, body resendable,
 * budget left), count it, wait the backoff and say so. Runs only on failures.
 */
async function retryAfterBackoff(
  request: FastifyRequest,
  policy: RetryPolicy,
  body: Buffer | Readable | null,
  attempt: number,
  signal: CallAbort,
  metrics: GatewayMetrics,
  service: string,
  reason: string | number,
  discard?: () => void,
): Promise<boolean> {
  if (signal.isAborted) return false;
  const decision = policy.decide(request.method, request.headers, body, attempt);
  if (decision === 'no') return false;
  metrics.upstreamRetries.inc({ service, result: decision === 'retry' ? 'retried' : 'budget_exhausted' });
  if (decision !== 'retry') return false;
  discard?.();
  const delayMs = policy.delayMs(attempt);
  request.log.info({ service, attempt, reason, delayMs }, 'retrying upstream request');
  await sleep(delayMs);
  // Aborted meanwhile (client gone, deadline passed): the next attempt fails at once with that reason.
  return true;
}

/** One attempt's request, as sendCounted takes it through the breaker. */
interface Call {
  readonly options: CallOptions;
  readonly abort: CallAbort;
  /** Read the answer whole up to this many bytes (upstream-call.ts). */
  readonly wholeUpTo: number;
}

/**
 * One upstream call as the circuit breaker sees it: a 5xx answer is thrown as FailedResponse
 * (a failure, still forwarded), timeouts and connection errors are failures, and what is not
 * the upstream's fault (client gone, body over its limit) is thrown as Uncounted.
 */
async function sendCounted(pool: Pool, call: Call): Promise<UpstreamResponse> {
  let res: UpstreamResponse;
  const signal = call.abort;
  try {
    res = await upstreamCall(pool, call.options, signal, call.wholeUpTo);
  } catch (err) {
    if (signal.reason === UPSTREAM_TIMEOUT) throw UPSTREAM_TIMEOUT;
    if (err instanceof GatewayError || signal.isAborted) throw new Uncounted(err);
    throw err;
  }
  if (res.statusCode >= 500) throw new FailedResponse(res);
  return res;
}

/** Map an undici failure to the catalogue: timeouts are 504, anything reaching the host 502. */
export function classifyUpstreamError(err: unknown): { error: GatewayError; label: 'timeout' | 'aborted' | 'unreachable' | 'error' } {
  if (err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.ConnectTimeoutError) {
    return { error: new GatewayError('GW_UPSTREAM_TIMEOUT', undefined, { cause: err }), label: 'timeout' };
  }
  if (err instanceof undiciErrors.RequestAbortedError || (err as Error | undefined)?.name === 'AbortError') {
    return { error: new GatewayError('GW_REQUEST_ABORTED', undefined, { cause: err }), label: 'aborted' };
  }
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (
    code === 'ECONNREFUSED' ||
    code === 'ECONNRESET' ||
    code === 'EHOSTUNREACH' ||
    code === 'ENETUNREACH' ||
    code === 'ENOTFOUND' ||
    code === 'EAI_AGAIN' ||
    code === 'EPIPE' ||
    err instanceof undiciErrors.SocketError
  ) {
    return { error: new GatewayError('GW_UPSTREAM_UNAVAILABLE', undefined, { cause: err }), label: 'unreachable' };
  }
  return { error: new GatewayError('GW_UPSTREAM_BAD_RESPONSE', undefined, { cause: err }), label: 'error' };
}

/**
 * Send the request to `upstream` and wait for its response headers: the gateway's request
 * headers (identity for this host's audience, trace, forwarding view), `timeoutMs` for all
 * attempts together, each attempt through the host's circuit breaker, retries when the
 * service's policy allows them. The response's body is left for the caller to stream.
 */
export async function exchange(
  request: FastifyRequest,
  reply: FastifyReply,
  outgoing: Outgoing,
  upstream: Upstream,
  timeoutMs: number,
  deps: ExchangeDeps,
): Promise<UpstreamResponse | UpstreamFailure> {
  const { metrics, resilience } = deps;
  const { route, body, side } = outgoing;
  const service = upstream.service;
  const trace = continueTrace(request.headers.traceparent);
  const principal = request.principal;
  const signed = deps.identity !== undefined ? deps.identity.headers(principal, upstream.audience) : principal != null ? identityHeaders(principal) : undefined;
  // Awaited only when an assertion had to be signed: no microtask hop per request otherwise.
  const identity = signed instanceof Promise ? await signed : signed;
  const headers = upstreamRequestHeaders(request.headers, {
    // The gateway's view (trustProxy): X-Forwarded-For is the trusted chain ending with the
    // peer that connected; nothing the client claims beyond it is passed on.
    ...forwardingView(request),
    requestId: request.id,
    traceparent: trace.traceparent,
    prefix: route.rewritePrefix !== undefined && route.prefix !== '/' ? route.prefix : undefined,
    forwardAuthorization: route.forwardAuthorization === true,
    identity,
  });

  // Cancel the upstream call when the client goes away before the response is complete,
  // or when the upstream has not answered within the timeout. Our own timer, because
  // undici's headersTimeout runs on a coarse clock (a 0.5 s timeout fired after ~0.9 s).
  const abort = new CallAbort();
  const onClose = () => {
    if (!reply.raw.writableFinished) abort.abort();
  };
  reply.raw.once('close', onClose);
  const timer = setTimeout(() => abort.abort(UPSTREAM_TIMEOUT), timeoutMs);

  // Retries (src/resilience/retry.ts) resend the same request while nothing has gone to the
  // client; the timer above is one deadline for all attempts together.
  const policy = resilience.retryPolicy(service);
  policy?.budget.recordRequest();
  // Circuit breaker of this host (src/resilience/breaker.ts): each attempt goes through it.
  const breaker = resilience.breakerFor(upstream);
  const requestOptions: CallOptions = {
    path: upstreamPath(request.url, route, upstream.basePath),
    method: request.method as 'GET',
    headers,
    body,
    headersTimeout: timeoutMs + 1000,
    bodyTimeout: timeoutMs,
  };
  // A small answer to a GET is read whole and sent in one write (upstream-call.ts).
  const call: Call = { options: requestOptions, abort, wholeUpTo: request.method === 'GET' ? BUFFERED_ANSWER_BYTES : 0 };
  let attempt = 0;
  let response: UpstreamResponse | undefined;
  // Outstanding until the headers are in (or it failed): what load balancing compares.
  upstream.outstanding += 1;
  try {
    for (;;) {
      attempt += 1;
      const started = performance.now();
      response = undefined;
      let thrown: unknown;
      try {
        response =
          breaker === undefined
            ? await upstreamCall(upstream.pool, call.options, call.abort, call.wholeUpTo)
            : await breaker.fire(sendCounted, upstream.pool, call);
      } catch (err) {
        if (err instanceof FailedResponse) response = err.response as UpstreamResponse; // a 5xx, counted as a failure
        else thrown = err instanceof Uncounted ? err.error : err;
      }
      const waitedMs = performance.now() - started;
      outgoing.upstreamMs += waitedMs;
      if (response === undefined) {
        // e.g. the body went over its limit while streaming: the request's fault, not the upstream's.
        if (thrown instanceof GatewayError) return new UpstreamFailure(thrown, 'request', false);
        if (breaker !== undefined && isBreakerOpen(thrown)) {
          // Open: refused at once without an upstream call.
          metrics.serviceRequests.inc({ service, status: 'circuit_open', side });
          // Nothing of this request went out yet on a first attempt; after retries, the body was resendable.
          return new UpstreamFailure(breaker.unavailable(), 'circuit-open', attempt === 1 || body === null || Buffer.isBuffer(body));
        }
        const { error, label } = classifyUpstreamError(abort.reason === UPSTREAM_TIMEOUT ? UPSTREAM_TIMEOUT : thrown);
        if (policy !== undefined && (label === 'unreachable' || label === 'error') && (await retryAfterBackoff(request, policy, body, attempt, abort, metrics, service, label))) {
          continue;
        }
        // Per request, its final outcome (attempts that were retried: gateway_upstream_retries_total).
        metrics.serviceRequests.inc({ service, status: label, side });
        if (label !== 'aborted') {
          request.log.warn({ service, upstream: upstream.origin, err: (thrown as Error).message, code: error.code, attempt }, 'upstream failed');
        }
        return new UpstreamFailure(error, label, maySendAgain(request.method, request.headers, body));
      }
      metrics.upstreamDuration.observe({ service }, waitedMs / 1000);
      if (policy !== undefined && response.statusCode >= 500 && policy.retriesStatus(response.statusCode)) {
        // Decided on the status line: the failed answer's body is dropped, never streamed on.
        const failed = response;
        if (await retryAfterBackoff(request, policy, body, attempt, abort, metrics, service, failed.statusCode, () => discardBody(failed))) {
          continue;
        }
      }
      metrics.serviceRequests.inc({ service, status: String(response.statusCode), side });
      break;
    }
  } finally {
    upstream.outstanding -= 1;
    clearTimeout(timer);
  }

  // The upstream's own address in Location / Content-Location becomes the gateway's path.
  rewriteLocations(response.headers, upstream.origin, (p) => gatewayPath(p, route, upstream.basePath));
  if (!Buffer.isBuffer(response.body)) {
    response.body.once('error', (err) => {
      // The status line is already sent: all that is left is to cut the stream and say why.
      request.log.warn({ service, err: err.message }, 'upstream body failed mid-stream');
    });
  }
  return response;
}
