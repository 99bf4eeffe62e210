import type { FastifyReply, FastifyRequest } from 'fastify';
import { errors as undiciErrors } from 'undici';
import type { RouteConfig } from '../config/index.js';
import { GatewayError } from '../errors.js';
import type { GatewayMetrics } from '../metrics/registry.js';
import { upstreamBody } from './body.js';
import { clientResponseHeaders, continueTrace, upstreamRequestHeaders } from './headers.js';
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

/** Abort reason of an upstream call that ran out of time. */
const UPSTREAM_TIMEOUT = new undiciErrors.HeadersTimeoutError('upstream did not answer in time');

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
  const { upstream, metrics, timeoutMs } = options;
  const trace = continueTrace(request.headers.traceparent);
  const headers = upstreamRequestHeaders(request.headers, {
    // X-Forwarded-For grows by the peer that connected to us (request.ip may already be the
    // client taken from a trusted proxy's X-Forwarded-For, which is in the chain).
    clientIp: request.socket.remoteAddress ?? request.ip,
    protocol: request.protocol,
    host: request.headers.host,
    requestId: request.id,
    traceparent: trace.traceparent,
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

  const started = performance.now();
  let response;
  try {
    response = await upstream.pool.request({
      path: upstreamPath(request.url, options.route, upstream.basePath),
      method: request.method as 'GET',
      headers,
      body: upstreamBody(request, options.bodyLimitBytes),
      signal: abort.signal,
      headersTimeout: timeoutMs + 1000,
      bodyTimeout: timeoutMs,
    });
  } catch (err) {
    if (err instanceof GatewayError) throw err; // e.g. the body went over its limit while streaming
    const { error, label } = classifyUpstreamError(abort.signal.reason === UPSTREAM_TIMEOUT ? UPSTREAM_TIMEOUT : err);
    metrics.serviceRequests.inc({ service: upstream.service, status: label });
    if (label !== 'aborted') {
      request.log.warn({ service: upstream.service, upstream: upstream.origin, err: (err as Error).message, code: error.code }, 'upstream failed');
    }
    throw error;
  } finally {
    clearTimeout(timer);
  }
  metrics.upstreamDuration.observe({ service: upstream.service }, (performance.now() - started) / 1000);
  metrics.serviceRequests.inc({ service: upstream.service, status: String(response.statusCode) });

  response.body.once('error', (err) => {
    // The status line is already sent: all that is left is to cut the stream and say why.
    request.log.warn({ service: upstream.service, err: err.message }, 'upstream body failed mid-stream');
  });
  return reply.code(response.statusCode).headers(clientResponseHeaders(response.headers)).send(response.body);
}
