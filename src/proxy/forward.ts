import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { errors as undiciErrors, type Dispatcher, type Pool } from 'undici';
import type { RouteConfig } from '../config/index.js';
import { GatewayError } from '../errors.js';
import type { GatewayMetrics } from '../metrics/registry.js';
import { FailedResponse, isBreakerOpen, maySendAgain, Uncounted, type Fallback, type Resilience, type RetryPolicy } from '../resilience/index.js';
import { upstreamBody } from './body.js';
import { clientResponseHeaders, continueTrace, forwardingView, rewriteLocations, upstreamRequestHeaders } from './headers.js';
import { identityHeaders, type IdentityAssertions } from './identity.js';
import { assertForwardable } from './request-target.js';
import type { Upstream } from './upstreams.js';

/*
 * Forwarding is written on undici directly rather than through @fastify/reply-from: the
 * resilience stages (breakers, retry budget, fallbacks, response cache) need to act between
 * "upstream answered with headers" and "the body starts streaming to the client", which
 * reply-from only exposes through callbacks. undici does the HTTP work; this file only
 * wires headers, bodies, timeouts and error mapping.
 */

export interface ForwardOptions {
  readonly route: RouteConfig;
  readonly upstream: Upstream;
  readonly timeoutMs: number;
  readonly bodyLimitBytes: number;
  readonly metrics: GatewayMetrics;
  /** Backpressure (503 GW_GATEWAY_OVERLOADED when the service has no free slot) and retries. */
  readonly resilience?: Resilience;
  /** Set when this call is a `service:<other>` fallback: the body already taken, and no further fallback. */
  readonly fallbackOf?: { readonly body: Buffer | Readable | null };
  /** Answers from the response cache's stale entry (`stale-cache` fallback); undefined when there is none. */
  readonly stale?: (reply: FastifyReply) => Promise<FastifyReply | undefined>;
  /** The side of a traffic split this request went to (the `side` label of gateway_service_requests); default stable. */
  readonly side?: 'stable' | 'canary';
  /** Signs the identity passed upstream (x-gateway-identity); without it only the plain identity headers are sent. */
  readonly identity?: IdentityAssertions;
  /** Sends the upstream answer instead of the plain pass-through (the response cache, src/cache); not used by fallbacks. */
  readonly respond?: (reply: FastifyReply, response: Dispatcher.ResponseData) => Promise<FastifyReply>;
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

function ignore(): void {}

const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

/** The error as answered after a fallback was tried: it says which fallback answered. */
function labelled(err: unknown, label: string): unknown {
  if (!(err instanceof GatewayError)) return err;
  return new GatewayError(err.code, err.message, { cause: err.cause, headers: { ...err.headers, 'x-gateway-fallback': label } });
}

/**
 * Answer with the service's fallback instead of `error` (src/resilience/fallback.ts): the
 * static body, or the request sent to the other service when it may go out (again); when
 * it may not, `error` itself.
 */
async function answerWithFallback(
  request: FastifyRequest,
  reply: FastifyReply,
  options: ForwardOptions,
  fallback: Fallback,
  body: Buffer | Readable | null,
  error: GatewayError,
  maySend: boolean,
): Promise<FastifyReply> {
  if (fallback.type === 'stale-cache') {
    const served = await options.stale?.(reply);
    if (served === undefined) throw error;
    return served;
  }
  if (fallback.type === 'static') {
    return reply.code(fallback.status).header('content-type', JSON_CONTENT_TYPE).header('x-gateway-fallback', 'static').send(fallback.body);
  }
  const target = maySend ? options.resilience?.fallbackUpstream(fallback.service) : undefined;
  if (target === undefined) throw error;
  reply.header('x-gateway-fallback', fallback.label);
  try {
    return await forward(request, reply, { ...options, upstream: target, timeoutMs: fallback.timeoutMs, fallbackOf: { body } });
  } catch (err) {
    throw labelled(err, fallback.label);
  }
}

/**
 * After a failed attempt: when the policy allows another one (idempotent, body resendable,
 * budget left), count it, wait the backoff and say so. Runs only on failures.
 */
async function retryAfterBackoff(
  request: FastifyRequest,
  policy: RetryPolicy,
  body: Buffer | Readable | null,
  attempt: number,
  signal: AbortSignal,
  metrics: GatewayMetrics,
  service: string,
  reason: string | number,
  discard?: () => void,
): Promise<boolean> {
  if (signal.aborted) return false;
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

/**
 * One upstream call as the circuit breaker sees it: a 5xx answer is thrown as FailedResponse
 * (a failure, still forwarded), timeouts and connection errors are failures, and what is not
 * the upstream's fault (client gone, body over its limit) is thrown as Uncounted.
 */
async function sendCounted(pool: Pool, opts: Dispatcher.RequestOptions): Promise<Dispatcher.ResponseData> {
  let res: Dispatcher.ResponseData;
  try {
    res = await pool.request(opts);
  } catch (err) {
    const signal = opts.signal as AbortSignal;
    if (signal.reason === UPSTREAM_TIMEOUT) throw UPSTREAM_TIMEOUT;
    if (err instanceof GatewayError || signal.aborted) throw new Uncounted(err);
    throw err;
  }
  if (res.statusCode >= 500) throw new FailedResponse(res);
  return res;
}

/** Map an undici failure to the catalogue: timeouts are 504, anything reaching the host 502. */
export function classifyUpstreamError(err: unknown): { error: GatewayError; label: string } {
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

export async function forward(request: FastifyRequest, reply: FastifyReply, options: ForwardOptions): Promise<FastifyReply> {
  // request.url is the canonical target (src/proxy/request-target.ts); a refused one never goes out.
  assertForwardable(request);
  const { upstream, metrics, timeoutMs } = options;
  const side = options.side ?? 'stable';
  // Before anything is read or sent upstream: a shed request costs no upstream work.
  // A fallback call already holds the first service's slot.
  if (options.fallbackOf === undefined) options.resilience?.limiter.acquire(upstream.service, reply.raw);
  const { route } = options;
  const trace = continueTrace(request.headers.traceparent);
  const principal = request.principal;
  const identity = options.identity !== undefined ? await options.identity.headers(principal, upstream.audience) : principal != null ? identityHeaders(principal) : undefined;
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
  const abort = new AbortController();
  const onClose = () => {
    if (!reply.raw.writableFinished) abort.abort();
  };
  reply.raw.once('close', onClose);
  const timer = setTimeout(() => abort.abort(UPSTREAM_TIMEOUT), timeoutMs);

  // Retries (src/resilience/retry.ts) resend the same request while nothing has gone to the
  // client; the timer above is one deadline for all attempts together.
  const policy = options.resilience?.retryPolicy(upstream.service);
  policy?.budget.recordRequest();
  const path = upstreamPath(request.url, route, upstream.basePath);
  const body = options.fallbackOf === undefined ? upstreamBody(request, options.bodyLimitBytes) : options.fallbackOf.body;
  // Circuit breaker of this host (src/resilience/breaker.ts): each attempt goes through it.
  const breaker = options.resilience?.breakerFor(upstream);
  const requestOptions: Dispatcher.RequestOptions = {
    path,
    method: request.method as 'GET',
    headers,
    body,
    signal: abort.signal,
    headersTimeout: timeoutMs + 1000,
    bodyTimeout: timeoutMs,
  };
  let attempt = 0;
  let started: number;
  let response: Dispatcher.ResponseData | undefined;
  // Outstanding until the headers are in (or it failed): what load balancing compares.
  upstream.outstanding += 1;
  try {
    for (;;) {
      attempt += 1;
      started = performance.now();
      response = undefined;
      let failure: unknown;
      try {
        response = breaker === undefined ? await upstream.pool.request(requestOptions) : await breaker.fire(sendCounted, upstream.pool, requestOptions);
      } catch (err) {
        if (err instanceof FailedResponse) response = err.response as Dispatcher.ResponseData; // a 5xx, counted as a failure
        else failure = err instanceof Uncounted ? err.error : err;
      }
      if (response === undefined) {
        const err = failure;
        if (err instanceof GatewayError) throw err; // e.g. the body went over its limit while streaming
        if (breaker !== undefined && isBreakerOpen(err)) {
          // Open: answered at once without an upstream call, by the service's fallback.
          metrics.serviceRequests.inc({ service: upstream.service, status: 'circuit_open', side });
          const fallback = options.fallbackOf === undefined ? options.resilience?.fallbackFor(upstream.service) : undefined;
          if (fallback === undefined) throw breaker.unavailable();
          // Nothing of this request went out yet on a first attempt; after retries, the body was resendable.
          return await answerWithFallback(request, reply, options, fallback, body, breaker.unavailable(), attempt === 1 || body === null || Buffer.isBuffer(body));
        }
        const { error, label } = classifyUpstreamError(abort.signal.reason === UPSTREAM_TIMEOUT ? UPSTREAM_TIMEOUT : err);
        if (policy !== undefined && (label === 'unreachable' || label === 'error') && (await retryAfterBackoff(request, policy, body, attempt, abort.signal, metrics, upstream.service, label))) {
          continue;
        }
        // Per request, its final outcome (attempts that were retried: gateway_upstream_retries_total).
        metrics.serviceRequests.inc({ service: upstream.service, status: label, side });
        if (label !== 'aborted') {
          request.log.warn({ service: upstream.service, upstream: upstream.origin, err: (err as Error).message, code: error.code, attempt }, 'upstream failed');
        }
        if ((label === 'unreachable' || label === 'timeout') && options.fallbackOf === undefined) {
          const fallback = options.resilience?.fallbackFor(upstream.service);
          if (fallback !== undefined) {
            return await answerWithFallback(request, reply, options, fallback, body, error, maySendAgain(request.method, request.headers, body));
          }
        }
        throw error;
      }
      metrics.upstreamDuration.observe({ service: upstream.service }, (performance.now() - started) / 1000);
      if (policy !== undefined && response.statusCode >= 500 && policy.retriesStatus(response.statusCode)) {
        // Decided on the status line: the failed answer's body is dropped, never streamed on.
        const failed = response;
        if (await retryAfterBackoff(request, policy, body, attempt, abort.signal, metrics, upstream.service, failed.statusCode, () => failed.body.dump().catch(ignore))) {
          continue;
        }
      }
      metrics.serviceRequests.inc({ service: upstream.service, status: String(response.statusCode), side });
      break;
    }
  } finally {
    upstream.outstanding -= 1;
    clearTimeout(timer);
  }

  // The upstream's own address in Location / Content-Location becomes the gateway's path.
  rewriteLocations(response.headers, upstream.origin, (p) => gatewayPath(p, route, upstream.basePath));
  response.body.once('error', (err) => {
    // The status line is already sent: all that is left is to cut the stream and say why.
    request.log.warn({ service: upstream.service, err: err.message }, 'upstream body failed mid-stream');
  });
  if (options.respond !== undefined && options.fallbackOf === undefined) return options.respond(reply, response);
  return reply.code(response.statusCode).headers(clientResponseHeaders(response.headers)).send(response.body);
}
