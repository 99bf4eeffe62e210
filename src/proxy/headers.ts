import type { IncomingHttpHeaders } from 'node:http';
import { randomHex } from './random-ids.js';

/** RFC 9110 §7.6.1 connection-specific headers, plus ones undici or the gateway set itself. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** Request headers never forwarded as received: undici sets Host and framing, the gateway sets these. */
const REQUEST_REPLACED = new Set(['host', 'expect', 'x-request-id', 'traceparent', 'x-forwarded-proto', 'x-forwarded-host']);

function connectionTokens(value: string | string[] | undefined): Set<string> | undefined {
  if (value === undefined) return undefined;
  const joined = Array.isArray(value) ? value.join(',') : value;
  const tokens = new Set<string>();
  for (const t of joined.split(',')) {
    const token = t.trim().toLowerCase();
    if (token !== '') tokens.add(token);
  }
  return tokens;
}

export interface ForwardingContext {
  readonly clientIp: string;
  readonly protocol: string;
  readonly host: string | undefined;
  readonly requestId: string;
  readonly traceparent: string;
}

/** Headers for the upstream request: hop-by-hop removed, forwarding and tracing headers set. */
export function upstreamRequestHeaders(incoming: IncomingHttpHeaders, ctx: ForwardingContext): Record<string, string | string[]> {
  const named = connectionTokens(incoming.connection);
  const out: Record<string, string | string[]> = {};
  for (const key in incoming) {
    if (HOP_BY_HOP.has(key) || REQUEST_REPLACED.has(key) || named?.has(key)) continue;
    const value = incoming[key];
    if (value !== undefined) out[key] = value;
  }
  const priorFor = incoming['x-forwarded-for'];
  out['x-forwarded-for'] = priorFor ? `${Array.isArray(priorFor) ? priorFor.join(', ') : priorFor}, ${ctx.clientIp}` : ctx.clientIp;
  out['x-forwarded-proto'] = ctx.protocol;
  if (ctx.host !== undefined) out['x-forwarded-host'] = ctx.host;
  out['x-request-id'] = ctx.requestId;
  out['traceparent'] = ctx.traceparent;
  return out;
}

/** Response headers that only tell an attacker what runs behind the gateway. */
const RESPONSE_DROPPED = new Set(['x-powered-by', 'server', 'x-aspnet-version', 'x-aspnetmvc-version']);

/** Headers of the upstream response that may go back to the client. */
export function clientResponseHeaders(upstream: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const named = connectionTokens(upstream.connection);
  const out: Record<string, string | string[]> = {};
  for (const key in upstream) {
    if (HOP_BY_HOP.has(key) || RESPONSE_DROPPED.has(key) || named?.has(key)) continue;
    const value = upstream[key];
    if (value !== undefined) out[key] = value;
  }
  return out;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

export interface TraceContext {
  readonly traceId: string;
  /** The gateway's own span id, sent upstream as the parent. */
  readonly spanId: string;
  readonly traceparent: string;
}

/**
 * W3C Trace Context: keep the caller's trace id and sampling flag, and make the gateway's
 * hop a span of its own; start a new trace when the header is missing or invalid.
 */
export function continueTrace(header: string | string[] | undefined): TraceContext {
  const spanId = randomHex(8);
  const match = typeof header === 'string' ? TRACEPARENT.exec(header.trim().toLowerCase()) : null;
  if (match && match[1] !== 'ff' && !/^0+$/.test(match[2]!) && !/^0+$/.test(match[3]!)) {
    const traceId = match[2]!;
    return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-${match[4]}` };
  }
  const traceId = randomHex(16);
  return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-01` };
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** A caller's X-Request-Id is kept when it is a sane token; otherwise the gateway makes one. */
export function acceptableRequestId(value: string | string[] | undefined): string | undefined {
  return typeof value === 'string' && REQUEST_ID.test(value) ? value : undefined;
}
